"""WebSocket routes. Wire them into your ASGI application as the README shows."""

from django.urls import path

from .realtime.consumer import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi(), name="notifications-ws"),
]
