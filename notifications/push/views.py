"""The service worker, served from the API's own path rather than as a static file: a service
worker must come from the site's origin (``STATIC_URL`` may be a CDN's), and this way a project
can also route it at its root (docs/push.md)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

SERVICE_WORKER = (
    Path(__file__).resolve().parent.parent / "static/notifications/push/service-worker.js"
)


@cache
def _script() -> bytes:
    return SERVICE_WORKER.read_bytes()


@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_script(), content_type="text/javascript; charset=utf-8")
    # A page may register it for any scope of the site, its root included.
    response["Service-Worker-Allowed"] = "/"
    # Browsers look for a new version at each registration; let them see it at once.
    response["Cache-Control"] = "no-cache"
    return response
