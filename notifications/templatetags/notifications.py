"""``{% load notifications %}{% notifications_widget %}``: the live notification bell.

The tag renders the bell, its badge and the inbox panel, and loads the widget's ES module and
stylesheet from the app's static files. Everything the script needs reaches it through ``data-*``
attributes and one ``<script type="application/json">`` block of translated strings, so the
page needs no inline script or style and runs under a strict Content-Security-Policy.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django import template
from django.conf import settings
from django.middleware.csrf import get_token
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.translation import get_language, gettext, ngettext, pgettext

from ..conf import app_settings
from ..models import Level, is_category

register = template.Library()

SOCKET_PATH = "/ws/notifications/"
BADGES = ("unread", "unseen")

# The browser picks a plural category with Intl.PluralRules; gettext picks a form with the
# catalog's own formula. Rendering each plural message for these counts lets the script find,
# for any count, a sample of the same category: together they cover every CLDR category of the
# languages Django ships (0, one, two, few, many, other).
PLURAL_SAMPLES = (0, 1, 2, 3, 5, 6, 7, 11, 12, 20, 21, 22, 25, 100, 101, 102, 111, 1000, 1_000_000)


def _plural(message: Callable[[int], str]) -> dict[str, Any]:
    """``{"forms": [each distinct form], "samples": {"<count>": index into forms}}``."""
    forms: list[str] = []
    samples: dict[str, int] = {}
    for n in PLURAL_SAMPLES:
        form = message(n)
        if form not in forms:
            forms.append(form)
        samples[str(n)] = forms.index(form)
    return {"forms": forms, "samples": samples}


def widget_strings() -> dict[str, Any]:
    """Every string the script shows, translated into the active language."""
    return {
        "notifications": gettext("Notifications"),
        "unread": pgettext("notification state", "Unread"),
        "markRead": gettext("Mark as read"),
        "markUnread": gettext("Mark as unread"),
        "archive": gettext("Archive"),
        "dismiss": gettext("Dismiss"),
        "loading": gettext("Loading…"),
        "empty": gettext("You have no notifications."),
        "loadFailed": gettext("Notifications could not be loaded."),
        "actionFailed": gettext("That did not work. Please try again."),
        "desktopBlocked": gettext("Desktop notifications are blocked in this browser's settings."),
        "preferencesLoadFailed": gettext("Your preferences could not be loaded."),
        "preferencesSaved": gettext("Your preferences were saved."),
        "saving": gettext("Saving…"),
        # The title of a Web Push the service worker cannot read (browsers show one anyway).
        "pushFallbackTitle": gettext("New notification"),
        "cannotMute": pgettext(
            "notification preferences",
            "Always shown in the app: this site does not let you mute it.",
        ),
        # An item's menu, and muting the thread (the notification's target) from it.
        "moreActions": gettext("More actions"),
        "muteThread": gettext("Mute this thread"),
        "unmuteThread": gettext("Unmute this thread"),
        "threadMuted": gettext("Thread muted: you will get no more notifications about it."),
        "threadUnmuted": gettext("Thread unmuted: you will be notified about it again."),
        "undo": pgettext("muted thread", "Undo"),
        "threadNotFound": gettext("This thread cannot be muted: it may have been deleted."),
        "tooManyRequests": gettext("Too many requests. Please wait a moment and try again."),
        # The preferences view's muted threads.
        "unmute": pgettext("muted thread", "Unmute"),
        "threadUnmutedNamed": gettext("Unmuted: %(name)s."),
        "mutedLoadFailed": gettext("Your muted threads could not be loaded."),
        "levels": {level.value: str(level.label) for level in Level},
        "states": {
            "connecting": gettext("Connecting…"),
            "connected": gettext("Live"),
            "reconnecting": gettext("Connection lost. Reconnecting…"),
            "polling": gettext(
                "Live updates are unavailable. Checking for new notifications regularly."
            ),
            "signed-out": gettext("You are signed out. Sign in again to see new notifications."),
        },
        "plurals": {
            "bellUnread": _plural(
                lambda n: ngettext(
                    "Notifications, %(count)s unread", "Notifications, %(count)s unread", n
                )
            ),
            "bellUnseen": _plural(
                lambda n: ngettext(
                    "Notifications, %(count)s new", "Notifications, %(count)s new", n
                )
            ),
            "newNotifications": _plural(
                lambda n: ngettext("%(count)s new notification", "%(count)s new notifications", n)
            ),
            "groupMore": _plural(
                lambda n: ngettext("and %(count)s more like it", "and %(count)s more like it", n)
            ),
            # "alice and 4 others": the newest actor of a grouped notification, and how many more.
            "groupActors": _plural(
                lambda n: ngettext(
                    "%(actor)s and %(count)s other", "%(actor)s and %(count)s others", n
                )
            ),
        },
    }


def _categories(categories: str | Iterable[str] | None) -> str:
    """``"billing, security"`` or a list of slugs, as ``"billing,security"`` for data-categories."""
    if not categories:
        return ""
    if isinstance(categories, str):
        items = categories.split(",")
    elif isinstance(categories, Iterable):
        items = list(categories)
    else:
        raise template.TemplateSyntaxError(
            "notifications_widget: categories must be a comma-separated string or a list"
        )
    names = list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    bad = [name for name in names if not is_category(name)]  # none is empty
    if bad:
        raise template.TemplateSyntaxError(
            f"notifications_widget: categories must be slugs (letters, digits, - and _, at most "
            f"64), not {bad[0]!r}"
        )
    return ",".join(names)


def _web_push() -> dict[str, str]:
    """The public key and the service worker's URL, when the site sends Web Push."""
    if not app_settings.WEB_PUSH:
        return {}
    worker = app_settings.WEB_PUSH_SERVICE_WORKER_URL
    if not worker:
        try:
            worker = reverse("notifications-api:push-service-worker")
        except NoReverseMatch:
            return {}  # a URLconf without the push routes (E013 says so): no Web Push here
    return {"push_key": app_settings.WEB_PUSH_VAPID_PUBLIC_KEY, "service_worker_url": worker}


def _api_url() -> str:
    try:
        return reverse("notifications-api:notification-list")
    except NoReverseMatch:
        raise template.TemplateSyntaxError(
            "notifications_widget needs the REST API: add "
            'path("api/notifications/", include("notifications.api.urls")) to your URLconf.'
        ) from None


@register.inclusion_tag("notifications/widget.html", takes_context=True)
def notifications_widget(
    context: template.Context,
    badge: str = "unread",
    socket_url: str = SOCKET_PATH,
    api_url: str | None = None,
    categories: str | Iterable[str] | None = None,
) -> dict[str, Any]:
    """The bell, badge and panel for the signed-in user; nothing for anonymous visitors.

    ``badge`` is what the badge counts: ``"unread"`` (the default) or ``"unseen"`` (new since
    the panel was last opened). ``socket_url`` and ``api_url`` override where the WebSocket and
    the REST API are mounted. ``categories`` (``"billing,security"``, or a list) names the
    categories the preferences view offers to mute besides those it sees in the notifications
    (the API has no list of them).
    """
    if badge not in BADGES:
        raise template.TemplateSyntaxError(
            f"notifications_widget: badge must be one of {', '.join(BADGES)}, not {badge!r}"
        )
    known_categories = _categories(categories)
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not user.is_authenticated:
        return {"show": False}
    return {
        "show": True,
        "widget_id": f"nw-{secrets.token_hex(4)}",
        "api_url": api_url or _api_url(),
        "socket_url": socket_url,
        # The cookie is read first (it follows a token rotated in another tab); the rendered
        # token serves projects whose CSRF cookie is HttpOnly or kept in the session.
        "csrf_token": get_token(request) if request is not None else "",
        "csrf_cookie": "" if settings.CSRF_USE_SESSIONS else settings.CSRF_COOKIE_NAME,
        "language": get_language() or settings.LANGUAGE_CODE,
        "login_url": resolve_url(settings.LOGIN_URL),
        # Tabs of one browser coordinate per user: a tab still showing a signed-out user never
        # relays to the tabs of the one who signed in after.
        "user_key": str(user.pk),
        "badge": badge,
        "categories": known_categories,
        "strings": widget_strings(),
        **_web_push(),
    }
