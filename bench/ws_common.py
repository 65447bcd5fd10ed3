"""What the WebSocket benchmark's processes share: the payload, the fd limit, the command pipe.

Every helper process (clients, sender, reference server) reads one JSON command per line on stdin
and answers one JSON line on stdout; an exception becomes ``{"error": "..."}``. The driver
(``bench.websocket``) bounds every call in time.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

# The content of every notification of the benchmark, in the app (notify()) and in the reference.
TITLE = "Bench notification"
BODY = "Something happened, and you should know about it."
CATEGORY = "bench"
URL = "/bench/"

# What a notification message starts with, as json.dumps() writes the consumer's (and the
# reference's) dict: counting by prefix keeps JSON parsing out of the clients' hot loop.
NOTIFICATION_PREFIX = '{"type": "notification"'


def notification_message(nid: int, data: dict[str, Any], created_at: str, count: int) -> dict:
    """The consumer's ``notification`` message (docs/websocket.md), as the reference sends it."""
    return {
        "type": "notification",
        "notification": {
            "id": nid,
            "title": TITLE,
            "body": BODY,
            "level": "info",
            "category": CATEGORY,
            "url": URL,
            "actor": None,
            "target": None,
            "data": data,
            "created_at": created_at,
            "read_at": None,
            "seen_at": None,
            "archived_at": None,
        },
        "unread_count": count,
        "unseen_count": count,
    }


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve_commands(handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]):
    """Answer commands from stdin until it closes or a command returns None."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        try:
            answer = await handle(json.loads(line))
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
            continue
        if answer is None:
            reply({"ok": True})
            return
        reply(answer)
