"""The unread count's polling: its ``ETag``, its headers, and the ``304`` answered before DRF runs.

The ETag is ``"<user id>-<own token>-<shared token>"``: the user it is for, and their version
(``versions.py``). It names the user so that the ``304`` can read that user's version and
credential notes in one cache round trip, before anything else is known about the request.

``GET unread-count/`` with an ``If-None-Match`` holding the current ETag is answered ``304`` by
:class:`FastPath`, before DRF authenticates or throttles and without a database query, when the
request's credentials are ones the cache vouches for. Anything else goes to the view's action.
Those notes are ``credentials.py``'s, a module of its own: written on every ``200``, read here,
and revoked by model signals that no request runs.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponseNotModified
from django.http.response import HttpResponseBase
from rest_framework.request import Request
from rest_framework.viewsets import GenericViewSet

from .. import versions
from ..conf import app_settings
from ..protocol import MAX_ID
from . import credentials

_Response = TypeVar("_Response", bound=HttpResponseBase)


def etag(user_id: int, version: versions.Version) -> str:
    own, shared = version
    return f'"{user_id}-{own}-{shared}"'


def _sent(header: str) -> set[str]:
    """The ETags of an ``If-None-Match`` header, weak ones as if strong."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def _claimed_user(etags: set[str]) -> int | None:
    """The one user id these ETags (as :func:`etag` makes them) name, if they name one."""
    claimed = {tag.strip('"').partition("-")[0] for tag in etags}
    if len(claimed) != 1:
        return None
    raw = claimed.pop()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_ID)):
        return None
    return int(raw) if int(raw) <= MAX_ID else None


def with_headers(response: _Response, etag: str) -> _Response:
    """``response`` (a ``200`` or a ``304``) with the polling headers."""
    response["ETag"] = etag
    response["X-Poll-Interval"] = str(app_settings.POLL_INTERVAL_SECONDS)
    response["Cache-Control"] = "private, no-cache"
    response["Vary"] = "Cookie, Authorization"
    return response


# --- the full path (a 200) ------------------------------------------------------------------


def fresh_etag(request: Request) -> str:
    """The ETag of a full answer to ``request``, which DRF authenticated: read it before the
    counts, so that it is never newer than they are. Notes the request's credentials, so that
    the next ``304`` can trust them."""
    user_id = cast(int, request.user.pk)
    credentials.remember(request)
    return etag(user_id, versions.current(user_id))


# --- the fast path (a 304) ------------------------------------------------------------------


def not_modified(request: HttpRequest, authenticators: list[type]) -> HttpResponseBase | None:
    """A ``304`` if the client already holds the current ETag and its credentials are trusted
    without a database query, else None: then DRF decides."""
    header = request.headers.get("If-None-Match")
    if not header:
        return None
    sent = _sent(header)
    # The user the client's ETag names: their credential note and version are read in one
    # round trip, and trusted only if the credentials turn out to be that user's.
    claimed = _claimed_user(sent)
    if claimed is None:
        return None
    found = credentials.trusted(request, authenticators, claimed, versions.keys(claimed))
    version = versions.from_found(claimed, found) if found is not None else None
    if version is None:
        return None
    current = etag(claimed, version)
    return with_headers(HttpResponseNotModified(), current) if current in sent else None


# Answers unread_count's 304 (not_modified()) before the viewset's own dispatch, that is before
# DRF authenticates, throttles and the action runs. A comment, not a docstring: drf-spectacular
# would describe every operation of the viewset with it.
class FastPath(GenericViewSet):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if self.action_map.get(cast(str, request.method).lower()) == "unread_count":
            authenticators = [type(authenticator) for authenticator in self.get_authenticators()]
            response = not_modified(request, authenticators)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)
