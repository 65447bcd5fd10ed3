"""The language of each demo user's emails (``NOTIFICATIONS["EMAIL_LANGUAGE"]``): bob reads
German, the others get the site's default. A real project would read a profile field."""

from typing import Any

EMAIL_LANGUAGES = {"bob": "de"}


def email_language(user: Any) -> str | None:
    return EMAIL_LANGUAGES.get(user.get_username())
