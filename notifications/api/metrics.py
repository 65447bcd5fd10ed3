"""The app's counters in Prometheus' text format, at ``api/notifications/metrics/``.

The figures of every process (from Redis, with a Redis cache; this process's own otherwise), so
one scrape target is enough. With ``METRICS_TOKEN`` set, a scraper sends
``Authorization: Bearer <token>``; without it, only signed-in staff users may read them.
"""

from __future__ import annotations

import hmac
import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..conf import app_settings
from ..realtime.presence import registry

logger = logging.getLogger("notifications")

# name: (Prometheus type, help text); the names are those of registry.COUNTERS and open_sockets.
METRICS = {
    "connects": ("counter", "WebSocket connections accepted for a signed-in user"),
    "auth_failures": ("counter", "WebSocket connections closed with 4401: nobody signed in"),
    "pushes": ("counter", "pushes the channel layer took, one per user and batch"),
    "resumes": ("counter", "resume requests answered with a backlog"),
    "drops": ("counter", "sockets the server closed: limits, outages, sign-outs, shutdowns"),
    "open_sockets": ("gauge", "sockets open now, in every process"),
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# Read-only: any other method is the JSON 405 below, not Django's CSRF page for a scraper's POST.
@csrf_exempt
def metrics(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    try:
        stats = registry().snapshot()
    except Exception as error:
        logger.warning("notifications: counters unreachable for the metrics: %r", error)
        return JsonResponse({"detail": "The counters cannot be read right now."}, status=503)
    return HttpResponse(render(stats), content_type=CONTENT_TYPE)


def render(stats: dict[str, int]) -> str:
    lines = []
    for name, (kind, text) in METRICS.items():
        metric = f"notifications_{name}_total" if kind == "counter" else f"notifications_{name}"
        lines += [f"# HELP {metric} {text}.", f"# TYPE {metric} {kind}", f"{metric} {stats[name]}"]
    return "\n".join(lines) + "\n"


def _refusal(request: HttpRequest) -> JsonResponse | None:
    token = app_settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        response = JsonResponse(
            {"detail": 'Send "Authorization: Bearer <METRICS_TOKEN>".'}, status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="notifications metrics"'
        return response
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return None
    return JsonResponse(
        {"detail": "Staff users only; a scraper needs NOTIFICATIONS['METRICS_TOKEN']."},
        status=403,
    )
