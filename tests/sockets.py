"""WebSocket client helpers for the tests against a real daphne (end-to-end and faults)."""

import asyncio
import json

from asgiref.sync import sync_to_async
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def open_socket(server, session=None, *, origin=None):
    """A connection to ``server``'s socket with this session cookie (none: anonymous)."""
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/notifications/",
        additional_headers=headers,
        origin=origin or f"http://127.0.0.1:{server.port}",
        proxy=None,
        open_timeout=5,
        close_timeout=2,
    )


@sync_to_async
def session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def receive(ws, seconds: float = 5):
    return json.loads(await asyncio.wait_for(ws.recv(), seconds))


async def close_code(ws, seconds: float = 3) -> int | None:
    """Read (and drop) messages until the server closes; return its close code."""

    async def drain():
        try:
            async for _ in ws:
                pass
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return ws.close_code

    return await asyncio.wait_for(drain(), seconds)
