from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from notifications.models import Notification
from notifications.services import notify


@login_required
def home(request: HttpRequest) -> HttpResponse:
    latest = Notification.objects.for_user(request.user).with_related()[:20]
    return render(request, "home.html", {"latest": latest})


@login_required
@require_POST
def send_test(request: HttpRequest) -> HttpResponse:
    notify(
        request.user,
        "Test notification",
        "You asked for this one from the demo page.",
        level="success",
        category="demo",
        url="/",
    )
    return redirect("home")
