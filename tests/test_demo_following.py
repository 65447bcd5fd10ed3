"""The demo's documents (issue 18): writing one follows it ("author"), commenting follows it
("participated"), an @mention follows it ("mentioned"), and each comment reaches every follower
but its author and those who muted the document, in one notify(). Every form value gets a page,
a redirect or a 4xx, never a 500."""

import runpy
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from notifications.models import Follow, Notification
from project.models import Comment, Document

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def signed_in(user, *, csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf_checks)
    client.force_login(user)
    return client


def reasons(document: Document) -> dict[str, str]:
    """Who follows the document and hears of it (not muted), and why."""
    rows = Follow.objects.of(document).following().select_related("user")
    return {row.user.username: row.reason for row in rows}


def recipients() -> list[str]:
    return sorted(Notification.objects.values_list("recipient__username", flat=True))


def comment(user, document: Document, body: str):
    return signed_in(user).post(f"/documents/{document.pk}/comments/", {"body": body})


def act(user, document: Document, action: str):
    return signed_in(user).post(f"/documents/{document.pk}/following/", {"action": action})


@pytest.fixture
def document(alice) -> Document:
    response = signed_in(alice).post("/documents/", {"title": "Launch plan", "body": "Monday."})
    assert response.status_code == 302
    return Document.objects.get(title="Launch plan")


def test_writing_a_document_follows_it_as_its_author(alice):
    response = signed_in(alice).post("/documents/", {"title": "Launch plan", "body": "Monday."})
    document = Document.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/documents/{document.pk}/"
    assert (document.author, document.body) == (alice, "Monday.")
    assert reasons(document) == {"alice": "author"}
    assert Notification.objects.count() == 0


def test_a_comment_follows_its_author_and_notifies_the_others_once(alice, bob, document):
    response = comment(bob, document, "Looks good.\nShip it.")
    posted = Comment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/documents/{document.pk}/#comment-{posted.pk}"
    assert (posted.author, posted.document, posted.body) == (bob, document, "Looks good.\nShip it.")
    assert reasons(document) == {"alice": "author", "bob": "participated"}
    notification = Notification.objects.get()  # alice's; bob, who wrote it, gets none
    assert notification.recipient == alice
    assert notification.target == document and notification.actor == bob
    assert notification.title == "bob commented on Launch plan"
    assert notification.body == "Looks good.\nShip it."
    assert notification.url == f"/documents/{document.pk}/#comment-{posted.pk}"
    assert notification.category == "comment"


def test_the_author_commenting_stays_the_author_and_notifies_the_commenters(alice, bob, document):
    comment(bob, document, "First.")
    Notification.objects.all().delete()
    comment(alice, document, "Thanks.")
    assert reasons(document) == {"alice": "author", "bob": "participated"}
    assert recipients() == ["bob"]


def test_a_mention_follows_and_notifies_the_mentioned(alice, bob, make_user, document):
    make_user("carol")
    make_user("dave", is_active=False)
    comment(bob, document, "@carol, have a look (@dave, @nobody, @bob too). Mail: x@alice.org")
    assert reasons(document) == {"alice": "author", "bob": "participated", "carol": "mentioned"}
    assert recipients() == ["alice", "carol"]
    # Mentioned again, carol keeps the first reason; a sentence's full stop is not the name's.
    comment(alice, document, "Thanks @carol.")
    assert reasons(document)["carol"] == "mentioned"
    assert recipients() == ["alice", "bob", "carol", "carol"]


def test_muting_stops_the_notifications_and_unmuting_resumes_them(alice, bob, document):
    assert act(alice, document, "mute").status_code == 302
    comment(bob, document, "Anyone?")
    assert Notification.objects.count() == 0
    page = signed_in(alice).get(f"/documents/{document.pk}/")
    assert "You muted this document" in page.text and 'value="unmute"' in page.text
    # Mentioned or commenting, a muted user stays muted: following again undoes no mute.
    comment(bob, document, "@alice?")
    comment(alice, document, "Here.")
    assert Notification.objects.exclude(recipient=bob).count() == 0
    assert Follow.objects.of(document).get(user=alice).is_muted
    assert act(alice, document, "unmute").status_code == 302
    comment(bob, document, "Welcome back.")
    assert recipients() == ["alice", "bob"]  # bob heard of alice's "Here.", alice of this one


def test_unfollowing_stops_the_notifications_until_the_next_follow(alice, bob, document):
    comment(bob, document, "Hello.")
    Notification.objects.all().delete()
    assert act(bob, document, "unfollow").status_code == 302
    assert reasons(document) == {"alice": "author"}
    assert 'value="follow"' in signed_in(bob).get(f"/documents/{document.pk}/").text
    comment(alice, document, "Still there?")
    assert Notification.objects.count() == 0
    assert act(bob, document, "follow").status_code == 302
    assert reasons(document) == {"alice": "author", "bob": "manual"}
    comment(alice, document, "Yes.")
    assert recipients() == ["bob"]


def test_the_page_shows_who_follows_and_why(alice, bob, make_user, document):
    make_user("carol")
    comment(bob, document, "cc @carol")
    act(bob, document, "mute")
    page = signed_in(alice).get(f"/documents/{document.pk}/")
    assert page.status_code == 200
    assert page["Content-Security-Policy"].startswith("default-src 'self'")
    text = " ".join(page.text.split())
    assert "Followers (2)" in text  # bob muted it: he hears of nothing, so is not listed
    alice_row = '<span class="follower-name">alice</span> <span class="follower-reason">author'
    assert alice_row in text
    assert (
        '<span class="follower-name">carol</span> <span class="follower-reason">mentioned</span>'
        in text
    )
    assert "You follow this document (author)" in text and 'value="unfollow"' in text
    assert "cc @carol" in text and "Comments (1)" in text


def test_the_list_links_each_document_and_its_comments(alice, bob, document):
    comment(bob, document, "One.")
    page = signed_in(bob).get("/documents/")
    assert page.status_code == 200
    assert f'href="/documents/{document.pk}/">Launch plan</a>' in page.text
    assert "by alice · 1 comment" in page.text
    assert 'href="/documents/"' in signed_in(bob).get("/").text  # in the nav of every page


# --- bad input: a form error or a 4xx, and nothing written -----------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "This field is required."),
        ("   \n ", "This field is required."),
        ("x" * 20_000, "Ensure this value has at most 5000 characters (it has 20000)."),
        ("hi\x00there", "Null characters are not allowed."),
    ],
)
def test_a_bad_comment_is_a_400_with_the_form_error(alice, bob, document, body, error):
    response = comment(bob, document, body)
    assert response.status_code == 400
    assert error in response.text and "Launch plan" in response.text
    assert Comment.objects.count() == 0 and Notification.objects.count() == 0
    assert reasons(document) == {"alice": "author"}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"title": "", "body": "x"}, "This field is required."),
        ({"title": "a\x00b"}, "Null characters are not allowed."),
        ({"title": "t" * 121}, "Ensure this value has at most 120 characters (it has 121)."),
        ({"title": "t", "body": "b" * 10_001}, "at most 10000 characters"),
    ],
)
def test_a_bad_document_is_a_400_with_the_form_error(alice, fields, error):
    response = signed_in(alice).post("/documents/", fields)
    assert response.status_code == 400 and error in response.text
    assert Document.objects.count() == 0 and Follow.objects.count() == 0


@pytest.mark.parametrize("pk", ["999999", "0", str(10**30)])
def test_a_document_that_does_not_exist_is_a_404(bob, pk):
    client = signed_in(bob)
    assert client.get(f"/documents/{pk}/").status_code == 404
    assert client.post(f"/documents/{pk}/comments/", {"body": "hi"}).status_code == 404
    assert client.post(f"/documents/{pk}/following/", {"action": "follow"}).status_code == 404
    assert client.get(f"/documents/{pk}x/").status_code == 404
    assert Comment.objects.count() == 0 and Follow.objects.count() == 0


@pytest.mark.parametrize("action", ["", "FOLLOW", "delete", "follow\x00", "9" * 5000])
def test_an_unknown_action_is_a_400_naming_the_choices(bob, document, action):
    response = signed_in(bob).post(f"/documents/{document.pk}/following/", {"action": action})
    assert response.status_code == 400
    assert response.text == "action: must be one of follow, unfollow, mute, unmute."
    assert reasons(document) == {"alice": "author"}


def test_a_post_without_the_csrf_token_is_refused(alice, bob, document):
    client = signed_in(bob, csrf_checks=True)
    path = f"/documents/{document.pk}"
    assert client.post(f"{path}/comments/", {"body": "Sneaky."}).status_code == 403
    assert client.post(f"{path}/following/", {"action": "mute"}).status_code == 403
    assert client.post("/documents/", {"title": "Spam"}).status_code == 403
    assert Comment.objects.count() == 0 and Notification.objects.count() == 0
    assert Document.objects.count() == 1 and reasons(document) == {"alice": "author"}
    # With the page's token, the same client may.
    page = client.get(f"{path}/")
    token = page.context["csrf_token"]
    response = client.post(f"{path}/comments/", {"body": "Hi.", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and recipients() == ["alice"]


def test_reading_the_write_urls_is_a_405_and_signed_out_is_sent_to_sign_in(bob, document):
    client = signed_in(bob)
    assert client.get(f"/documents/{document.pk}/comments/").status_code == 405
    assert client.get(f"/documents/{document.pk}/following/").status_code == 405
    assert client.post(f"/documents/{document.pk}/").status_code == 405
    for path in ("/documents/", f"/documents/{document.pk}/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = Client().post(f"/documents/{document.pk}/comments/", {"body": "anon"})
    assert response.status_code == 302 and Comment.objects.count() == 0


# --- queries: the page costs the same with 1 comment and with 20 -----------------------------


@pytest.mark.parametrize("comments", [1, 20])
def test_the_document_page_queries_do_not_grow_with_its_comments(
    alice, bob, make_user, document, django_assert_num_queries, comments
):
    commenters = [bob, *(make_user() for _ in range(4))]
    for n in range(comments):
        comment(commenters[n % len(commenters)], document, f"Comment {n}")
    client = signed_in(alice)
    # the user (the session is cached), the document and its author, the follow rows and their
    # users, the comments and their authors
    with django_assert_num_queries(4):
        page = client.get(f"/documents/{document.pk}/")
    assert page.status_code == 200 and f"Comments ({comments})" in page.text


# --- the demo's set-up ------------------------------------------------------------------------


def test_seeding_writes_alices_launch_plan_which_she_follows_once(capfd):
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    capfd.readouterr()
    document = Document.objects.get(title="Launch plan")
    assert document.author.username == "alice"
    assert reasons(document) == {"alice": "author"}
    assert Document.objects.count() == 2 and Notification.objects.count() == 0


def test_documents_are_followable_over_rest_in_the_demo():
    demo = runpy.run_path(str(ROOT / "project" / "settings.py"))
    assert demo["NOTIFICATIONS"]["FOLLOWABLE_MODELS"] == ["project.document"]


def test_the_admin_lists_and_shows_documents_and_comments(admin_client, alice, bob, document):
    comment(bob, document, "Admin, look.")
    assert admin_client.get("/admin/project/document/").status_code == 200
    act(alice, document, "mute")
    page = admin_client.get(f"/admin/project/document/{document.pk}/change/")
    assert page.status_code == 200 and "Admin, look." in page.text
    # FollowersInline: who follows it and why, and who muted it
    rows = page.context["inline_admin_formsets"][0].formset.queryset
    assert {(row.user.username, row.reason, row.is_muted) for row in rows} == {
        ("alice", "author", True),
        ("bob", "participated", False),
    }
    assert "participated" in page.text
    assert admin_client.get("/admin/project/comment/").status_code == 200
