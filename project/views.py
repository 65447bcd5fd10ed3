"""The demo's pages: the widget on a signed-in home page, a test-notification button, a
sign-in page for the seeded users, and the outbox of the emails sent. Every page here runs under
a strict Content-Security-Policy (no inline script or style anywhere), which the widget is built
for; the outbox lets inline styles in for the emails it shows."""

import re
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from notifications.conf import app_settings
from notifications.services import notify

from . import outbox
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
# Emails style themselves inline, and an iframe's srcdoc document runs under its page's policy.
# The outbox page has no inline style of its own, and its iframe runs no script (sandbox).
OUTBOX_CSP = STRICT_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

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
    after = round(app_settings.EMAIL_AFTER.total_seconds())
    emails = {"digests": app_settings.EMAIL_DIGESTS, "after": after}
    return render(request, "home.html", {"levels": list(SAMPLES), "emails": emails})


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


@login_required(login_url="login")
def outbox_page(request: HttpRequest, file: str | None = None, number: int = 0) -> HttpResponse:
    """The emails the demo sent (file backend), newest first, and one of them as it was sent.
    Any signed-in user sees those to their own address, staff everyone's: an email's links act
    for its recipient without a sign-in (signed tokens), so it is as private as their inbox."""
    context: dict = {"in_use": outbox.in_use(), "folder": ""}
    if not context["in_use"]:
        context["server"] = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    else:
        context["folder"] = outbox.folder()
        address = request.user.email.strip()  # type: ignore[union-attr]

        def visible(message: outbox.Message) -> bool:
            return request.user.is_staff or bool(address) and message.addressed_to(address)

        listed = [message for message in outbox.messages() if visible(message)]
        shown = listed[0] if listed else None
        if file is not None:
            shown = outbox.message(file, number)
            if shown is None or not visible(shown):
                raise Http404("No such message.")
        context |= {"messages": listed[:100], "more": max(len(listed) - 100, 0), "shown": shown}
        if shown is not None:
            context |= {"html": _opening_links_in_new_tabs(shown.part("html"))}
            context |= {"text": shown.part("plain")}
    response = render(request, "outbox.html", context)
    response["Content-Security-Policy"] = OUTBOX_CSP
    return response


def _opening_links_in_new_tabs(html: str) -> str:
    """The email's HTML, its links opening a new tab (a sandboxed frame may open popups, and the
    demo's pages refuse to be framed)."""
    if not html:
        return ""
    base = '<base target="_blank">'
    with_base, found = re.subn(r"(<head\b[^>]*>)", rf"\1{base}", html, count=1, flags=re.I)
    return with_base if found else base + html
