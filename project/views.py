"""The demo's pages: the widget on a signed-in home page, a test-notification button, and a
sign-in page for the seeded users. Every page here runs under a strict Content-Security-Policy
(no inline script or style anywhere), which the widget is built for."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from notifications.services import notify

from .management.commands.seed_demo import USERS

STRICT_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",  # CSP Level 3: 'self' covers ws(s):// to the same host
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SAMPLES = {
    "info": ("Weekly report is ready", "Your numbers for last week are in.", "/"),
    "success": ("Test notification", "You asked for this one from the demo page.", "/"),
    "warning": ("Disk almost full", "The shared drive is at 92%.", ""),
    "error": ("Payment failed", "The card ending in 4242 was declined.", "/"),
}


def strict_csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.setdefault("Content-Security-Policy", STRICT_CSP)
        return response

    return wrapped


@strict_csp
@login_required(login_url="login")
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"levels": list(SAMPLES)})


@login_required(login_url="login")
@require_POST
def send_test(request: HttpRequest) -> HttpResponse:
    wants_json = "application/json" in request.headers.get("Accept", "")
    level = request.POST.get("level", "success")
    if level not in SAMPLES:
        message = f"level: must be one of {', '.join(SAMPLES)}."
        if wants_json:
            return JsonResponse({"level": [message]}, status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    title, body, url = SAMPLES[level]
    batch = notify(request.user, title, body, level=level, category="demo", url=url)
    if wants_json:
        return JsonResponse({"ids": batch.ids})
    return redirect("home")


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        seeded = set(
            get_user_model()
            .objects.filter(username__in=[name for name, _password, _staff in USERS])
            .values_list("username", flat=True)
        )
        context["demo_users"] = [(name, pw) for name, pw, _staff in USERS if name in seeded]
        return context


login = strict_csp(LoginView.as_view())
