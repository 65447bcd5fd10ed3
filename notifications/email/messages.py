"""One digest as an email: subject, plain text and HTML from templates a project can override,
in the user's language, with the headers mail clients use to unsubscribe in one click."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.module_loading import import_string
from django.utils.text import Truncator

from ..conf import app_settings
from ..models import Digest, Notification
from . import links

# Templates, each overridable in a project's own templates directory.
SUBJECT_TEMPLATE = "notifications/email/digest_subject.txt"
TEXT_TEMPLATE = "notifications/email/digest.txt"
HTML_TEMPLATE = "notifications/email/digest.html"

# Notifications listed in one email; the rest are counted ("and 12 more").
SHOWN = 20
# Characters of a body shown (the plain text's, as the HTML's truncatechars).
BODY_CHARS = 300


@dataclass(frozen=True)
class Item:
    """One notification as the templates show it."""

    title: str
    body: str
    level: str
    category: str
    count: int  # how many it stands for (a group)
    created_at: Any
    link: str  # marks it read and seen, then goes to its url

    @property
    def text_body(self) -> str:
        """The body as the plain text shows it: shortened, each line indented under the title."""
        return "\n".join(
            f"  {line}" for line in Truncator(self.body).chars(BODY_CHARS).splitlines()
        )


def language_for(user: Any) -> str:
    """The language ``user``'s emails are written in: ``EMAIL_LANGUAGE``'s answer, else the
    user's ``language`` attribute, else ``LANGUAGE_CODE``; always one the project offers."""
    offered = {code for code, _ in settings.LANGUAGES}
    hook = app_settings.EMAIL_LANGUAGE
    chosen = import_string(hook)(user) if hook else getattr(user, "language", None)
    for language in (chosen, settings.LANGUAGE_CODE):
        if isinstance(language, str):
            for candidate in (language, language.split("-")[0]):
                if candidate in offered:
                    return candidate
    return settings.LANGUAGE_CODE


def build(
    digest: Digest,
    address: str,
    notifications: Sequence[Notification],
    total: int,
    category: str,
) -> EmailMultiAlternatives:
    """The email for ``digest``, to ``address``: ``notifications`` newest first (at most
    ``SHOWN``), ``total`` how many the digest carries in all, ``category`` theirs when they all
    have the same one (its unsubscribe link turns off that category; "" turns off every email).
    """
    user = digest.user
    unsubscribe = links.unsubscribe_url(user.pk, category)
    with translation.override(language_for(user)):
        items = [
            Item(
                title=notification.title,
                body=notification.body,
                level=notification.level,
                category=notification.category,
                count=notification.group_count,
                created_at=notification.created_at,
                link=links.open_url(notification.pk),
            )
            for notification in notifications[:SHOWN]
        ]
        context = {
            "user": user,
            "digest": digest,
            "items": items,
            "total": total,
            "more": max(total - len(items), 0),
            "site_url": links.absolute("/"),
            "preferences_url": links.preferences_url(),
            "unsubscribe_url": unsubscribe,
            "unsubscribe_category": category,
        }
        subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
        text = render_to_string(TEXT_TEMPLATE, context)
        html = render_to_string(HTML_TEMPLATE, context)
        language = translation.get_language()
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=app_settings.EMAIL_FROM or settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={
            # The same id every time this digest is sent: a retry after a worker died is one
            # message to the mail stores that fold duplicates.
            "Message-ID": f"<notifications-digest-{digest.pk}@{_domain()}>",
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            "Content-Language": language,
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def _domain() -> str:
    return urlsplit(app_settings.BASE_URL).hostname or "localhost"


def address_of(user: Any) -> str:
    """The user's email address, "" for none."""
    value = getattr(user, user.get_email_field_name(), "") or ""
    return value.strip() if isinstance(value, str) else ""
