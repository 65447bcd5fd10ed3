"""The pages an email's links open. No sign-in: each link's signed token is its authority.

``open``: marks one notification read and seen, then redirects to its ``url`` (only a URL
``notify()`` accepts; none: the site's root). ``unsubscribe``: a ``POST`` (what mail clients
send for RFC 8058's one click, or the page's button) turns off that category's email, or every
email; a ``GET`` only shows the button, because mail scanners fetch links to look at them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .. import services
from ..models import Notification
from ..services.sending import validate_url
from . import links
from .messages import language_for

UNSUBSCRIBE_TEMPLATE = "notifications/email/unsubscribe.html"
PROBLEM_TEMPLATE = "notifications/email/problem.html"


@never_cache
@require_http_methods(["GET", "HEAD"])
def open_notification(request: HttpRequest, token: str) -> HttpResponse:
    try:
        notification_id = links.read_open(token)
    except signing.BadSignature:
        return _problem(request, _("This link is not valid."), status=400)
    notification = (
        Notification.objects.filter(pk=notification_id).only("recipient_id", "url").first()
    )
    if notification is None:
        return _problem(request, _("This notification no longer exists."), status=404)
    if request.method == "GET":
        with transaction.atomic():
            Notification.objects.filter(pk=notification.pk).mark_seen()
            services.mark_read(notification.recipient_id, [notification.pk])
    return HttpResponseRedirect(_safe_target(notification.url))


def _safe_target(url: str) -> str:
    try:
        validate_url(url)
    except ValueError:
        return links.absolute("/")
    return url or links.absolute("/")


@never_cache
@csrf_exempt  # RFC 8058: the mail client posts with no cookie and no page; the token is the key
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user_id, category = links.read_unsubscribe(token)
    except signing.BadSignature:
        return _problem(request, _("This link is not valid."), status=400)
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None:
        return _problem(request, _("This account no longer exists."), status=404)
    done = request.method == "POST"
    if done:
        services.mute_email(user, category)
    context: dict[str, Any] = {
        "category": category,
        "done": done,
        "preferences_url": links.preferences_url(),
    }
    with translation.override(language_for(user)):
        return render(request, UNSUBSCRIBE_TEMPLATE, context)


def _problem(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(
        request,
        PROBLEM_TEMPLATE,
        {"message": message, "site_url": links.absolute("/")},
        status=status,
    )
