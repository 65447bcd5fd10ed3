"""The application server's VAPID identity (RFC 8292): the key pair in settings, what is wrong
with it, a new pair, and the ``Authorization`` header a push service wants.

Keys are written as browsers and push libraries write them: base64url without padding, the
public key as the 65-byte uncompressed P-256 point (what ``pushManager.subscribe()`` takes as
``applicationServerKey``), the private key as its raw 32-byte scalar.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02

from ..conf import app_settings

# A signed JWT is reused for one push service until this long before it expires (RFC 8292 allows
# up to 24 hours; some services refuse more than 12).
JWT_LIFETIME_SECONDS = 12 * 3600
JWT_RENEW_BEFORE_SECONDS = 3600

_SUBJECT = re.compile(
    r"(?:mailto:[^\s@<>,;]+@(?:localhost|[\w-]+(?:\.[\w-]+)+)|https://(?:localhost|[\w-]+(?:\.[\w-]+)+))\Z",
    re.IGNORECASE | re.ASCII,
)


def b64decode(text: str) -> bytes:
    """base64url, padded or not. Raises ``ValueError``."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_point(text: str) -> bytes:
    """The 65 bytes of a P-256 public key given as base64url. Raises ``ValueError``."""
    raw = b64decode(text)
    if len(raw) != 65 or raw[0] != 4:
        raise ValueError("not an uncompressed P-256 public key (65 bytes starting with 0x04)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise ValueError("not a point on the P-256 curve") from None
    return raw


def generate() -> tuple[str, str]:
    """A new (public, private) pair, both base64url."""
    private = ec.generate_private_key(ec.SECP256R1())
    raw_private = private.private_numbers().private_value.to_bytes(32, "big")
    return _public_text(private), b64encode(raw_private)


def _public_text(private: ec.EllipticCurvePrivateKey) -> str:
    point = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return b64encode(point)


def _private_key(text: str) -> ec.EllipticCurvePrivateKey:
    raw = b64decode(text)
    if len(raw) != 32:
        raise ValueError("not a raw P-256 private key (32 bytes)")
    value = int.from_bytes(raw, "big")
    try:
        return ec.derive_private_key(value, ec.SECP256R1())
    except ValueError:
        raise ValueError("not a P-256 private key (out of range)") from None


def problems() -> list[str]:
    """What is wrong with the VAPID settings, each as a sentence (empty: nothing)."""
    found = []
    public, private = (
        app_settings.WEB_PUSH_VAPID_PUBLIC_KEY,
        app_settings.WEB_PUSH_VAPID_PRIVATE_KEY,
    )
    subject = app_settings.WEB_PUSH_VAPID_SUBJECT
    for name, value in (("PUBLIC_KEY", public), ("PRIVATE_KEY", private), ("SUBJECT", subject)):
        if not isinstance(value, str):
            return [f"WEB_PUSH_VAPID_{name} is not a string"]  # E002 says so too
        if not value:
            found.append(f"WEB_PUSH_VAPID_{name} is not set")
    point = None
    if public:
        try:
            point = public_point(public)
        except ValueError as error:
            found.append(f"WEB_PUSH_VAPID_PUBLIC_KEY is {error}")
    if private:
        try:
            key = _private_key(private)
        except ValueError as error:
            found.append(f"WEB_PUSH_VAPID_PRIVATE_KEY is {error}")
        else:
            if point is not None and _public_text(key) != b64encode(point):
                found.append("WEB_PUSH_VAPID_PRIVATE_KEY does not belong to the public key")
    if subject and not is_subject(subject):
        found.append(
            f"WEB_PUSH_VAPID_SUBJECT {subject!r:.60} is neither a mailto: address nor an "
            "https:// origin"
        )
    return found


def is_subject(subject: Any) -> bool:
    """Whether ``subject`` is a VAPID ``sub`` push services take (a mailto: address, an https
    origin)."""
    return isinstance(subject, str) and _SUBJECT.match(subject) is not None


@dataclass(frozen=True)
class _Signed:
    header: str
    renew_at: float


class Signer:
    """The ``Authorization`` header for each push service origin, signed once and reused until
    an hour before it expires: one ECDSA signature per service, not per push."""

    def __init__(self, private_key: str, subject: str) -> None:
        self._vapid = Vapid02(_private_key(private_key))
        self._subject = subject
        self._signed: dict[str, _Signed] = {}
        self._lock = threading.Lock()

    def authorization(self, audience: str) -> str:
        """``vapid t=<JWT>, k=<public key>`` for pushes to ``audience`` (scheme://host[:port])."""
        now = time.time()
        with self._lock:
            signed = self._signed.get(audience)
            if signed is None or signed.renew_at <= now:
                expires = int(now) + JWT_LIFETIME_SECONDS
                claims = {"aud": audience, "exp": expires, "sub": self._subject}
                header = self._vapid.sign(claims)["Authorization"]
                signed = _Signed(header, expires - JWT_RENEW_BEFORE_SECONDS)
                self._signed[audience] = signed
            return signed.header


def signer() -> Signer:
    """A signer for the keys in settings (read each time: tests override them)."""
    return Signer(app_settings.WEB_PUSH_VAPID_PRIVATE_KEY, app_settings.WEB_PUSH_VAPID_SUBJECT)
