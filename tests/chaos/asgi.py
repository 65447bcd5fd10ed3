"""The chaos test's ASGI application: the demo's, with a consumer that fails on purpose.

While the file named by ``CHAOS_FAULT_FLAG`` exists, each client-message handler (``on_*``)
and each channel-layer event handler (``notifications_*``) raises :class:`InjectedFault` with
the probability in ``CHAOS_RAISE_PROBABILITY`` (half of them before the handler's work, half
after it). Every injection is logged (``chaos: injected``), so that the test can count them.
"""

import functools
import inspect
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
from notifications.realtime.consumer import NotificationConsumer  # noqa: E402

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
    """``handler`` (a method, or a function taking the consumer first), raising on purpose."""

    @functools.wraps(handler)
    async def faulty(consumer: Any, *args: Any) -> None:
        when = _roll(name)
        if when == "before":
            raise InjectedFault(f"{name}, before")
        await handler(consumer, *args)
        if when == "after":
            raise InjectedFault(f"{name}, after")

    return faulty


class FaultyConsumer(NotificationConsumer):
    """Raises inside the handlers themselves (not around them), so that whatever the consumer
    does about a handler's exception applies to these too."""


# Channel-layer events "notifications.x" go to methods notifications_x; client messages to
# on_x methods, through the `handlers` table where there is one. Every one, whatever its name.
for _name in dir(NotificationConsumer):
    _member = getattr(NotificationConsumer, _name)
    if _name.startswith(("notifications_", "on_")) and inspect.iscoroutinefunction(_member):
        setattr(FaultyConsumer, _name, _faulty(_name, _member))
if isinstance(getattr(NotificationConsumer, "handlers", None), dict):
    FaultyConsumer.handlers = {
        kind: _faulty(f"on_{kind}", handler)
        for kind, handler in NotificationConsumer.handlers.items()
    }


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebSocketAuthStack(
            URLRouter([path("ws/notifications/", FaultyConsumer.as_asgi())])
        ),
    }
)
