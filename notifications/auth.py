"""WebSocket authentication: single-use tickets for clients without cookies, sessions for browsers.

A ticket proves who connects, so a ticket connection needs no ``Origin`` header (non-browser
clients rarely send one). Every other connection goes through the usual browser stack, with the
origin check that keeps other sites from opening sockets with your users' cookies
(realtime/origins.py: scheme, host and port; a cookie socket without an ``Origin`` is refused).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser

from .realtime import tickets
from .realtime.credentials import Credential
from .realtime.origins import OriginValidator
from .users import active_users, is_active

# The scope key under which a ticket socket finds the credential it is bound to.
CREDENTIAL = "notifications_credential"


@database_sync_to_async
def user_for_ticket(ticket: str) -> tuple[Any, Credential | None]:
    """The ticket's user (anonymous if the ticket is bad, used or expired, or the user inactive)
    and the credential the socket is bound to."""
    redeemed = tickets.redeem(ticket)
    if redeemed is None:
        return AnonymousUser(), None
    user_id, credential = redeemed
    user = active_users().filter(pk=user_id).first()
    if user is None or not is_active(user):
        return AnonymousUser(), None
    return user, credential


class TicketAuthMiddleware:
    """Routes ``?ticket=...`` connections straight to ``inner`` with the ticket's user (anonymous
    if the ticket is bad, used or expired: the consumer then closes with 4401), and every other
    connection through ``fallback`` (by default: origin check, then session auth)."""

    def __init__(self, inner: Any, fallback: Any = None) -> None:
        self.inner = inner
        self.fallback = fallback or OriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            query = parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            )
            if "ticket" in query:
                user, credential = await user_for_ticket(query["ticket"][0])
                scope = {**scope, "user": user, CREDENTIAL: credential}
                return await self.inner(scope, receive, send)
        return await self.fallback(scope, receive, send)


def WebSocketAuthStack(inner: Any) -> TicketAuthMiddleware:  # noqa: N802 (reads like a class)
    """The stack to wrap the notifications routes in: tickets, else origin check and session."""
    return TicketAuthMiddleware(inner)
