"""{% notifications_widget %}: what it renders, for whom, and in which language."""

import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings
from django.utils import translation

import notifications

pytestmark = pytest.mark.django_db

urlpatterns = []  # a URLconf without the REST API, for the test that needs one


def render(user, source="{% load notifications %}{% notifications_widget %}", **context):
    request = RequestFactory().get("/")
    request.user = user
    return Template(source).render(Context({"request": request, **context}))


def strings_of(html):
    block = re.search(r'<script type="application/json">(.*?)</script>', html, re.S)
    return json.loads(block.group(1))


def test_renders_nothing_for_anonymous_visitors():
    assert render(AnonymousUser()).strip() == ""


def test_renders_the_bell_panel_stylesheet_and_module(alice):
    html = render(alice)
    # All of it in a declarative shadow root, with its stylesheet: the page's CSS stays outside.
    shadow = re.search(r'<template shadowrootmode="open">(.*)</template>', html, re.S).group(1)
    assert '<link rel="stylesheet" href="/static/notifications/widget.css">' in shadow
    assert 'class="nw-bell"' in shadow and 'class="nw-panel"' in shadow
    assert 'class="nw-toasts"' in shadow
    assert '<script type="module" src="/static/notifications/widget.js"></script>' in html
    assert '<button type="button" class="nw-bell" aria-expanded="false"' in html
    assert 'data-api-url="/api/notifications/"' in html
    assert 'data-socket-url="/ws/notifications/"' in html
    assert 'data-csrf-cookie="csrftoken"' in html
    assert re.search(r'data-csrf-token="[A-Za-z0-9]{64}"', html)
    assert f'data-user-key="{alice.pk}"' in html
    assert 'data-badge="unread"' in html
    assert 'data-language="en-us"' in html or 'data-language="en"' in html
    panel = re.search(r'aria-controls="([^"]+)"', html).group(1)
    assert f'<section class="nw-panel" id="{panel}"' in html


def test_needs_no_inline_script_or_style(alice):
    """Under a Content-Security-Policy without 'unsafe-inline' nothing here may be blocked:
    the only inline script is a JSON data block, which browsers never run."""
    html = render(alice)
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts == [
        ' type="application/json"',
        ' type="module" src="/static/notifications/widget.js"',
    ]
    assert "style=" not in html
    assert "<style" not in html
    assert re.search(r"\son[a-z]+=", html) is None


def test_the_strings_block_is_safe_json(alice):
    html = render(alice)
    strings = strings_of(html)
    assert strings["states"]["connected"] == "Live"
    assert strings["levels"] == {
        "info": "Info",
        "success": "Success",
        "warning": "Warning",
        "error": "Error",
    }
    bell = strings["plurals"]["bellUnread"]
    assert bell["forms"] == ["Notifications, %(count)s unread"]
    assert set(bell["samples"].values()) == {0}


def test_options(alice):
    html = render(
        alice,
        '{% load notifications %}{% notifications_widget badge="unseen" '
        'socket_url="/live/ws/" api_url="/v2/notifications/" %}',
    )
    assert 'data-badge="unseen"' in html
    assert 'data-socket-url="/live/ws/"' in html
    assert 'data-api-url="/v2/notifications/"' in html


def test_categories_the_preferences_view_offers(alice):
    """The API lists no categories: a page may name those the preferences view offers to mute."""
    html = render(alice)
    assert "data-categories" not in html
    html = render(
        alice,
        '{% load notifications %}{% notifications_widget categories="billing, security,digest" %}',
    )
    assert 'data-categories="billing,security,digest"' in html
    html = render(
        alice,
        "{% load notifications %}{% notifications_widget categories=known %}",
        known=["billing", "security", "billing"],
    )
    assert 'data-categories="billing,security"' in html
    with pytest.raises(TemplateSyntaxError, match="categories must be slugs"):
        render(alice, '{% load notifications %}{% notifications_widget categories="a b" %}')
    with pytest.raises(TemplateSyntaxError, match="categories must be slugs"):
        render(
            alice,
            "{% load notifications %}{% notifications_widget categories=known %}",
            known=['"><script>'],
        )


def test_the_preferences_view_is_a_disclosure_in_the_panel(alice):
    html = render(alice)
    prefs = re.search(
        r'<button type="button" class="nw-prefs-button" aria-expanded="false" '
        r'aria-controls="([^"]+)">Preferences</button>',
        html,
    )
    assert prefs is not None
    assert f'<div class="nw-prefs" id="{prefs.group(1)}" hidden>' in html
    strings = strings_of(html)
    assert strings["preferencesSaved"] == "Your preferences were saved."
    actors = strings["plurals"]["groupActors"]
    assert [actors["forms"][actors["samples"][n]] for n in ("1", "2")] == [
        "%(actor)s and %(count)s other",
        "%(actor)s and %(count)s others",
    ]


def test_a_bad_badge_is_a_template_error(alice):
    with pytest.raises(TemplateSyntaxError, match="badge must be one of unread, unseen"):
        render(alice, '{% load notifications %}{% notifications_widget badge="all" %}')


@override_settings(ROOT_URLCONF=__name__)
def test_says_what_is_missing_without_the_rest_api(alice):
    with pytest.raises(TemplateSyntaxError, match="needs the REST API"):
        render(alice)


@override_settings(CSRF_USE_SESSIONS=True)
def test_without_a_csrf_cookie_the_rendered_token_serves(alice):
    html = render(alice)
    assert 'data-csrf-cookie=""' in html
    assert re.search(r'data-csrf-token="[A-Za-z0-9]{64}"', html)


@pytest.mark.parametrize(
    ("language", "bell", "mark_all", "one", "two"),
    [
        (
            "fr",
            "Notifications",
            "Tout marquer comme lu",
            "Notifications, %(count)s non lue",
            "Notifications, %(count)s non lues",
        ),
        (
            "de",
            "Benachrichtigungen",
            "Alle als gelesen markieren",
            "Benachrichtigungen, %(count)s ungelesen",
            "Benachrichtigungen, %(count)s ungelesen",
        ),
    ],
)
def test_speaks_the_active_language(alice, language, bell, mark_all, one, two):
    with translation.override(language):
        html = render(alice)
    assert f'<span class="nw-bell-label nw-sr-only">{bell}</span>' in html
    assert mark_all in html
    assert f'data-language="{language}"' in html
    assert f'lang="{language}"' in html
    plural = strings_of(html)["plurals"]["bellUnread"]
    assert plural["forms"][plural["samples"]["1"]] == one
    assert plural["forms"][plural["samples"]["2"]] == two


WIDGET_SOURCES = ("templatetags/notifications.py", "templates/notifications/widget.html")


def test_every_language_shipped_translates_the_whole_widget():
    locale = Path(notifications.__file__).parent / "locale"
    catalogs = sorted(locale.glob("*/LC_MESSAGES/django.po"))
    assert {path.parts[-3] for path in catalogs} >= {"de", "fr"}
    for path in catalogs:
        assert path.with_suffix(".mo").exists(), f"{path}: compile it with msgfmt"
        entries = path.read_text(encoding="utf-8").split("\n\n")[1:]
        widget = [e for e in entries if any(f" {source}:" in e for source in WIDGET_SOURCES)]
        assert len(widget) >= 25
        untranslated = [e for e in widget if re.search(r'^msgstr(\[\d\])? ""\Z', e, re.M)]
        assert untranslated == [], f"{path}: untranslated entries"
        assert not [e for e in widget if "#, fuzzy" in e], f"{path}: fuzzy entries"


def test_web_push_gives_the_widget_the_key_and_the_service_worker(alice, settings):
    assert "data-push-key" not in render(alice) and "data-service-worker" not in render(alice)
    settings.NOTIFICATIONS = {"WEB_PUSH": True, "WEB_PUSH_VAPID_PUBLIC_KEY": "BPublicKey_-"}
    html = render(alice)
    assert 'data-push-key="BPublicKey_-"' in html
    assert 'data-service-worker="/api/notifications/push/service-worker.js' in html
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEB_PUSH_SERVICE_WORKER_URL": "/sw.js"}
    assert 'data-service-worker="/sw.js' in render(alice)
