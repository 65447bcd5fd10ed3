"""The unread count's ETag and headers (notifications/api/polling.py), on the 200 and the 304 alike.
Who gets a 304 is in test_polling_credentials.py, what it costs in test_api.py."""

import re

import pytest
from django.test import Client

from notifications import services, versions
from notifications.api import polling

pytestmark = pytest.mark.django_db(transaction=True)

COUNT = "/api/notifications/unread-count/"


@pytest.fixture
def client(alice):
    client = Client()
    client.force_login(alice)
    return client


def test_the_etag_names_the_user_and_their_version(client, alice):
    etag = client.get(COUNT)["ETag"]
    assert re.fullmatch(rf'"{alice.pk}-[0-9a-f]{{16}}-[0-9a-f]{{16}}"', etag)
    assert etag == polling.etag(alice.pk, versions.current(alice.pk))
    assert polling._claimed_user(polling._sent(etag)) == alice.pk


def test_an_etag_names_a_user_by_an_id_up_to_the_largest():
    for raw, expected in [("7", 7), (str(2**63 - 1), 2**63 - 1), (str(2**63), None)]:
        assert polling._claimed_user({f'"{raw}-a-b"'}) == expected
    for raw in ("", "-1", "1.0", "\u0663", "9" * 5000):
        assert polling._claimed_user({f'"{raw}-a-b"'}) is None


@pytest.mark.parametrize("method", ["get", "head"])
def test_the_200_and_the_304_carry_the_same_headers(client, settings, method):
    settings.NOTIFICATIONS = {"POLL_INTERVAL_SECONDS": 9}
    full = getattr(client, method)(COUNT)
    etag = full["ETag"]
    unchanged = getattr(client, method)(COUNT, HTTP_IF_NONE_MATCH=etag)
    assert (full.status_code, unchanged.status_code) == (200, 304)
    for response in (full, unchanged):
        assert response["ETag"] == etag
        assert response["X-Poll-Interval"] == "9"
        assert response["Cache-Control"] == "private, no-cache"
        assert response["Vary"].startswith("Cookie, Authorization")


def test_a_weak_etag_or_a_list_with_an_older_one_of_the_same_user_is_a_304(client, alice):
    older = client.get(COUNT)["ETag"]
    services.notify(alice, "news")
    etag = client.get(COUNT)["ETag"]
    for sent in (f"W/{etag}", f"{older}, {etag}", f"{etag} , W/{older}"):
        assert client.get(COUNT, HTTP_IF_NONE_MATCH=sent).status_code == 304


def test_a_list_naming_anyone_else_is_answered_in_full(client, bob):
    """The 304 reads the notes of the one user the ETags name: a list naming another user, or
    something that names nobody, goes the full way (DRF, the database)."""
    etag = client.get(COUNT)["ETag"]
    bobs = polling.etag(bob.pk, versions.current(bob.pk))
    for sent in (f"{etag}, {bobs}", f'"x", {etag}', f"*, {etag}"):
        assert client.get(COUNT, HTTP_IF_NONE_MATCH=sent).status_code == 200


def test_other_methods_go_to_drf(client):
    etag = client.get(COUNT)["ETag"]
    assert client.post(COUNT, HTTP_IF_NONE_MATCH=etag).status_code == 405
    assert client.options(COUNT, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_news_is_a_200_with_a_new_etag(client, alice):
    etag = client.get(COUNT)["ETag"]
    services.notify(alice, "news")
    response = client.get(COUNT, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response["ETag"] != etag


@pytest.mark.parametrize(
    "sent",
    [
        '"\u0663-a-b"',
        '"1\x00-a-b"',
        '"' + "9" * 5000 + '-a-b"',
        ", ".join(['"1-a-b"'] * 2000),
        "W/",
    ],
    ids=["arabic-indic-digit", "nul", "5000-digits", "2000-etags", "empty-weak"],
)
def test_an_if_none_match_that_names_no_one_is_answered_in_full(client, sent):
    response = client.get(COUNT, HTTP_IF_NONE_MATCH=sent)
    assert response.status_code == 200 and "unread_count" in response.json()
