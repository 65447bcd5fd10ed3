"""The demo's URLs plus ``/bench/trivial/``: the baseline of the polling benchmark."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from project.urls import urlpatterns as project_urlpatterns


def trivial(request: HttpRequest) -> JsonResponse:
    """No database, cache or authentication; synchronous like the DRF viewset, so that both
    pay the same hop from daphne's event loop to Django's sync thread."""
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/trivial/", trivial, name="bench-trivial"), *project_urlpatterns]
