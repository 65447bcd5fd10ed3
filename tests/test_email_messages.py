"""Email digests as a mail server receives them (aiosmtpd, through Django's SMTP backend), and
the links they carry, followed over HTTP as a mail client or a reader would."""

import ast
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation.template import templatize

import notifications
from notifications import services
from notifications.email import claims, delivery
from notifications.models import Channel, Digest, Mute, Notification

BASE_URL = "http://testserver"
AFTER = timedelta(seconds=900)
WINDOW = timedelta(seconds=3600)
OPEN_PATH = re.compile(r"^http://testserver(/api/notifications/email/open/[^/]+/)$")
UNSUBSCRIBE_PATH = re.compile(r"^<http://testserver(/api/notifications/email/unsubscribe/[^/]+/)>$")

# Who reads German or French here (EMAIL_LANGUAGE below); anyone else gets LANGUAGE_CODE.
LANGUAGES = {"dieter": "de", "francoise": "fr", "xavier": "xx-yy"}


def language_of(user):
    return LANGUAGES.get(user.username)


@pytest.fixture(autouse=True)
def email_on(settings, smtp_server, db):
    settings.DEFAULT_FROM_EMAIL = "site@example.com"
    settings.NOTIFICATIONS = {
        "EMAIL_DIGESTS": True,
        "BASE_URL": BASE_URL,
        "EMAIL_AFTER_SECONDS": int(AFTER.total_seconds()),
        "EMAIL_DIGEST_SECONDS": int(WINDOW.total_seconds()),
        "EMAIL_LANGUAGE": f"{__name__}.language_of",
    }


def configure(settings, **options):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, **options}


def due(later=timedelta()):
    """A moment when what is sent now is due (plus ``later``)."""
    return timezone.now() + AFTER + timedelta(seconds=1) + later


def send(later=timedelta()):
    return delivery.send_batch(now=due(later))


@pytest.fixture
def user(make_user):
    return make_user("alice", email="alice@example.com")


def html_of(message):
    return message.get_body(("html",)).get_content().replace("\r\n", "\n")


def text_of(message):
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def open_paths(message):
    """The paths of the message's open links, in the HTML's order."""
    urls = re.findall(r'href="([^"]+/email/open/[^"]+)"', html_of(message))
    return [OPEN_PATH.match(url).group(1) for url in urls]


def unsubscribe_path(message):
    # The header is folded (it is longer than a line should be): unfolded, it starts with a space.
    return UNSUBSCRIBE_PATH.match(message["List-Unsubscribe"].strip()).group(1)


def one_click(path):
    client = Client(enforce_csrf_checks=True)
    return client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )


def email_mutes(user):
    return set(Mute.objects.filter(user=user, channel=Channel.EMAIL).values_list("kind", "value"))


# The message: its parts and what they list


def test_a_digest_has_a_plain_text_and_an_html_part_each_listing_every_notification(
    smtp_server, user
):
    services.notify(user, "Invoice paid", "Thank you for <b>paying</b>.", category="billing")
    services.notify(user, "New comment", "Bob wrote:\nlooks good", category="comments")

    report = send()

    assert report.sent == 1
    [message] = smtp_server.messages
    assert message.is_multipart()
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    html, text = html_of(message), text_of(message)
    for part in (html, text):
        assert "Invoice paid" in part
        assert "New comment" in part
        assert "You have 2 notifications you have not seen yet:" in part
    assert "Thank you for &lt;b&gt;paying&lt;/b&gt;." in html  # escaped, in HTML only
    assert "Bob wrote:<br>looks good" in html
    assert "Thank you for <b>paying</b>." in text
    assert "* New comment\n  Bob wrote:\n  looks good\n  http://testserver/" in text
    # The footer after the signature delimiter of RFC 3676 ("-- "), which clients grey out.
    assert "\n-- \nChoose what you are emailed about: http://testserver/#notif" in text
    # Newest first.
    assert html.index("New comment") < html.index("Invoice paid")


def test_a_grouped_notification_appears_once_with_its_count(smtp_server, user):
    for _ in range(3):
        services.notify(user, "Build failed", group_key="build-42")
    services.notify(user, "Deploy done")

    send()

    [message] = smtp_server.messages
    for part in (html_of(message), text_of(message)):
        assert part.count("Build failed") == 1
        assert "3 times" in part
        assert "Deploy done" in part
    assert message["Subject"] == "2 new notifications"


def test_more_than_twenty_notifications_the_rest_are_counted(smtp_server, user):
    for number in range(1, 24):
        services.notify(user, f"Notification number {number}.")

    send()

    [message] = smtp_server.messages
    html, text = html_of(message), text_of(message)
    for part in (html, text):
        assert "Notification number 23." in part
        assert "Notification number 4." in part
        assert "Notification number 3." not in part
        assert "And 3 more." in part
    assert len(open_paths(message)) == 20
    assert message["Subject"] == "23 new notifications"


def test_text_that_looks_like_html_is_not_escaped_in_the_subject_or_the_plain_text(
    smtp_server, user
):
    services.notify(user, "Tom & Jerry's <show>", "Q&A: \"yes\" > 'no'")

    send()

    [message] = smtp_server.messages
    assert message["Subject"] == "Tom & Jerry's <show>"
    assert "Tom & Jerry's <show>" in text_of(message)
    assert "Q&A: \"yes\" > 'no'" in text_of(message)
    assert "Tom &amp; Jerry&#x27;s &lt;show&gt;" in html_of(message)


# Headers


def test_headers_of_a_digest_of_one_notification(smtp_server, user, settings):
    configure(settings, EMAIL_FROM="Notifications <notify@example.com>")
    [notification] = services.notify(user, "Your export is ready", category="exports")

    send()

    [message] = smtp_server.messages
    digest = Digest.objects.get(user=user)
    assert notification.pk in digest.notifications.values_list("pk", flat=True)
    assert message["From"] == "Notifications <notify@example.com>"
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "Your export is ready"
    assert message["Message-ID"] == f"<notifications-digest-{digest.pk}@testserver>"
    assert unsubscribe_path(message)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "en"
    assert smtp_server.envelopes[0].rcpt_tos == ["alice@example.com"]


def test_headers_of_a_digest_of_several_from_the_default_from_email(smtp_server, user):
    services.notify(user, "One")
    services.notify(user, "Two")
    services.notify(user, "Three")

    send()

    [message] = smtp_server.messages
    assert message["From"] == "site@example.com"
    assert smtp_server.envelopes[0].mail_from == "site@example.com"
    assert message["Subject"] == "3 new notifications"


def test_a_very_long_title_makes_a_subject_of_one_line(smtp_server, user):
    title = "Ünïcode " + "word " * 35
    services.notify(user, title.strip() + "\nsecond line")

    send()

    [message] = smtp_server.messages
    # Folded (and encoded) over several lines; unfolded, one line.
    assert "\n" not in message["Subject"]
    assert message["Subject"].strip() == f"{title.strip()} second line"


# Language


def test_a_german_reader_gets_a_german_digest(smtp_server, make_user):
    dieter = make_user("dieter", email="dieter@example.com")
    for number in range(22):
        services.notify(dieter, f"Mehr {number}")
    for _ in range(3):
        services.notify(dieter, "Gruppe", group_key="g")
    for title in ("Eins", "Zwei"):
        services.notify(dieter, title)

    send()

    [message] = smtp_server.messages
    assert message["Subject"] == "25 neue Benachrichtigungen"
    assert message["Content-Language"] == "de"
    html, text = html_of(message), text_of(message)
    assert '<html lang="de">' in html
    for part in (html, text):
        assert "Sie haben 25 Benachrichtigungen, die Sie noch nicht gesehen haben:" in part
        assert "3-mal" in part
        assert "Und 5 weitere." in part
        assert "Wählen Sie, worüber Sie E-Mails erhalten" in part
        assert "You have" not in part


@pytest.mark.parametrize(
    ("username", "more", "subject", "counted", "stop"),
    [
        (
            "dieter",
            1,
            "21 neue Benachrichtigungen",
            "Und 1 weitere.",
            "Keine E-Mails mehr zu „billing“",
        ),
        ("francoise", 1, "21 nouvelles notifications", "Et 1 autre.", "sur « billing »"),
        ("francoise", 2, "22 nouvelles notifications", "Et 2 autres.", "sur « billing »"),
        ("alice", 1, "21 new notifications", "And 1 more.", 'Stop emails about "billing"'),
    ],
)
def test_plural_forms_in_each_language(
    smtp_server, make_user, username, more, subject, counted, stop
):
    reader = make_user(username, email=f"{username}@example.com")
    for number in range(20 + more):
        services.notify(reader, f"Notification {number}", category="billing")

    send()

    [message] = smtp_server.messages
    assert message["Subject"] == subject
    assert counted in text_of(message)
    assert counted in html_of(message)
    assert stop in text_of(message)


def test_a_french_reader_gets_a_french_digest(smtp_server, make_user):
    francoise = make_user("francoise", email="francoise@example.com")
    services.notify(francoise, "Un")
    services.notify(francoise, "Deux")

    send()

    [message] = smtp_server.messages
    assert message["Subject"] == "2 nouvelles notifications"
    assert message["Content-Language"] == "fr"
    for part in (html_of(message), text_of(message)):
        assert "Vous avez 2 notifications que vous n’avez pas encore vues :" in part
        assert "Tout voir" in part


def test_a_french_digest_of_one_notification(smtp_server, make_user):
    francoise = make_user("francoise", email="francoise@example.com")
    services.notify(francoise, "Seule")

    send()

    [message] = smtp_server.messages
    assert message["Subject"] == "Seule"
    assert "Vous avez une notification que vous n’avez pas encore vue :" in text_of(message)


def test_an_unknown_language_falls_back_to_language_code(smtp_server, make_user, settings):
    xavier = make_user("xavier", email="xavier@example.com")
    services.notify(xavier, "One")
    services.notify(xavier, "Two")
    settings.LANGUAGE_CODE = "fr"

    send()

    [message] = smtp_server.messages
    assert message["Content-Language"] == "fr"
    assert message["Subject"] == "2 nouvelles notifications"


def test_a_user_without_a_language_gets_language_code(smtp_server, user):
    services.notify(user, "One")
    services.notify(user, "Two")

    send()

    [message] = smtp_server.messages
    assert message["Content-Language"] == "en"
    assert message["Subject"] == "2 new notifications"


def messages_of(source, text):
    """The (msgid, msgid_plural or None) pairs a template or a module marks for translation."""
    if source.endswith(".py"):
        return [
            (ast.literal_eval(m), None) for m in re.findall(r"\b_\(((?:\"[^\"]*\"\s*)+)\)", text)
        ]
    literal = r"u?'(?:[^'\\]|\\.)*'"
    calls = re.findall(rf"\b(n?gettext)\(({literal})(?:,\s*({literal}))?", templatize(text))
    return [
        (ast.literal_eval(msgid), ast.literal_eval(plural) if kind == "ngettext" else None)
        for kind, msgid, plural in calls
    ]


@pytest.mark.parametrize("language", ["de", "fr"])
def test_every_string_of_the_emails_and_their_pages_is_translated(language):
    root = Path(notifications.__file__).parent
    sources = [*sorted((root / "templates/notifications/email").iterdir()), root / "email/views.py"]
    found = [pair for path in sources for pair in messages_of(path.name, path.read_text("utf-8"))]
    assert len(found) >= 24
    with translation.override(language):
        for msgid, plural in found:
            if plural is None:
                assert translation.gettext(msgid) != msgid, msgid
            else:
                assert translation.ngettext(msgid, plural, 1) != msgid, msgid
                assert translation.ngettext(msgid, plural, 5) != plural, plural


# Open links


def sent_notification(smtp_server, user, **options):
    """Send ``user`` one notification by email; its row and its open link's path."""
    [notification] = services.notify(user, "Look", **options)
    send()
    [message] = smtp_server.messages
    [path] = open_paths(message)
    return notification, path


def test_an_open_link_marks_read_and_seen_then_redirects_to_the_url(smtp_server, user):
    notification, path = sent_notification(smtp_server, user, url="/projects/7/")
    assert path in text_of(smtp_server.messages[0])

    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == "/projects/7/"
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert notification.seen_at is not None
    assert "no-cache" in response["Cache-Control"]


def test_an_open_link_without_a_url_goes_to_the_site(smtp_server, user):
    notification, path = sent_notification(smtp_server, user)

    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == "http://testserver/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_an_open_link_goes_to_an_absolute_url_notify_accepted(smtp_server, user):
    notification, path = sent_notification(smtp_server, user, url="https://example.org/a?b=c")

    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == "https://example.org/a?b=c"


def test_an_open_link_of_a_notification_already_read_still_redirects(smtp_server, user):
    notification, path = sent_notification(smtp_server, user, url="/x/")
    Client().get(path)

    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == "/x/"


def test_head_on_an_open_link_marks_nothing(smtp_server, user):
    notification, path = sent_notification(smtp_server, user, url="/x/")

    response = Client().head(path)

    assert response.status_code == 302
    notification.refresh_from_db()
    assert notification.read_at is None
    assert notification.seen_at is None


def test_a_tampered_open_link_is_a_400_page(smtp_server, user):
    notification, path = sent_notification(smtp_server, user)
    token = path.rstrip("/").rsplit("/", 1)[1]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    response = Client().get(path.replace(token, tampered))

    assert response.status_code == 400
    assert b"This link is not valid." in response.content
    notification.refresh_from_db()
    assert notification.read_at is None


def test_an_open_link_of_a_deleted_notification_is_a_404_page(smtp_server, user):
    notification, path = sent_notification(smtp_server, user)
    services.delete(user, [notification.pk])

    response = Client().get(path)

    assert response.status_code == 404
    assert b"This notification no longer exists." in response.content


def test_an_open_link_does_not_take_a_token_signed_for_unsubscribing(smtp_server, user):
    notification, _ = sent_notification(smtp_server, user)
    # A well-formed notification id, signed with the other salt.
    token = signing.dumps(notification.pk, salt="notifications.email.unsubscribe")
    [message] = smtp_server.messages
    unsubscribe_token = unsubscribe_path(message).rstrip("/").rsplit("/", 1)[1]

    for wrong in (token, unsubscribe_token):
        response = Client().get(f"/api/notifications/email/open/{wrong}/")
        assert response.status_code == 400
    notification.refresh_from_db()
    assert notification.read_at is None


def test_an_unsubscribe_link_does_not_take_a_token_signed_for_opening(smtp_server, user):
    _, path = sent_notification(smtp_server, user)
    token = signing.dumps([user.pk, "billing"], salt="notifications.email.open")
    open_token = path.rstrip("/").rsplit("/", 1)[1]

    for wrong in (token, open_token):
        response = one_click(f"/api/notifications/email/unsubscribe/{wrong}/")
        assert response.status_code == 400
    assert email_mutes(user) == set()


# One-click unsubscribe (RFC 8058)


def test_one_click_unsubscribe_from_the_header_mutes_the_category(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    send()
    [message] = smtp_server.messages

    response = one_click(unsubscribe_path(message))

    assert response.status_code == 200
    assert email_mutes(user) == {("category", "billing")}
    assert "set-cookie" not in {name.lower() for name in response.headers}
    # In-app is untouched.
    assert services.preferences(user)["muted_categories"] == []
    assert services.preferences(user)["channels"]["email"]["muted_categories"] == ["billing"]


def test_one_click_unsubscribe_twice_changes_nothing(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    send()
    path = unsubscribe_path(smtp_server.messages[0])
    one_click(path)

    response = one_click(path)

    assert response.status_code == 200
    assert Mute.objects.filter(user=user).count() == 1
    assert email_mutes(user) == {("category", "billing")}


def test_get_on_the_unsubscribe_link_asks_and_unsubscribes_nothing(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    send()
    path = unsubscribe_path(smtp_server.messages[0])
    assert f"http://testserver{path}" in html_of(smtp_server.messages[0])

    response = Client().get(path)

    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert 'Stop emails about "billing"?' in response.content.decode()
    assert email_mutes(user) == set()
    assert Client().head(path).status_code == 200
    assert email_mutes(user) == set()


def test_the_confirmation_pages_button_unsubscribes(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    send()
    path = unsubscribe_path(smtp_server.messages[0])

    # What the page's form posts: its button's name and value.
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert 'You will no longer be emailed about "billing".' in response.content.decode()
    assert email_mutes(user) == {("category", "billing")}


def test_after_unsubscribing_the_next_digest_leaves_the_category_out(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    send()
    one_click(unsubscribe_path(smtp_server.messages[0]))
    smtp_server.clear()

    [invoice] = services.notify(user, "Invoice two", category="billing")
    services.notify(user, "A comment", category="comments")
    send(later=WINDOW)

    [message] = smtp_server.messages
    assert message["Subject"] == "A comment"
    assert "Invoice two" not in html_of(message)
    invoice.refresh_from_db()
    assert invoice.digest_id is None
    assert invoice.email_due_at is None  # left the queue for good
    # It still arrived in-app.
    assert Notification.objects.for_user(user).unread().filter(pk=invoice.pk).exists()


def test_unsubscribing_from_a_digest_of_several_categories_stops_every_email(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    services.notify(user, "A comment", category="comments")
    send()
    [message] = smtp_server.messages
    assert "Stop these emails" in html_of(message)

    assert one_click(unsubscribe_path(message)).status_code == 200

    assert email_mutes(user) == {("all", "")}
    assert services.preferences(user)["channels"]["email"]["enabled"] is False
    smtp_server.clear()
    services.notify(user, "Another invoice", category="billing")
    services.notify(user, "Urgent", level="error", email="now")
    report = send(later=WINDOW)
    assert report.claimed == 0
    assert smtp_server.messages == []


def test_the_unsubscribe_page_is_in_the_readers_language(smtp_server, make_user):
    dieter = make_user("dieter", email="dieter@example.com")
    services.notify(dieter, "Rechnung", category="billing")
    send()
    path = unsubscribe_path(smtp_server.messages[0])

    page = Client().get(path, headers={"accept-language": "fr"}).content.decode()
    assert '<html lang="de">' in page
    assert "Keine E-Mails mehr zu „billing“?" in page
    assert ">Abmelden</button>" in page

    done = one_click(path).content.decode()
    assert "Sie erhalten keine E-Mails mehr zu „billing“." in done


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        "a:b:c",
        "%00",
        "abc%00def",
        "%C3%A9t%C3%A9",
        "%E2%80%AE",
        "%ED%A0%80",  # half a UTF-16 pair, as UTF-8
        "%FF%FE",
        "x" * 2000,
    ],
)
@pytest.mark.parametrize("view", ["open", "unsubscribe"])
def test_a_bad_token_is_a_400_page_never_a_500(view, token, user):
    path = f"/api/notifications/email/{view}/{token}/"
    client = Client(raise_request_exception=False)

    responses = [client.get(path), one_click(path) if view == "unsubscribe" else None]

    for response in filter(None, responses):
        assert response.status_code == 400, response.content[:500]
        assert b"This link is not valid." in response.content
    assert email_mutes(user) == set()


def test_a_valid_token_with_a_nul_byte_or_non_ascii_appended_is_a_400(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    send()
    message = smtp_server.messages[0]
    unsubscribe, open_link = unsubscribe_path(message), open_paths(message)[0]

    for suffix in ("%00", quote("é"), quote("\u202e")):
        assert Client().get(open_link.rstrip("/") + suffix + "/").status_code == 400
        bad = unsubscribe.rstrip("/") + suffix + "/"
        assert Client().get(bad).status_code == 400
        assert one_click(bad).status_code == 400
    assert email_mutes(user) == set()
    assert Notification.objects.filter(read_at__isnull=False).count() == 0


def test_an_unsubscribe_link_of_a_deleted_user_is_a_404_page(smtp_server, user):
    services.notify(user, "Invoice", category="billing")
    send()
    path = unsubscribe_path(smtp_server.messages[0])
    user.delete()

    response = one_click(path)

    assert response.status_code == 404
    assert b"This account no longer exists." in response.content


# What is not sent


@pytest.mark.parametrize(
    "done",
    [
        lambda user, ids: services.mark_seen(user, up_to=None),
        lambda user, ids: services.mark_read(user, ids),
        lambda user, ids: services.archive(user, ids),
    ],
    ids=["seen", "read", "archived"],
)
def test_what_is_seen_read_or_archived_before_it_is_due_is_not_emailed(smtp_server, user, done):
    [notification] = services.notify(user, "Look")
    done(user, [notification.pk])

    report = send()

    assert report.claimed == 0
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "done",
    [
        lambda user, ids: services.mark_seen(user, up_to=None),
        lambda user, ids: services.mark_read(user, ids),
        lambda user, ids: services.archive(user, ids),
    ],
    ids=["seen", "read", "archived"],
)
def test_what_is_seen_between_the_claim_and_the_sending_is_not_emailed(
    smtp_server, user, done, monkeypatch
):
    [notification] = services.notify(user, "Look")
    claim = claims.claim

    def claim_then_the_user_looks(now, limit, using):
        ids = claim(now, limit, using)
        done(user, [notification.pk])
        return ids

    monkeypatch.setattr(claims, "claim", claim_then_the_user_looks)

    report = send()

    assert (report.claimed, report.nothing_left, report.sent) == (1, 1, 0)
    assert smtp_server.messages == []
    assert Digest.objects.get(user=user).status == Digest.Status.NOTHING_LEFT


def test_a_user_without_an_email_address_is_skipped_and_counted(smtp_server, make_user, user):
    nobody = make_user("nobody", email="")
    blank = make_user("blank", email="   ")
    services.notify([nobody, blank, user], "Hello")

    report = send()

    assert (report.claimed, report.sent, report.no_address) == (3, 1, 2)
    assert [message["To"] for message in smtp_server.messages] == ["alice@example.com"]
    statuses = dict(Digest.objects.values_list("user__username", "status"))
    assert statuses == {"nobody": "no-address", "blank": "no-address", "alice": "sent"}


def test_nothing_is_sent_before_it_is_due(smtp_server, user):
    services.notify(user, "Look")

    report = delivery.send_batch(now=timezone.now() + AFTER - timedelta(seconds=5))

    assert report.claimed == 0
    assert smtp_server.messages == []


# The window


def test_a_second_digest_waits_for_the_window(smtp_server, user):
    services.notify(user, "First")
    assert send().sent == 1

    services.notify(user, "Second")
    assert send().claimed == 0
    assert len(smtp_server.messages) == 1

    assert send(later=WINDOW).sent == 1
    assert [message["Subject"] for message in smtp_server.messages] == ["First", "Second"]


def test_levels_and_categories_emailed_at_once_do_not_use_up_the_window(
    smtp_server, user, settings
):
    configure(settings, EMAIL_NOW_LEVELS=["error"], EMAIL_NOW_CATEGORIES=["security"])
    services.notify(user, "Waits for the digest")
    services.notify(user, "Disk full", level="error")
    services.notify(user, "New sign-in", category="security")

    report = delivery.send_batch(now=timezone.now())

    assert report.sent == 1
    [message] = smtp_server.messages
    assert message["Subject"] == "2 new notifications"
    html = html_of(message)
    assert "Disk full" in html and "New sign-in" in html
    assert "Waits for the digest" not in html
    assert Digest.objects.get().kind == Digest.Kind.NOW

    # The digest still goes once due, and one sent at once goes even inside its window.
    assert send().sent == 1
    assert smtp_server.messages[1]["Subject"] == "Waits for the digest"
    services.notify(user, "Disk full again", level="error")
    assert delivery.send_batch(now=due()).sent == 1
    assert smtp_server.messages[2]["Subject"] == "Disk full again"


def test_email_none_never_emails_and_email_now_emails_at_once(smtp_server, user):
    [quiet] = services.notify(user, "Quiet", email="none")
    services.notify(user, "Loud", email="now")

    assert delivery.send_batch(now=timezone.now()).sent == 1
    assert send(later=WINDOW * 5).claimed == 0

    assert [message["Subject"] for message in smtp_server.messages] == ["Loud"]
    quiet.refresh_from_db()
    assert quiet.email_due_at is None


# Email mutes


@pytest.mark.parametrize(
    ("channel", "muted"),
    [
        ({"muted_categories": ["billing"]}, "billing"),
        ({"muted_levels": ["warning"]}, "warning"),
        ({"enabled": False}, "everything"),
    ],
)
def test_email_mutes_keep_notifications_out_of_email_but_not_out_of_the_app(
    smtp_server, user, channel, muted
):
    services.set_preferences(user, channels={"email": channel})
    services.notify(user, "Invoice", category="billing", level="warning")
    services.notify(user, "Comment", category="comments")

    send()

    assert Notification.objects.for_user(user).count() == 2
    subjects = [message["Subject"] for message in smtp_server.messages]
    if muted == "everything":
        assert subjects == []
    else:
        assert subjects == ["Comment"]


def test_an_unmutable_category_can_be_muted_for_email(smtp_server, user, settings):
    configure(settings, UNMUTABLE_CATEGORIES=["security"])
    services.set_preferences(user, channels={"email": {"muted_categories": ["security"]}})
    with pytest.raises(ValueError, match="cannot be muted"):
        services.set_preferences(user, muted_categories=["security"])
    services.notify(user, "New sign-in", category="security")

    report = send()

    assert report.claimed == 0
    assert smtp_server.messages == []
    assert Notification.objects.for_user(user).filter(category="security").exists()


# Templates


def test_a_project_can_override_the_templates(smtp_server, user, settings, tmp_path):
    folder = tmp_path / "notifications" / "email"
    folder.mkdir(parents=True)
    (folder / "digest_subject.txt").write_text(
        "{% load i18n %}[Acme] {{ total }} for {{ user.username }}\n"
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    services.notify(user, "One")
    services.notify(user, "Two")

    send()

    [message] = smtp_server.messages
    assert message["Subject"] == "[Acme] 2 for alice"
    assert "You have 2 notifications" in text_of(message)  # the others are the app's
