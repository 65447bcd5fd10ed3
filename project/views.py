"""The demo's pages: the widget on a signed-in home page, a test-notification button, a
sign-in page for the seeded users, the outbox of the emails sent, and shared documents to
comment on and follow. Every page here runs under
a strict Content-Security-Policy (no inline script or style anywhere), which the widget is built
for; the outbox lets inline styles in for the emails it shows."""

import re
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import Truncator
from django.views.decorators.http import require_http_methods, require_POST

from notifications import services
from notifications.conf import app_settings
from notifications.models import Follow
from notifications.services import notify

from . import outbox
from .forms import CommentForm, DocumentForm
from .management.commands.seed_demo import USERS
from .models import Document

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


# --- Documents: something to follow (issue 18) ------------------------------------------------

# "@bob" anywhere but inside a word or an address; a final "." ends the sentence, not the name.
MENTION = re.compile(r"(?<![\w.+-])@([\w.+-]+)")
MOST_MENTIONS = 20
FOLLOWING_ACTIONS = {
    "follow": lambda user, document: services.follow(user, document, reason="manual"),
    "unfollow": services.unfollow,
    "mute": services.mute_object,
    "unmute": services.unmute_object,
}


@strict_csp
@login_required(login_url="login")
@require_http_methods(["GET", "POST"])
def documents(request: HttpRequest) -> HttpResponse:
    """The documents, newest first, and a form for a new one (its author follows it)."""
    form = DocumentForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        with transaction.atomic():
            document = form.save(commit=False)
            document.author = request.user
            document.save()
            services.follow(request.user, document, reason="author")
        return redirect(document)
    listed = Document.objects.select_related("author").annotate(comment_count=Count("comments"))
    context = {"documents": listed, "form": form}
    return render(request, "documents/list.html", context, status=400 if form.errors else 200)


@strict_csp
@login_required(login_url="login")
@require_http_methods(["GET"])
def document(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document.objects.select_related("author"), pk=pk)
    return _document_page(request, document, CommentForm())


@strict_csp
@login_required(login_url="login")
@require_POST
def comment(request: HttpRequest, pk: int) -> HttpResponse:
    """A comment: its author follows the document ("participated"), so do those it mentions
    ("mentioned"), and every follower but the author hears of it, in one ``notify()``."""
    document = get_object_or_404(Document.objects.select_related("author"), pk=pk)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _document_page(request, document, form, status=400)
    user = request.user
    with transaction.atomic():
        posted = form.save(commit=False)
        posted.document, posted.author = document, user
        posted.save()
        services.follow(user, document, reason="participated")
        services.follow_all(_mentioned(posted.body, user), document, reason="mentioned")
        services.notify(
            services.followers(document),
            Truncator(f"{user} commented on {document}").chars(200),
            body=Truncator(posted.body).chars(280),
            category="comment",
            actor=user,
            target=document,
            url=f"{document.get_absolute_url()}#comment-{posted.pk}",
            exclude=user,
        )
    return redirect(f"{document.get_absolute_url()}#comment-{posted.pk}")


@strict_csp
@login_required(login_url="login")
@require_POST
def document_following(request: HttpRequest, pk: int) -> HttpResponse:
    """Follow, unfollow, mute or unmute a document (``action``), then back to its page."""
    document = get_object_or_404(Document, pk=pk)
    action = request.POST.get("action", "")
    if action not in FOLLOWING_ACTIONS:
        message = f"action: must be one of {', '.join(FOLLOWING_ACTIONS)}."
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    FOLLOWING_ACTIONS[action](request.user, document)
    return redirect(document)


def _document_page(
    request: HttpRequest, document: Document, form: CommentForm, status: int = 200
) -> HttpResponse:
    rows = Follow.objects.of(document).select_related("user").order_by("created_at", "id")
    rows = list(rows)
    context = {
        "document": document,
        "comments": document.comments.select_related("author"),
        "form": form,
        "followers": [row for row in rows if row.is_following and not row.is_muted],
        "mine": next((row for row in rows if row.user_id == request.user.pk), None),
    }
    return render(request, "documents/detail.html", context, status=status)


def _mentioned(text: str, author) -> QuerySet:
    """The active users ``text`` mentions with @username, the author left out."""
    names = {name.rstrip(".") for name in MENTION.findall(text)}
    return (
        get_user_model()
        .objects.filter(username__in=sorted(names)[:MOST_MENTIONS], is_active=True)
        .exclude(pk=author.pk)
    )
