"""The demo: its own views (project/views.py: the test-notification button, sign-in and the
language switch answer any form value with a page, a redirect or a 4xx, never a 500), what
``make demo`` prints (the URL it serves, and no event log unless asked), and its email digests
(settings, the seeded addresses, the /outbox/ page of what the file backend wrote)."""

import re
import runpy
import subprocess
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.conf import app_settings
from notifications.email.delivery import send_batch
from notifications.models import Notification
from notifications.services import notify
from project.languages import email_language

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


def test_make_demo_serves_with_uvicorn_when_asked():
    plan = subprocess.run(
        ["make", "-n", "demo", "SERVER=uvicorn", "HOST=0.0.0.0", "PORT=8100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "uvicorn --host 0.0.0.0 --port 8100 --ws wsproto --lifespan off " in plan
    assert "daphne" not in plan


@pytest.mark.parametrize(("value", "level"), [(None, "WARNING"), ("0", "WARNING"), ("1", "INFO")])
def test_the_demos_event_log_is_off_unless_asked(monkeypatch, value, level):
    if value is None:
        monkeypatch.delenv("EVENT_LOG", raising=False)
    else:
        monkeypatch.setenv("EVENT_LOG", value)
    demo = runpy.run_path(str(ROOT / "project" / "settings.py"))
    assert demo["LOGGING"]["loggers"]["notifications.events"]["level"] == level
    assert demo["LOGGING"]["loggers"]["notifications"]["level"] == "INFO"  # warnings show


# --- email digests in the demo: its settings, the users' addresses, and /outbox/ ----------------

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


@pytest.fixture
def mail_folder(settings, tmp_path):
    """The demo's email setup: digests on, emails written to files in a folder of the test's."""
    settings.NOTIFICATIONS = {"EMAIL_DIGESTS": True, "BASE_URL": "http://demo.example"}
    settings.EMAIL_BACKEND = FILE_BACKEND
    settings.EMAIL_FILE_PATH = tmp_path / "sent-emails"
    return settings.EMAIL_FILE_PATH


def send_due_now():
    report = send_batch(now=timezone.now() + timedelta(days=1))
    assert report.sent >= 1
    return report


def test_the_demo_emails_digests_with_short_timings_from_the_environment(monkeypatch):
    for name in ("BASE_URL", "EMAIL_HOST", "EMAIL_AFTER_SECONDS", "EMAIL_FILE_PATH"):
        monkeypatch.delenv(name, raising=False)
    demo = runpy.run_path(str(ROOT / "project" / "settings.py"))
    assert demo["NOTIFICATIONS"]["EMAIL_DIGESTS"] is True
    assert demo["NOTIFICATIONS"]["BASE_URL"] == "http://127.0.0.1:8000"
    assert demo["NOTIFICATIONS"]["EMAIL_AFTER_SECONDS"] == 60
    assert demo["NOTIFICATIONS"]["EMAIL_NOW_LEVELS"] == ["error"]
    assert demo["EMAIL_BACKEND"] == FILE_BACKEND
    assert demo["EMAIL_FILE_PATH"] == ROOT / "sent-emails"  # git-ignored
    monkeypatch.setenv("BASE_URL", "https://demo.example")
    monkeypatch.setenv("EMAIL_HOST", "mail.example")
    monkeypatch.setenv("EMAIL_PORT", "2525")
    monkeypatch.setenv("EMAIL_AFTER_SECONDS", "5")
    demo = runpy.run_path(str(ROOT / "project" / "settings.py"))
    assert demo["NOTIFICATIONS"]["BASE_URL"] == "https://demo.example"
    assert demo["NOTIFICATIONS"]["EMAIL_AFTER_SECONDS"] == 5
    assert (demo["EMAIL_HOST"], demo["EMAIL_PORT"]) == ("mail.example", 2525)
    assert "EMAIL_BACKEND" not in demo  # Django's default: SMTP


def test_the_test_suite_does_not_email_unless_a_test_asks():
    assert app_settings.EMAIL_DIGESTS is False


def test_seeded_users_have_addresses_and_bob_reads_german(capfd):
    call_command("seed_demo")
    users = {user.username: user for user in get_user_model().objects.all()}
    assert {name: user.email for name, user in users.items()} == {
        "admin": "admin@example.com",
        "alice": "alice@example.com",
        "bob": "bob@example.com",
    }
    assert email_language(users["bob"]) == "de" and email_language(users["alice"]) is None
    assert "bob@example.com, emails in German" in capfd.readouterr().out


def test_seeding_again_gives_an_address_to_users_seeded_without_one():
    get_user_model().objects.create_user("alice", password="pw")
    call_command("seed_demo")
    assert get_user_model().objects.get(username="alice").email == "alice@example.com"


def test_the_home_page_links_the_outbox(signed_in, mail_folder):
    page = signed_in.get("/").text
    assert 'href="/outbox/"' in page and "unseen for 900 seconds" in page


def test_the_outbox_lists_and_shows_a_digest_the_file_backend_wrote(signed_in, alice, mail_folder):
    alice.email = "alice@example.com"
    alice.save()
    notify(alice, "Disk almost full", body="92 % <b>used</b>", level="warning", url="/")
    send_due_now()
    page = signed_in.get("/outbox/")
    assert page.status_code == 200
    html = page.text
    assert "alice@example.com" in html and "Disk almost full" in html
    frame = re.search(r'<iframe [^>]*sandbox="([^"]*)" srcdoc="([^"]*)"', html)
    assert frame and "allow-scripts" not in frame[1] and "allow-same-origin" not in frame[1]
    srcdoc = unescape(frame[2])
    assert '<base target="_blank">' in srcdoc and "92 % &lt;b&gt;used&lt;/b&gt;" in srcdoc
    assert "http://demo.example/api/notifications/email/open/" in srcdoc  # links to BASE_URL
    assert "92 % &lt;b&gt;used&lt;/b&gt;" in html.replace(frame[2], "")  # the text part, escaped
    for header in ("List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID", "Auto-Submitted"):
        assert f"<dt>{header}</dt>" in html
    assert "style-src 'self' 'unsafe-inline'" in page["Content-Security-Policy"]
    assert "script-src 'self';" in page["Content-Security-Policy"]


def test_each_message_of_a_batch_file_has_its_page_and_users_see_only_their_own(
    signed_in, alice, bob, make_user, mail_folder
):
    for user in (alice, bob):
        user.email = f"{user.username}@example.com"
        user.save()
        notify(user, f"For {user.username}")
    send_due_now()
    [written] = mail_folder.iterdir()  # one connection, one file, two messages
    listed = signed_in.get("/outbox/").text
    assert "For alice" in listed and "For bob" not in listed
    staff = Client()
    staff.force_login(make_user("boss", is_staff=True))
    listed = staff.get("/outbox/").text
    assert "For alice" in listed and "For bob" in listed
    pages = {staff.get(f"/outbox/{written.name}/{n}/").text for n in (0, 1)}
    shown = {re.search(r'<h2 id="shown-subject">([^<]*)<', page)[1] for page in pages}
    assert shown == {"For alice", "For bob"}
    assert all('<tr aria-current="true">' in page for page in pages)  # marked in the list
    bobs = next(
        n for n in (0, 1) if "For bob</h2>" in staff.get(f"/outbox/{written.name}/{n}/").text
    )
    assert signed_in.get(f"/outbox/{written.name}/{bobs}/").status_code == 404  # not hers


def test_an_unknown_message_is_a_404(signed_in, alice, mail_folder):
    assert signed_in.get("/outbox/20260101-000000-1.log/0/").status_code == 404
    alice.email = "alice@example.com"
    alice.save()
    notify(alice, "One", level="error")
    send_due_now()
    [written] = mail_folder.iterdir()
    assert signed_in.get(f"/outbox/{written.name}/0/").status_code == 200
    assert signed_in.get(f"/outbox/{written.name}/1/").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/outbox/..%2Fsecret.log/0/",
        "/outbox/../secret.log/0/",
        "/outbox/%2E%2E/0/",
        "/outbox/../0/",
        "/outbox/%2Fetc%2Fpasswd/0/",
        "/outbox/..%5Csecret.log/0/",
        "/outbox/secret.log%00/0/",
        "/outbox/sent-emails%2F..%2Fsecret.log/0/",
    ],
)
def test_a_path_out_of_the_folder_is_refused(settings, tmp_path, path):
    admin = get_user_model().objects.create_superuser("boss", password="pw")
    client = Client()
    client.force_login(admin)
    settings.EMAIL_BACKEND = FILE_BACKEND
    settings.EMAIL_FILE_PATH = tmp_path / "sent-emails"
    settings.EMAIL_FILE_PATH.mkdir()
    secret = EmailMessage("Top secret", "the secret body", "x@example.com", ["y@example.com"])
    (tmp_path / "secret.log").write_bytes(secret.message().as_bytes())
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert b"secret body" not in response.content and b"Top secret" not in response.content


def test_with_a_mail_server_the_outbox_says_where_the_emails_went(signed_in, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "mail.example", 2525
    page = signed_in.get("/outbox/")
    assert page.status_code == 200 and "mail.example:2525" in page.text


def test_the_outbox_needs_a_sign_in(mail_folder):
    assert Client().get("/outbox/").status_code == 302


def test_make_demo_runs_the_email_worker_beside_daphne_with_its_base_url():
    plan = subprocess.run(
        ["make", "-n", "demo", "HOST=127.0.0.1", "PORT=8765"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "export BASE_URL=http://127.0.0.1:8765;" in plan
    assert "manage.py db_worker &" in plan and "kill $worker" in plan
