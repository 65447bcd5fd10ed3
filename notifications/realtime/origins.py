"""Which pages may open a WebSocket with the user's session cookie: the ``Origin`` check.

A browser sends the session cookie with a WebSocket handshake to our host whatever page opens
it, and nothing like CORS stops that page from reading what the socket says: the ``Origin``
header is the only defence against cross-site WebSocket hijacking. An origin is a scheme, a host
and a port, and all three count: a page of ``http://example.com`` (plain HTTP, which anyone on
the network can rewrite) or of ``https://example.com:8443`` (another server on the same host)
is not ``https://example.com``, though the cookie goes to all of them.

- ``NOTIFICATIONS["WEBSOCKET_ORIGINS"]`` lists the allowed origins exactly
  (``["https://example.com", "https://app.example.com:8443"]``), and only those;
- without it, an origin is allowed when its host matches ``ALLOWED_HOSTS`` (Django's patterns)
  and its scheme and port are the socket's own (``wss`` pairs with ``https``, ``ws`` with
  ``http``; the port of the ``Host`` header, or the scheme's default). Behind a proxy that
  terminates TLS, Django's ``SECURE_PROXY_SSL_HEADER`` says the socket is secure, as it does for
  ``request.is_secure()`` (daphne does not tell), and ``USE_X_FORWARDED_HOST`` is honoured as by
  ``request.get_host()``;
- a cookie socket without an ``Origin`` header is refused (browsers always send one);
- a refused handshake gets HTTP 403 (closed before it is accepted).

Ticket sockets (``?ticket=``) never come here: the ticket proves who connects (see auth.py).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.security.websocket import OriginValidator as ChannelsOriginValidator
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

from ..conf import Origin, app_settings, parse_origin

events = logging.getLogger("notifications.events")


def explicit_origins() -> set[Origin] | None:
    """``WEBSOCKET_ORIGINS`` parsed, or None when the setting is not set."""
    listed = app_settings.WEBSOCKET_ORIGINS
    if listed is None:
        return None
    return {origin for value in listed if (origin := parse_origin(value)) is not None}


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS`` as Django applies it (with ``DEBUG`` and none set: the local ones)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    if len(values) != 1:
        return None
    return values[0].decode("latin-1")


def own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin a page served by this very socket's server would have: the scheme the
    connection came in on, and the host and port the browser asked for."""
    secure = scope.get("scheme") in ("wss", "https")
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        forwarded = _header(scope, name.removeprefix("HTTP_").lower().replace("_", "-").encode())
        if forwarded is not None:
            secure = forwarded.split(",", 1)[0].strip() == secure_value
    scheme = "https" if secure else "http"
    host = None
    if getattr(settings, "USE_X_FORWARDED_HOST", False):
        host = _header(scope, b"x-forwarded-host")
    host = host or _header(scope, b"host")
    if host is None and scope.get("server"):
        server_host, server_port = scope["server"][:2]
        if ":" in str(server_host):  # IPv6
            server_host = f"[{server_host}]"
        host = f"{server_host}:{server_port}"
    if not host:
        return None
    return parse_origin(f"{scheme}://{host}")


def origin_allowed(origin: str | None, scope: dict[str, Any]) -> bool:
    """Whether a cookie socket may open from the page of ``origin``."""
    parsed = parse_origin(origin) if origin else None
    if parsed is None:
        return False
    explicit = explicit_origins()
    if explicit is not None:
        return parsed in explicit
    own = own_origin(scope)
    if own is None or (parsed[0], parsed[2]) != (own[0], own[2]):
        return False
    return validate_host(parsed[1], allowed_hosts())


class OriginValidator(ChannelsOriginValidator):
    """Lets a WebSocket handshake through to ``application`` only from an allowed origin (see
    the module's docstring); refuses it with HTTP 403 otherwise."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("OriginValidator serves WebSocket connections only")
        origin = _header(scope, b"origin")
        if origin_allowed(origin, scope):
            return await self.application(scope, receive, send)
        events.info(
            "event=origin_refused origin=%r host=%r path=%s",
            (origin or "")[:200],
            (_header(scope, b"host") or "")[:200],
            scope.get("path"),
        )
        return await WebsocketDenier()(scope, receive, send)
