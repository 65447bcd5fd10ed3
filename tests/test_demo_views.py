"""The demo: its own views (project/views.py: the test-notification button, sign-in and the
language switch answer any form value with a page, a redirect or a 4xx, never a 500), and what
``make demo`` prints (the URL it serves, and no event log unless asked)."""

import runpy
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.models import Notification

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOSTILE = st.one_of(
    st.sampled_from(["", "\x00", "info\x00", "\u00b2", "\u0663", "9" * 5000, "INFO", "fatal"]),
    st.text(max_size=20),
)


@pytest.fixture
def signed_in(alice):
    client = Client()
    client.force_login(alice)
    return client


@pytest.mark.parametrize("level", ["info", "success", "warning", "error"])
def test_the_button_sends_each_level(signed_in, level):
    response = signed_in.post("/send-test/", {"level": level}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and len(response.json()["ids"]) == 1
    assert Notification.objects.get().level == level


@pytest.mark.parametrize("level", ["bogus", "", "INFO", "info\x00", "\u0663", "9" * 5000])
def test_an_unknown_level_is_a_400_naming_it_and_sends_nothing(signed_in, level):
    response = signed_in.post("/send-test/", {"level": level}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json() == {"level": ["level: must be one of info, success, warning, error."]}
    page = signed_in.post("/send-test/", {"level": level})  # the form without JavaScript
    assert page.status_code == 400 and page.text.startswith("level: must be one of")
    assert Notification.objects.count() == 0


@FUZZ
@given(level=HOSTILE)
def test_the_button_answers_any_level(signed_in, level):
    response = signed_in.post("/send-test/", {"level": level}, HTTP_ACCEPT="application/json")
    assert response.status_code in (200, 400)


@FUZZ
@given(username=HOSTILE, password=HOSTILE, next_=HOSTILE)
def test_sign_in_answers_any_form(alice, username, password, next_):
    response = Client().post(
        f"/login/?next={next_}", {"username": username, "password": password, "next": next_}
    )
    assert response.status_code in (200, 302, 400)


@FUZZ
@given(language=HOSTILE, next_=HOSTILE)
def test_the_language_switch_answers_any_form(language, next_):
    response = Client().post("/i18n/setlang/", {"language": language, "next": next_})
    assert response.status_code in (200, 302, 400)


# --- make demo: the URL it serves, and a quiet log -------------------------------------------


def test_seeding_prints_the_sign_in_url_it_is_given_and_no_event_log(capfd):
    call_command("seed_demo", url="http://127.0.0.1:8100/")
    out, err = capfd.readouterr()
    assert "Demo logins (http://127.0.0.1:8100/login/):" in out
    assert "event=" not in out + err  # seeding pushes (group membership), silently


def test_make_demo_seeds_with_the_url_it_serves():
    plan = subprocess.run(
        ["make", "-n", "demo", "HOST=0.0.0.0", "PORT=8100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "seed_demo --url http://0.0.0.0:8100/" in plan
    assert "daphne -b 0.0.0.0 -p 8100 " in plan


@pytest.mark.parametrize(("value", "level"), [(None, "WARNING"), ("0", "WARNING"), ("1", "INFO")])
def test_the_demos_event_log_is_off_unless_asked(monkeypatch, value, level):
    if value is None:
        monkeypatch.delenv("EVENT_LOG", raising=False)
    else:
        monkeypatch.setenv("EVENT_LOG", value)
    demo = runpy.run_path(str(ROOT / "project" / "settings.py"))
    assert demo["LOGGING"]["loggers"]["notifications.events"]["level"] == level
    assert demo["LOGGING"]["loggers"]["notifications"]["level"] == "INFO"  # warnings show
