"""The browsers users subscribed: what a subscription must be to be kept, and keeping it.

A subscription arrives as ``PushSubscription.toJSON()`` gives it: ``{"endpoint", "expirationTime",
"keys": {"p256dh", "auth"}}``. The endpoint is a URL the server will later POST to on the user's
say-so, so it must be https on a known push service (``WEB_PUSH_SERVICES``): otherwise any user
could make the server post into its own network. Plain http is taken only on loopback and only
with ``WEB_PUSH_ALLOW_LOOPBACK_HTTP`` (a push service beside the tests).

A user's subscriptions are theirs alone: one user never removes or changes another's, with one
exception. When a browser that another user subscribed is posted again with the same keys (only
that browser and this server know its auth secret), the browser changed hands, e.g. one person
signed out and another signed in: the old user's row goes, so that their notifications stop
appearing on a device that is no longer theirs.
"""

from __future__ import annotations

import hmac
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..conf import app_settings
from ..models import PushSubscription
from ..realtime.credentials import digest
from ..services.state import owner_id
from .keys import b64decode, public_point

MAX_ENDPOINT_CHARS = PushSubscription._meta.get_field("endpoint").max_length or 2000
MAX_USER_AGENT_CHARS = PushSubscription._meta.get_field("user_agent").max_length or 200
AUTH_SECRET_BYTES = 16
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_TEXT = re.compile(r"[\x21-\x7e]+\Z")  # printable ASCII, no spaces: what an endpoint is
# scheme://host[:port][/path][?query]: a host name or an IPv6 literal, no user, no backslash,
# no fragment (an empty one included).
_ENDPOINT = re.compile(
    r"(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?:[/?][^#\\]*)?\Z"
)
# Past this an expirationTime is no moment a browser gives (browsers give months ahead, if any),
# and near year 9999 a time zone's offset would carry it out of range.
_MAX_EXPIRATION = datetime(3000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Subscription:
    """A subscription that passed :func:`clean`."""

    endpoint: str
    p256dh: str
    auth: str
    expires_at: datetime | None


def clean(data: Any) -> Subscription:
    """``data`` (the parsed JSON of ``toJSON()``) as a :class:`Subscription`. Raises
    ``ValueError("field: message")``, the field dotted (``keys.auth``). Fields other than these
    are ignored, as the rest of the API ignores unknown fields."""
    if not isinstance(data, dict):
        raise ValueError("non_field_errors: must be an object")
    endpoint = clean_endpoint(data.get("endpoint"))
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise ValueError("keys: must be an object with p256dh and auth")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str):
        raise ValueError("keys.p256dh: a base64url string is required")
    if not isinstance(auth, str):
        raise ValueError("keys.auth: a base64url string is required")
    try:
        public_point(p256dh)
    except ValueError as error:
        raise ValueError(f"keys.p256dh: {error}") from None
    try:
        secret = b64decode(auth)
    except ValueError:
        raise ValueError("keys.auth: not base64url") from None
    if len(secret) != AUTH_SECRET_BYTES:
        raise ValueError(f"keys.auth: must be {AUTH_SECRET_BYTES} bytes (got {len(secret)})")
    return Subscription(endpoint, p256dh.rstrip("="), auth.rstrip("="), _expiry(data))


def clean_endpoint(endpoint: Any) -> str:
    """``endpoint`` if the server may post to it. Raises ``ValueError("endpoint: ...")``.

    Read strictly, with one grammar: a URL that two parsers would read differently (a backslash
    or brackets in the host, say, where urlsplit and urllib3 disagree) could pass the allow-list
    under one host and be posted to another."""
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError("endpoint: a URL is required")
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise ValueError(f"endpoint: at most {MAX_ENDPOINT_CHARS} characters")
    if not _TEXT.match(endpoint):
        raise ValueError("endpoint: must be printable ASCII without spaces")
    match = _ENDPOINT.match(endpoint)
    if match is None:
        raise ValueError(
            "endpoint: must be http(s)://host[:port]/path, with no user, backslash or fragment"
        )
    scheme, host = match.group("scheme").lower(), match.group("host").lower().strip("[]")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError("endpoint: the port must be from 1 to 65535")
    loopback = app_settings.WEB_PUSH_ALLOW_LOOPBACK_HTTP and host in LOOPBACK_HOSTS
    if scheme == "http" and loopback:
        return endpoint
    if scheme != "https":
        raise ValueError("endpoint: must be an https URL")
    if not (loopback or _known_service(host)):
        raise ValueError(f"endpoint: {host!r:.80} is not a push service this site sends to")
    return endpoint


def _known_service(host: str) -> bool:
    for service in app_settings.WEB_PUSH_SERVICES:
        if service == "*" or host == service or host.endswith("." + service):
            return True
    return False


def _expiry(data: dict[str, Any]) -> datetime | None:
    value = data.get("expirationTime")
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        value = None  # NaN and Infinity, which Python's JSON parser reads
    milliseconds_ahead = _MAX_EXPIRATION.timestamp() * 1000
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0 <= value <= milliseconds_ahead  # a huge int compares fine, isfinite would raise
    ):
        raise ValueError("expirationTime: must be null or milliseconds since 1970 before 3000")
    moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    if moment <= timezone.now():
        raise ValueError("expirationTime: has already passed")
    return moment


def save(
    user: Any, subscription: Subscription, user_agent: str = "", credential: str = ""
) -> tuple[int, bool]:
    """Keep ``subscription`` for ``user``: (its id, whether it is new). Posting it again
    refreshes its keys, its sign-in (``credential``: the digest of the session that posted it)
    and when it was last seen; past ``WEB_PUSH_MAX_SUBSCRIPTIONS`` the user's least recently
    seen one goes."""
    user_id = owner_id(user)
    now = timezone.now()
    with transaction.atomic():
        _hand_over(subscription, user_id)
        row, created = PushSubscription.objects.update_or_create(
            user_id=user_id,
            endpoint=subscription.endpoint,
            defaults={
                "p256dh": subscription.p256dh,
                "auth": subscription.auth,
                "expires_at": subscription.expires_at,
                "user_agent": user_agent[:MAX_USER_AGENT_CHARS],
                "credential": credential,
                "seen_at": now,
            },
        )
        if created:
            surplus = PushSubscription.objects.filter(user_id=user_id).order_by("-seen_at", "-id")[
                app_settings.WEB_PUSH_MAX_SUBSCRIPTIONS :
            ]
            PushSubscription.objects.filter(
                pk__in=list(surplus.values_list("pk", flat=True))
            ).delete()
    return row.pk, created


def _hand_over(subscription: Subscription, user_id: int) -> None:
    others = PushSubscription.objects.filter(endpoint=subscription.endpoint).exclude(
        user_id=user_id
    )
    same_browser = [
        pk
        for pk, auth in others.values_list("pk", "auth")
        if hmac.compare_digest(auth.encode(), subscription.auth.encode())
    ]
    if same_browser:
        PushSubscription.objects.filter(pk__in=same_browser).delete()


def remove(user: Any, *, endpoint: str | None = None, pk: int | None = None) -> bool:
    """Forget one of ``user``'s subscriptions, by endpoint or id; False if there was none."""
    mine = PushSubscription.objects.filter(user_id=owner_id(user))
    if endpoint is not None:
        if len(endpoint) > MAX_ENDPOINT_CHARS or not _TEXT.match(endpoint):
            return False  # no row holds it (NUL, say, which PostgreSQL would refuse to compare)
        mine = mine.filter(endpoint=endpoint)
    if pk is not None:
        mine = mine.filter(pk=pk)
    deleted, _ = mine.delete()
    return deleted > 0


def signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: the browsers that session subscribed get no more pushes (a
    shared computer must not keep showing the last user's notifications)."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not session_key:
        return
    PushSubscription.objects.filter(
        user_id=user.pk, credential=digest("session", session_key)
    ).delete()
