"""A Web Push service (RFC 8030) for the tests, on 127.0.0.1, that checks what it is sent.

The application server under test talks to it as it would to FCM or Mozilla's autopush: it
POSTs to a subscription's endpoint with VAPID (RFC 8292) and an aes128gcm body (RFC 8188,
RFC 8291). Unlike a real push service, this one also holds the browser's private keys: it
decrypts every message and refuses one that no browser could read (a real service would take
it, and the browser would drop it silently; a test wants to know, and why).

The decryption is written here from the RFCs with ``cryptography``'s primitives, apart from
http-ece on purpose: the sender uses http-ece, and a bug the two shared must not pass.

Status codes, as the real services answer: 400 for a malformed request or an unreadable body,
401 for VAPID missing or invalid, 403 for a valid VAPID key that is not the one the service
expects, 404 for an unknown subscription, 413 for a body over 4096 octets. ``respond()``
scripts other answers (410, 429, 5xx) for requests that are otherwise correct.

No Django here: the module is importable on its own (``push_service`` is a pytest fixture).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import secrets
import socket
import struct
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HOST = "127.0.0.1"
MAX_PAYLOAD = 4096  # RFC 8030 §7.2: a push service may refuse a larger body with 413
MAX_READ = 1 << 20  # larger bodies are not even read: the connection is closed after the 413
MAX_VAPID_LIFETIME = 24 * 60 * 60  # RFC 8292 §2: exp no more than 24 hours from the request
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3
JWT_HEADER = {"typ": "JWT", "alg": "ES256"}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_HEADER = struct.Struct("!16sIB")  # RFC 8188 §2.1: salt, rs, idlen (then keyid)


# -- encodings ------------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """base64url without padding, as ``PushSubscription.toJSON()`` and JWS write it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url: the URL-safe alphabet, no padding (RFC 7515 §2); ValueError otherwise,
    so that a sender writing standard base64 or padding is caught rather than forgiven."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError(f"not unpadded base64url: {text[:40]!r}")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise ValueError(f"not unpadded base64url: {error}") from None


def public_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The 65-octet uncompressed point (0x04 || x || y) of a P-256 key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


# -- RFC 8188 + RFC 8291 decryption --------------------------------------------------------


class DecryptionError(ValueError):
    """The body cannot be read by the user agent; the message says which step failed."""


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt(
    body: bytes,
    ua_private_key: ec.EllipticCurvePrivateKey,
    auth_secret: bytes,
    *,
    max_records: int | None = None,
) -> bytes:
    """Decrypt an aes128gcm body as a user agent does (RFC 8291 §3.4, RFC 8188 §2).

    The header gives the salt, the record size ``rs`` and, as keyid, the sender's ephemeral
    public key. The body after it is cut into records of ``rs`` octets (the last may be
    shorter); each is AES-128-GCM with the nonce XOR its sequence number, and ends with a
    delimiter: 0x01 on every record but the last, 0x02 on the last, then zero padding.
    ``max_records=1`` is RFC 8291 §4's rule (a push message is one record).
    """
    if len(body) < _HEADER.size:
        raise DecryptionError(f"body of {len(body)} octets: shorter than the aes128gcm header")
    salt, rs, idlen = _HEADER.unpack_from(body)
    keyid = body[_HEADER.size : _HEADER.size + idlen]
    ciphertext = body[_HEADER.size + idlen :]
    if idlen != 65 or len(keyid) != 65:
        raise DecryptionError(
            f"keyid of {len(keyid)} octets (idlen {idlen}): RFC 8291 §4 wants the sender's "
            "65-octet uncompressed P-256 public key there"
        )
    if rs < 18:
        raise DecryptionError(f"rs={rs}: RFC 8188 §2.1 wants 18 or more")
    if not ciphertext:
        raise DecryptionError("no record after the aes128gcm header")
    records = [ciphertext[start : start + rs] for start in range(0, len(ciphertext), rs)]
    if max_records is not None and len(records) > max_records:
        raise DecryptionError(
            f"{len(records)} records (rs={rs}, {len(ciphertext)} octets after the header): "
            f"RFC 8291 §4 wants a push message in a single record, rs above its length"
        )
    try:
        sender_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keyid)
    except ValueError:
        raise DecryptionError("keyid is not a point of P-256") from None

    # RFC 8291 §3.3-3.4: the auth secret and both public keys go into the IKM.
    ecdh_secret = ua_private_key.exchange(ec.ECDH(), sender_key)
    key_info = b"WebPush: info\x00" + public_bytes(ua_private_key) + keyid
    ikm = _hkdf(auth_secret, ecdh_secret, key_info, 32)
    # RFC 8188 §2.2-2.3: the content-encryption key and the nonce, from the salt.
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = int.from_bytes(_hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12), "big")

    aead, plaintext = AESGCM(cek), []
    for seq, record in enumerate(records):
        last = seq == len(records) - 1
        if len(record) < 17:
            raise DecryptionError(f"record {seq} of {len(record)} octets: under tag + delimiter")
        try:
            padded = aead.decrypt((nonce ^ seq).to_bytes(12, "big"), record, None)
        except InvalidTag:
            raise DecryptionError(
                f"record {seq}: the AES-GCM tag does not verify (another key or auth "
                "secret, or the body was changed)"
            ) from None
        content = padded.rstrip(b"\x00")
        if not content:
            raise DecryptionError(f"record {seq}: only zeros, no padding delimiter")
        if content[-1] != (2 if last else 1):
            raise DecryptionError(
                f"record {seq} of {len(records)}: padding delimiter 0x{content[-1]:02x}, "
                f"RFC 8188 §2 wants 0x{2 if last else 1:02x} on the "
                f"{'last' if last else 'non-last'} record"
            )
        plaintext.append(content[:-1])
    return b"".join(plaintext)


# -- RFC 8292 VAPID -------------------------------------------------------------------------


class Refused(Exception):
    """What a push service answers to a request it will not take: a status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason = status, reason


def _auth_params(text: str) -> dict[str, str]:
    """RFC 7235 auth-params (``t=..., k=...``, with or without the space, values bare or
    quoted); a duplicate or an empty one is malformed."""
    params: dict[str, str] = {}
    for part in text.split(","):
        name, equals, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not equals or not name or not value or " " in name:
            raise Refused(401, f"Authorization parameters {text[:60]!r}: want t=<JWT>, k=<key>")
        if name in params:
            raise Refused(401, f"Authorization parameter {name!r} given twice")
        params[name] = value
    return params


def _json_segment(segment: str, what: str) -> Any:
    try:
        return json.loads(b64url_decode(segment))
    except (ValueError, UnicodeDecodeError):
        raise Refused(401, f"JWT {what} is not base64url JSON") from None


def check_vapid(
    authorization: str | None, audience: str, *, now: float | None = None
) -> tuple[str, dict[str, Any]]:
    """Check an ``Authorization: vapid t=<JWT>, k=<key>`` header (RFC 8292 §3) for a push
    resource of ``audience`` (its origin); return the key (base64url) and the JWT's claims,
    or raise Refused(401, reason)."""
    if not authorization:
        raise Refused(401, "no Authorization: RFC 8292 wants 'vapid t=<JWT>, k=<key>'")
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise Refused(
            401,
            f"Authorization scheme {scheme!r}: RFC 8292 §3 wants 'vapid' (the drafts' "
            "'WebPush <JWT>' with Crypto-Key: p256ecdsa= is obsolete)",
        )
    params = _auth_params(rest)
    token, key = params.get("t"), params.get("k")
    if token is None or key is None:
        raise Refused(401, f"Authorization lacks {'t' if token is None else 'k'}= (RFC 8292 §3)")
    try:
        key_bytes = b64url_decode(key)
        if len(key_bytes) != 65 or key_bytes[0] != 4:
            raise ValueError
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_bytes)
    except ValueError:
        raise Refused(
            401,
            "k is not a P-256 public key as RFC 8292 §3.2 wants it (65-octet uncompressed "
            "point, unpadded base64url)",
        ) from None

    segments = token.split(".")
    if len(segments) != 3:
        raise Refused(401, f"t has {len(segments)} parts: a JWS is header.claims.signature")
    header = _json_segment(segments[0], "header")
    if header != JWT_HEADER:
        raise Refused(401, f"JWT header {header!r}: RFC 8292 §2 wants {JWT_HEADER!r}")
    try:
        signature = b64url_decode(segments[2])
    except ValueError:
        raise Refused(401, "JWT signature is not unpadded base64url") from None
    if len(signature) != 64:
        raise Refused(
            401,
            f"JWT signature of {len(signature)} octets: ES256 is r || s, 64 octets "
            "(RFC 7518 §3.4), not DER",
        )
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s),
            f"{segments[0]}.{segments[1]}".encode("ascii"),
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        raise Refused(401, "JWT signature does not verify with k") from None

    claims = _json_segment(segments[1], "claims")
    if not isinstance(claims, dict):
        raise Refused(401, f"JWT claims are not a JSON object: {claims!r}")
    if claims.get("aud") != audience:
        raise Refused(
            401, f"JWT aud {claims.get('aud')!r}: the push resource's origin is {audience!r}"
        )
    exp, now = claims.get("exp"), time.time() if now is None else now
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise Refused(401, f"JWT exp {exp!r}: RFC 8292 §2 wants a NumericDate")
    if exp <= now:
        raise Refused(401, f"JWT expired: exp {exp} is {now - exp:.0f} s in the past")
    if exp > now + MAX_VAPID_LIFETIME:
        raise Refused(
            401, f"JWT exp {exp} is {exp - now:.0f} s ahead: RFC 8292 §2 allows 24 h at most"
        )
    sub = claims.get("sub")
    if not _contact_uri(sub):
        raise Refused(401, f"JWT sub {sub!r}: RFC 8292 §2.1 wants a mailto: or https: URI")
    return key, claims


def _contact_uri(sub: Any) -> bool:
    if not isinstance(sub, str) or sub != sub.strip():
        return False
    if sub.startswith("mailto:"):
        local, at, domain = sub[len("mailto:") :].rpartition("@")
        return bool(local and at and domain)
    parts = urlsplit(sub)
    return parts.scheme == "https" and bool(parts.hostname)


# -- what the service keeps ------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """The browser's side of a push subscription: its private key stays here, in the test."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth_secret: bytes = field(repr=False)

    @property
    def public_key(self) -> bytes:
        """The 65-octet uncompressed P-256 point the application server encrypts to."""
        return public_bytes(self.private_key)

    @property
    def p256dh(self) -> str:
        return b64url_encode(self.public_key)

    @property
    def auth(self) -> str:
        return b64url_encode(self.auth_secret)

    def as_json(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives, as a browser posts it to the app."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }

    def decrypt(self, body: bytes) -> bytes:
        """Read a push message as this subscription's browser would."""
        return decrypt(body, self.private_key, self.auth_secret, max_records=1)


@dataclass(frozen=True)
class Message:
    """A push message the service accepted (201), decrypted."""

    subscription_id: str
    endpoint: str
    headers: dict[str, str]  # lower-case names
    body: bytes  # as sent, encrypted
    payload: bytes  # decrypted
    ttl: int
    urgency: str | None
    topic: str | None
    vapid_public_key: str
    jwt_claims: dict[str, Any]
    received_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.payload)


class Rejection(NamedTuple):
    endpoint: str
    status: int
    reason: str


class Scripted(NamedTuple):
    """A correct message answered by a scripted status instead of 201 (not in ``received``)."""

    endpoint: str
    status: int
    message: Message


@dataclass
class _Script:
    status: int
    remaining: int | None  # None: for ever
    headers: dict[str, str]


# -- the service -----------------------------------------------------------------------------


class PushService:
    """A push service on 127.0.0.1 (a ThreadingHTTPServer in a background thread).

    ``received``, ``rejected`` and ``scripted`` are copies taken under the lock; ``delay``
    (seconds) slows every answer down; ``expected_vapid_key`` (base64url), when set, makes
    every other VAPID key a 403, as for a subscription restricted to a key (RFC 8292 §4).
    """

    def __init__(self, *, expected_vapid_key: str | None = None, delay: float = 0.0) -> None:
        self.expected_vapid_key = expected_vapid_key
        self.delay = delay
        self._lock = threading.Condition()
        self._subscriptions: dict[str, Subscription] = {}
        self._scripts: dict[str, list[_Script]] = {}
        self._received: list[Message] = []
        self._rejected: list[Rejection] = []
        self._scripted: list[Scripted] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # lifecycle

    def start(self) -> PushService:
        self._server = _Server((HOST, 0), _Handler)
        self._server.service = self
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="push-service", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, and close the connections still open (idle keep-alive ones)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> PushService:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the push service was never started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: the ``aud`` a VAPID JWT must name."""
        return f"http://{HOST}:{self.port}"

    # subscriptions and scripts

    def subscribe(
        self,
        *,
        private_key: ec.EllipticCurvePrivateKey | None = None,
        auth_secret: bytes | None = None,
    ) -> Subscription:
        """A new subscription, as ``pushManager.subscribe()`` makes one: a fresh P-256 key
        pair and a random 16-octet auth secret, unless given (e.g. RFC 8291's test keys)."""
        subscription_id = secrets.token_urlsafe(16)
        subscription = Subscription(
            id=subscription_id,
            endpoint=f"{self.origin}/push/{subscription_id}",
            private_key=private_key or ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16) if auth_secret is None else auth_secret,
        )
        with self._lock:
            self._subscriptions[subscription_id] = subscription
        return subscription

    def respond(
        self,
        target: Subscription | str,
        status: int,
        times: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer ``status`` (with ``headers``, e.g. Retry-After) to the next ``times`` correct
        messages for a subscription (None: all of them), then 201 again. Scripts queue up:
        ``respond(s, 503, 1); respond(s, 429, 1)`` answers 503, then 429, then 201."""
        if times is not None and times < 1:
            raise ValueError("times is a positive count, or None for ever")
        subscription_id = self._subscription_id(target)
        with self._lock:
            self._scripts.setdefault(subscription_id, []).append(
                _Script(status, times, dict(headers or {}))
            )

    def _subscription_id(self, target: Subscription | str) -> str:
        if isinstance(target, Subscription):
            return target.id
        return target.rstrip("/").rsplit("/", 1)[-1]

    # what arrived

    @property
    def received(self) -> list[Message]:
        with self._lock:
            return list(self._received)

    @property
    def rejected(self) -> list[Rejection]:
        with self._lock:
            return list(self._rejected)

    @property
    def scripted(self) -> list[Scripted]:
        with self._lock:
            return list(self._scripted)

    def clear(self) -> None:
        """Forget what arrived (the subscriptions and scripts stay)."""
        with self._lock:
            self._received.clear()
            self._rejected.clear()
            self._scripted.clear()

    def wait_for(self, count: int, timeout: float = 10) -> list[Message]:
        """Block until ``count`` messages were accepted; return them all. On timeout, an
        AssertionError says what arrived and what was refused, and why."""
        with self._lock:
            if self._lock.wait_for(lambda: len(self._received) >= count, timeout):
                return list(self._received)
            accepted = [message.endpoint for message in self._received]
            refused = [tuple(rejection) for rejection in self._rejected]
            scripted = [(item.endpoint, item.status) for item in self._scripted]
        raise AssertionError(
            f"{len(accepted)} of {count} push messages accepted in {timeout} s; "
            f"accepted: {accepted}; rejected: {refused}; scripted answers: {scripted}"
        )

    # one request

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        """The answer to one request (status, headers, body text), recorded. The HTTP
        handler's only call: everything a push service decides is here."""
        endpoint = f"{self.origin}{path}"
        try:
            return self._answer(endpoint, method, path, headers, body)
        except Refused as refusal:
            status, reason = refusal.status, refusal.reason
        except Exception:  # a bug of this module: say so, rather than drop the connection
            status, reason = 500, f"push service bug: {traceback.format_exc()}"
        self._reject(endpoint, status, reason)
        return status, {}, reason

    def _reject(self, endpoint: str, status: int, reason: str) -> None:
        with self._lock:
            self._rejected.append(Rejection(endpoint, status, reason))
            self._lock.notify_all()

    def _answer(
        self, endpoint: str, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        match = re.fullmatch(r"/push/([A-Za-z0-9_-]+)", path)
        if match is None:
            raise Refused(404, f"no push resource at {path!r}")
        if method != "POST":
            raise Refused(405, f"{method} {path}: a push resource takes POST (RFC 8030 §5)")
        with self._lock:
            subscription = self._subscriptions.get(match[1])
        if subscription is None:
            raise Refused(404, f"unknown subscription {match[1]!r}")
        if self.delay:
            time.sleep(self.delay)
        message = self._check(subscription, headers, body)

        with self._lock:
            script = self._next_script(subscription.id)
            if script is not None:
                self._scripted.append(Scripted(endpoint, script.status, message))
            else:
                self._received.append(message)
            self._lock.notify_all()
        if script is not None:
            return script.status, script.headers, f"scripted answer {script.status}"
        location = f"{self.origin}/message/{secrets.token_urlsafe(12)}"
        return 201, {"Location": location, "TTL": str(message.ttl)}, ""

    def _next_script(self, subscription_id: str) -> _Script | None:
        scripts = self._scripts.get(subscription_id)
        if not scripts:
            return None
        script = scripts[0]
        if script.remaining is not None:
            script.remaining -= 1
            if script.remaining == 0:
                scripts.pop(0)
        return script

    def _check(
        self, subscription: Subscription, headers: Mapping[str, str], body: bytes
    ) -> Message:
        """Everything RFC 8030, 8291 and 8292 ask of the request, in the order a push service
        would look: who sends (VAPID), the headers, the size, then (as the browser) the body."""
        key, claims = check_vapid(headers.get("authorization"), self.origin)
        if self.expected_vapid_key is not None and b64url_decode(key) != b64url_decode(
            self.expected_vapid_key
        ):
            raise Refused(
                403, f"VAPID key {key[:16]}… is not the expected {self.expected_vapid_key[:16]}…"
            )

        encoding = headers.get("content-encoding")
        if encoding is None or encoding.strip().lower() != "aes128gcm":
            raise Refused(
                400, f"Content-Encoding {encoding!r}: RFC 8291 §4 wants aes128gcm (not aesgcm)"
            )
        ttl = headers.get("ttl")
        if ttl is None:
            raise Refused(400, "no TTL header: RFC 8030 §5.2 requires one")
        if not re.fullmatch(r"[0-9]+", ttl.strip()):
            raise Refused(400, f"TTL {ttl!r}: RFC 8030 §5.2 wants a non-negative integer")
        urgency = headers.get("urgency")
        if urgency is not None and urgency.strip() not in URGENCIES:
            raise Refused(400, f"Urgency {urgency!r}: RFC 8030 §5.3 allows {URGENCIES}")
        topic = headers.get("topic")
        if topic is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic.strip()):
            raise Refused(400, f"Topic {topic!r}: RFC 8030 §5.4 wants 1 to 32 base64url characters")
        if not body:
            raise Refused(400, "no body: every message is expected encrypted (RFC 8291)")
        if len(body) > MAX_PAYLOAD:
            raise Refused(413, f"body of {len(body)} octets: over RFC 8030's {MAX_PAYLOAD}")

        try:
            payload = subscription.decrypt(body)
        except DecryptionError as error:
            raise Refused(400, f"undecryptable: {error}") from None
        return Message(
            subscription_id=subscription.id,
            endpoint=subscription.endpoint,
            headers=dict(headers),
            body=body,
            payload=payload,
            ttl=int(ttl),
            urgency=None if urgency is None else urgency.strip(),
            topic=None if topic is None else topic.strip(),
            vapid_public_key=key,
            jwt_claims=claims,
            received_at=time.monotonic(),
        )


# -- HTTP ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops SYNs of concurrent senders: 1 s retries
    service: PushService

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as the senders' connection pools expect; bodies by
    Content-Length only (requests never chunks a bytes body)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # or headers and body, two writes, wait for a delayed ACK
    timeout = 30  # an idle keep-alive connection is closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST  # answer() says 405

    def _serve(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()  # repeated fields are joined, as HTTP lists are
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        length = headers.get("content-length", "0")
        if "transfer-encoding" in headers:
            return self._refuse(411, "a push message goes with a Content-Length, not chunked")
        if not length.isdigit():
            return self._refuse(400, f"Content-Length {length!r} is not a number")
        if int(length) > MAX_READ:
            return self._refuse(413, f"body of {length} octets: over RFC 8030's {MAX_PAYLOAD}")
        body = self.rfile.read(int(length))
        self._reply(*self.server.service.answer(self.command, self.path, headers, body))

    def _refuse(self, status: int, reason: str) -> None:
        """Refused before the body is read: recorded, answered, and the connection closed (the
        unread body would be taken for the next request)."""
        service = self.server.service
        service._reject(f"{service.origin}{self.path}", status, reason)
        self._reply(status, {}, reason, close=True)

    def _reply(self, status: int, headers: dict[str, str], text: str, close: bool = False) -> None:
        data = text.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: what matters is in ``received`` and ``rejected``."""


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A started push service, stopped after the test."""
    with PushService() as service:
        yield service
