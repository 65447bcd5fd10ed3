"""The chaos test's ASGI application: the demo's, with a consumer that fails on purpose.

While the file named by ``CHAOS_FAULT_FLAG`` exists, each client-message handler and each
channel-layer event handler raises :class:`InjectedFault` with the probability in
``CHAOS_RAISE_PROBABILITY`` (half of them before the handler's work, half after it). Every
injection is logged (``chaos: injected``), so that the test can count them.
"""

import logging
import os
import random
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.chaos.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from notifications.auth import WebSocketAuthStack  # noqa: E402
from notifications.consumers import NotificationConsumer  # noqa: E402

logger = logging.getLogger("notifications.chaos")
FLAG = os.environ.get("CHAOS_FAULT_FLAG", "")
PROBABILITY = float(os.environ.get("CHAOS_RAISE_PROBABILITY", "0"))
_random = random.Random(os.environ.get("CHAOS_SEED", "0") + str(os.getpid()))


class InjectedFault(RuntimeError):
    """Raised on purpose by the chaos test's consumer."""


def _roll(where: str) -> str | None:
    """Whether to raise in this call: None, "before" or "after" the handler's work."""
    if not PROBABILITY or not FLAG or not os.path.exists(FLAG):
        return None
    if _random.random() >= PROBABILITY:
        return None
    when = _random.choice(("before", "after"))
    logger.warning("chaos: injected %s %s pid=%s", where, when, os.getpid())
    return when


def _faulty(name: str, handler: Any) -> Any:
    async def handle(consumer: Any, content: dict[str, Any]) -> None:
        when = _roll(f"handler={name}")
        if when == "before":
            raise InjectedFault(f"{name}, before")
        await handler(consumer, content)
        if when == "after":
            raise InjectedFault(f"{name}, after")

    return handle


class FaultyConsumer(NotificationConsumer):
    handlers = {
        name: _faulty(name, handler) for name, handler in NotificationConsumer.handlers.items()
    }

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Every channel-layer event of the app ("notifications.created", ...), whatever its name.
        if not message["type"].startswith("notifications."):
            await super().dispatch(message)
            return
        when = _roll(f"event={message['type']}")
        if when == "before":
            raise InjectedFault(f"{message['type']}, before")
        await super().dispatch(message)
        if when == "after":
            raise InjectedFault(f"{message['type']}, after")


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebSocketAuthStack(
            URLRouter([path("ws/notifications/", FaultyConsumer.as_asgi())])
        ),
    }
)
