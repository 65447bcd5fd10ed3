"""ASGI entry point: Django for HTTP, the notifications consumer for WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()  # sets Django up before anything imports models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from notifications.auth import WebSocketAuthStack  # noqa: E402
from notifications.routing import websocket_urlpatterns  # noqa: E402

if settings.DEBUG:
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)  # the demo serves its own files

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Tickets (?ticket=...) for API clients; otherwise the Origin check and session auth.
        "websocket": WebSocketAuthStack(URLRouter(websocket_urlpatterns)),
    }
)
