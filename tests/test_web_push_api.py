"""Web Push over REST: ``push-subscriptions/`` (subscribe, list, unsubscribe by endpoint or by
id), a browser handed over from one user to the next, the cap per user, and above all what each
route refuses: a JSON 400 naming the field (``endpoint``, ``keys.p256dh``...) that writes nothing,
a JSON 404 for an id that is none, never a 500. Then WEB_PUSH off, credentials and CSRF, the push
channel of the preferences, query counts and the write throttle; and a hypothesis search throwing
any JSON at POST and DELETE, with an oracle of its own for what may be accepted.

The browsers here are made as ``tests/push_service.py``'s ``subscribe()`` makes them (a fresh
P-256 key pair and a random 16-byte auth secret), on endpoints no one listens to: nothing is
pushed, so no push service needs to run.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import urllib3.exceptions
import urllib3.util
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from notifications.api.throttling import window
from notifications.models import Mute, PushSubscription
from notifications.push import keys

pytestmark = pytest.mark.django_db

BASE = "/api/notifications/"
SUBSCRIPTIONS = f"{BASE}push-subscriptions/"
SERVICE_WORKER = f"{BASE}push/service-worker.js"
PREFS = f"{BASE}preferences/"
SUBJECT = "mailto:ops@example.com"
LOOPBACK = "http://127.0.0.1:8765"  # where the tests' push service would listen; nobody does
FCM = "https://fcm.googleapis.com/fcm/send"
SERVICES = (  # WEB_PUSH_SERVICES' default
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.apple.com",
    "notify.windows.com",
)
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# What the API answers with a subscription, and nothing else: never the browser's keys.
FIELDS = {"id", "endpoint", "user_agent", "created_at", "seen_at", "expires_at", "pushed_at"}
# The largest expirationTime a datetime can hold: 9999-12-31T23:59:59.999Z.
LAST_MS = 253402300799999


# --- browsers ---------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def p256dh() -> str:
    """A browser's public key: a fresh uncompressed P-256 point."""
    private = ec.generate_private_key(ec.SECP256R1())
    return b64url(private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def browser(origin: str = LOOPBACK, *, auth: bytes | None = None, endpoint: str = "") -> dict:
    """What ``PushSubscription.toJSON()`` gives for a newly subscribed browser."""
    return {
        "endpoint": endpoint or f"{origin}/push/{secrets.token_urlsafe(16)}",
        "expirationTime": None,
        "keys": {"p256dh": p256dh(), "auth": b64url(auth or secrets.token_bytes(16))},
    }


def with_keys(body: dict, **changes) -> dict:
    return {**body, "keys": {**body["keys"], **changes}}


def in_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- clients and settings ---------------------------------------------------------------------


@pytest.fixture
def push_on(settings):
    """Web Push on, with a real key pair, and the loopback endpoints of the tests' push service
    accepted."""
    public, private = keys.generate()
    settings.NOTIFICATIONS = {
        "WEB_PUSH": True,
        "WEB_PUSH_VAPID_PUBLIC_KEY": public,
        "WEB_PUSH_VAPID_PRIVATE_KEY": private,
        "WEB_PUSH_VAPID_SUBJECT": SUBJECT,
        "WEB_PUSH_ALLOW_LOOPBACK_HTTP": True,
    }
    return settings


def configure(settings, **overrides) -> None:
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, **overrides}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(alice, push_on):
    return client_for(alice)


def subscribe(client: APIClient, body, **extra):
    return client.post(SUBSCRIPTIONS, body, format="json", **extra)


def unsubscribe(client: APIClient, body):
    return client.delete(SUBSCRIPTIONS, body, format="json")


def raw(client: APIClient, method: str, text, content_type: str = "application/json"):
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return client.generic(method, SUBSCRIPTIONS, data, content_type=content_type)


def endpoints(user) -> set[str]:
    return set(PushSubscription.objects.filter(user=user).values_list("endpoint", flat=True))


def json_error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict) and body, body
    return body


# --- subscribe, list, unsubscribe -------------------------------------------------------------


def test_subscribing_is_a_201_then_a_200_with_one_row_and_the_keys_refreshed(api, alice):
    body = browser()
    created = subscribe(api, body, HTTP_USER_AGENT="Firefox/140.0")
    assert created.status_code == 201, created.json()
    answer = created.json()
    assert set(answer) == FIELDS  # the browser's keys are never echoed
    assert answer["endpoint"] == body["endpoint"]
    assert answer["user_agent"] == "Firefox/140.0"
    assert answer["expires_at"] is None and answer["pushed_at"] is None
    row = PushSubscription.objects.get(pk=answer["id"])
    assert (row.user_id, row.p256dh, row.auth) == (alice.pk, *body["keys"].values())

    again = subscribe(api, body, HTTP_USER_AGENT="Firefox/141.0")
    assert again.status_code == 200
    assert again.json()["id"] == answer["id"]
    assert PushSubscription.objects.count() == 1

    # The browser's keys changed (its push service renewed them): the row follows.
    later = in_ms(timezone.now() + timedelta(days=30))
    renewed = {
        **with_keys(body, p256dh=p256dh(), auth=b64url(b"\x01" * 16)),
        "expirationTime": later,
    }
    response = subscribe(api, renewed)
    assert response.status_code == 200 and response.json()["id"] == answer["id"]
    row.refresh_from_db()
    assert (row.p256dh, row.auth) == (renewed["keys"]["p256dh"], renewed["keys"]["auth"])
    assert row.expires_at == datetime.fromtimestamp(later / 1000, tz=UTC)
    assert row.seen_at > datetime.fromisoformat(answer["seen_at"])
    assert PushSubscription.objects.count() == 1


def test_padded_keys_and_a_long_or_unprintable_user_agent_are_stored_cleaned(api):
    body = browser()
    padded = with_keys(body, auth=body["keys"]["auth"] + "==", p256dh=body["keys"]["p256dh"] + "=")
    response = subscribe(api, padded, HTTP_USER_AGENT="A\x00B\x1bC\u200b" + "x" * 500)
    assert response.status_code == 201, response.json()
    row = PushSubscription.objects.get()
    assert (row.p256dh, row.auth) == (body["keys"]["p256dh"], body["keys"]["auth"])
    assert row.user_agent.startswith("ABC") and len(row.user_agent) == 200


@pytest.mark.parametrize(
    "endpoint",
    [
        f"{FCM}/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABh",
        "https://web.push.apple.com/QGxvbmcgdG9rZW4",  # a subdomain of an allowed service
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAABx",
        "HTTPS://FCM.googleapis.com/fcm/send/abc",
        "https://fcm.googleapis.com:443/fcm/send/abc",
        "http://localhost:9/push/x",
        "http://[::1]:9/push/x",
        "https://127.0.0.1/push/x",  # https on loopback, with loopback allowed
    ],
)
def test_endpoints_on_a_push_service_or_the_loopback_are_taken(api, alice, endpoint):
    response = subscribe(api, browser(endpoint=endpoint))
    assert response.status_code == 201, response.json()
    assert endpoints(alice) == {endpoint}


def test_a_service_added_to_the_setting_is_taken_and_star_takes_any_https_host(api, push_on):
    configure(push_on, WEB_PUSH_SERVICES=["push.example.net"])
    assert subscribe(api, browser("https://eu.push.example.net")).status_code == 201
    assert subscribe(api, browser("https://fcm.googleapis.com")).status_code == 400
    configure(push_on, WEB_PUSH_SERVICES=["*"])
    assert subscribe(api, browser("https://anything.example.org")).status_code == 201


def test_the_list_is_mine_alone_most_recently_seen_first(api, alice, bob):
    first, second, third = browser(), browser(), browser()
    for body in (first, second, third):
        assert subscribe(api, body).status_code == 201
    assert subscribe(client_for(bob), browser()).status_code == 201
    assert subscribe(api, first).status_code == 200  # seen again: first in the list
    listed = api.get(SUBSCRIPTIONS)
    assert listed.status_code == 200
    assert [item["endpoint"] for item in listed.json()] == [
        first["endpoint"],
        third["endpoint"],
        second["endpoint"],
    ]
    assert all(set(item) == FIELDS for item in listed.json())


def test_unsubscribing_by_endpoint_is_a_204_then_a_404(api, alice, bob):
    mine, other = browser(), browser()
    subscribe(api, mine)
    subscribe(api, other)
    # bob's row on the same endpoint (another auth secret: no hand-over) is not alice's to remove
    subscribe(client_for(bob), with_keys(mine, auth=b64url(b"\x02" * 16)))
    response = unsubscribe(api, {"endpoint": mine["endpoint"]})
    assert response.status_code == 204 and not response.content
    assert endpoints(alice) == {other["endpoint"]}
    assert endpoints(bob) == {mine["endpoint"]}
    assert "detail" in json_error(unsubscribe(api, {"endpoint": mine["endpoint"]}), 404)
    assert endpoints(bob) == {mine["endpoint"]}


def test_bob_cannot_unsubscribe_alices_browser_by_its_endpoint(api, alice, bob):
    mine = browser()
    subscribe(api, mine)
    json_error(unsubscribe(client_for(bob), {"endpoint": mine["endpoint"]}), 404)
    assert endpoints(alice) == {mine["endpoint"]}


def test_unsubscribing_by_id_is_a_204_and_anyone_elses_id_a_404(api, alice, bob):
    mine = subscribe(api, browser()).json()["id"]
    kept = subscribe(api, browser()).json()["id"]
    theirs = subscribe(client_for(bob), browser()).json()["id"]
    assert api.delete(f"{SUBSCRIPTIONS}{mine}/").status_code == 204
    assert "detail" in json_error(api.delete(f"{SUBSCRIPTIONS}{mine}/"), 404)
    assert "detail" in json_error(api.delete(f"{SUBSCRIPTIONS}{theirs}/"), 404)
    assert set(PushSubscription.objects.values_list("pk", flat=True)) == {kept, theirs}


@pytest.mark.parametrize(
    "pk",
    [
        "abc",
        "-1",
        "0",
        "1.5",
        "1e3",
        "0x1",
        "99999999999999999999999",
        str(2**63),
        "%D9%A3",  # ٣, an Arabic-Indic three: int() would read it as 3
        "%EF%BC%91",  # a full-width 1
        "%00",
        "1%00",
        "%20",
        "%ED%A0%80",  # a lone surrogate, as UTF-8 bytes
        "%FF",
        "9" * 5000,
    ],
)
def test_an_id_that_is_no_id_is_a_json_404(api, alice, pk):
    for _ in range(3):
        subscribe(api, browser())
    before = set(PushSubscription.objects.values_list("pk", flat=True))
    assert "detail" in json_error(api.delete(f"{SUBSCRIPTIONS}{pk}/"), 404)
    assert set(PushSubscription.objects.values_list("pk", flat=True)) == before


@pytest.mark.parametrize(
    "zero", [0x660, 0x6F0, 0x966, 0xFF10], ids=["arabic", "persian", "devanagari", "full-width"]
)
def test_my_own_id_in_other_digits_is_a_404_too(api, alice, zero):
    pk = subscribe(api, browser()).json()["id"]
    written = str(pk).translate({ord(str(digit)): chr(zero + digit) for digit in range(10)})
    assert int(written) == pk  # as Python would read it
    json_error(api.delete(f"{SUBSCRIPTIONS}{quote(written)}/"), 404)
    assert PushSubscription.objects.filter(pk=pk).exists()


# --- a browser changing hands -----------------------------------------------------------------


def test_a_browser_posted_by_another_user_with_its_secret_is_handed_over(api, alice, bob):
    shared, kept = browser(), browser()
    subscribe(api, shared)
    subscribe(api, kept)
    # alice signed out, bob signed in on the same browser: same endpoint, same keys.
    response = subscribe(client_for(bob), shared)
    assert response.status_code == 201
    assert endpoints(alice) == {kept["endpoint"]}
    assert endpoints(bob) == {shared["endpoint"]}
    # and back again
    assert subscribe(api, shared).status_code == 201
    assert endpoints(alice) == {kept["endpoint"], shared["endpoint"]}
    assert endpoints(bob) == set()


def test_the_same_secret_with_other_padding_or_public_key_is_still_the_same_browser(api, bob):
    shared = browser()
    subscribe(api, shared)
    renewed = with_keys(shared, auth=shared["keys"]["auth"] + "==", p256dh=p256dh())
    assert subscribe(client_for(bob), renewed).status_code == 201
    assert PushSubscription.objects.get().user_id == bob.pk


def test_another_users_post_without_the_secret_locks_no_one_out(api, alice, bob):
    shared = browser()
    subscribe(api, shared)
    guessed = with_keys(shared, auth=b64url(secrets.token_bytes(16)))
    assert subscribe(client_for(bob), guessed).status_code == 201
    assert endpoints(alice) == endpoints(bob) == {shared["endpoint"]}
    rows = PushSubscription.objects.filter(endpoint=shared["endpoint"])
    assert dict(rows.values_list("user_id", "auth")) == {
        alice.pk: shared["keys"]["auth"],
        bob.pk: guessed["keys"]["auth"],
    }
    # alice's browser posting again is still hers, with its own keys
    assert subscribe(api, shared).status_code == 200
    assert endpoints(alice) == endpoints(bob) == {shared["endpoint"]}


# --- the cap per user -------------------------------------------------------------------------


def test_past_the_cap_the_least_recently_seen_browser_makes_room(api, alice, bob, push_on):
    configure(push_on, WEB_PUSH_MAX_SUBSCRIPTIONS=3)
    theirs = [browser() for _ in range(3)]
    for body in theirs:
        subscribe(client_for(bob), body)
    first, second, third, fourth = (browser() for _ in range(4))
    for body in (first, second, third):
        assert subscribe(api, body).status_code == 201
    assert subscribe(api, first).status_code == 200  # seen again: second is now the oldest
    assert subscribe(api, fourth).status_code == 201
    assert endpoints(alice) == {first["endpoint"], third["endpoint"], fourth["endpoint"]}
    assert endpoints(bob) == {body["endpoint"] for body in theirs}  # others' are not counted
    # Seeing an old one again does not count as a new browser: nothing more goes.
    assert subscribe(api, third).status_code == 200
    assert len(endpoints(alice)) == 3


def test_a_lowered_cap_trims_at_the_next_new_browser(api, alice, push_on):
    olds = [browser() for _ in range(5)]
    for body in olds:
        subscribe(api, body)
    configure(push_on, WEB_PUSH_MAX_SUBSCRIPTIONS=2)
    newest = browser()
    assert subscribe(api, newest).status_code == 201
    assert endpoints(alice) == {olds[-1]["endpoint"], newest["endpoint"]}


# --- bad input --------------------------------------------------------------------------------

GOOD = browser(endpoint=f"{FCM}/abc")
NOT_ON_THE_CURVE = b64url(b"\x04" + b"\x01" * 64)
COMPRESSED = b64url(b"\x02" + secrets.token_bytes(32))

BAD_ENDPOINTS_BY_NAME = {
    "null": None,
    "a number": 1,
    "a list": [f"{FCM}/abc"],
    "an object": {"url": f"{FCM}/abc"},
    "true": True,
    "empty": "",
    "http on a push service": "http://fcm.googleapis.com/fcm/send/a",
    "http elsewhere": "http://push.example.com/x",
    "http on a private address": "http://10.0.0.1/x",
    "no allowed service": "https://evil.example.com/x",
    "a private address": "https://10.0.0.1/x",
    "the metadata address": "https://169.254.169.254/latest",
    "a look-alike host": "https://evilfcm.googleapis.com.example.com/x",
    "a suffix look-alike": "https://notfcm.googleapis.com/x",
    "a trailing dot": "https://fcm.googleapis.com./x",
    "javascript:": "javascript:alert(1)",
    "data:": "data:text/plain,hi",
    "ftp": "ftp://fcm.googleapis.com/x",
    "no scheme": "//fcm.googleapis.com/fcm/send/a",
    "a path only": "/fcm/send/a",
    "no host": "https:///fcm/send/a",
    "a user": "https://user@fcm.googleapis.com/x",
    "a user and password": "https://u:p@fcm.googleapis.com/x",
    "the service as the user": "https://fcm.googleapis.com@evil.com/x",
    "a fragment": f"{FCM}/abc#frag",
    "an empty fragment": f"{FCM}/abc#",
    "a NUL": f"{FCM}/a\x00b",
    "a space": f"{FCM}/a b",
    "a leading space": f" {FCM}/ab",
    "a tab": f"{FCM}/a\tb",
    "a newline": f"{FCM}/a\r\nHost: evil.com",
    "a non-ASCII host": "https://fcm.googleäpis.com/x",
    "a punycode look-alike": "https://xn--fcm-ooa.googleapis.com.evil/x",
    "a non-ASCII path": f"{FCM}/ä",
    "a lone surrogate": f"{FCM}/\ud800",
    "3,000 characters": f"{FCM}/{'a' * 3000}",
    "a port that is no number": "https://fcm.googleapis.com:abc/x",
    "a port out of range": "https://fcm.googleapis.com:99999/x",
    "a negative port": "https://fcm.googleapis.com:-1/x",
    "a broken IPv6 host": "https://[fcm.googleapis.com/x",
    "an IPv6 host": "https://[fd00::1]/x",
}
PAST = in_ms(datetime(2020, 1, 1, tzinfo=UTC))

BAD_BODIES = {
    "no endpoint": ({"keys": GOOD["keys"]}, "endpoint"),
    **{
        f"endpoint {name}": ({**GOOD, "endpoint": endpoint}, "endpoint")
        for name, endpoint in BAD_ENDPOINTS_BY_NAME.items()
    },
    # the keys
    "no keys": ({"endpoint": f"{FCM}/abc"}, "keys"),
    "keys null": ({**GOOD, "keys": None}, "keys"),
    "keys a string": ({**GOOD, "keys": "p256dh"}, "keys"),
    "keys a list": ({**GOOD, "keys": [GOOD["keys"]]}, "keys"),
    "no p256dh": ({**GOOD, "keys": {"auth": GOOD["keys"]["auth"]}}, "keys.p256dh"),
    "p256dh null": (with_keys(GOOD, p256dh=None), "keys.p256dh"),
    "p256dh a number": (with_keys(GOOD, p256dh=4), "keys.p256dh"),
    "p256dh a list": (with_keys(GOOD, p256dh=[GOOD["keys"]["p256dh"]]), "keys.p256dh"),
    "p256dh empty": (with_keys(GOOD, p256dh=""), "keys.p256dh"),
    "p256dh not base64url": (with_keys(GOOD, p256dh="not base64!"), "keys.p256dh"),
    "p256dh standard base64": (
        with_keys(GOOD, p256dh=base64.b64encode(b"\xfb\xff" + b"\x00" * 63).decode()),
        "keys.p256dh",
    ),
    "p256dh non-ASCII": (with_keys(GOOD, p256dh="ä" * 87), "keys.p256dh"),
    "p256dh 64 bytes": (with_keys(GOOD, p256dh=b64url(secrets.token_bytes(64))), "keys.p256dh"),
    "p256dh 66 bytes": (with_keys(GOOD, p256dh=GOOD["keys"]["p256dh"] + "AA"), "keys.p256dh"),
    "p256dh off the curve": (with_keys(GOOD, p256dh=NOT_ON_THE_CURVE), "keys.p256dh"),
    "p256dh all zero": (with_keys(GOOD, p256dh=b64url(b"\x04" + b"\x00" * 64)), "keys.p256dh"),
    "p256dh compressed": (with_keys(GOOD, p256dh=COMPRESSED), "keys.p256dh"),
    "p256dh 65 bytes, not 0x04": (
        with_keys(GOOD, p256dh=b64url(b"\x03" + secrets.token_bytes(64))),
        "keys.p256dh",
    ),
    "p256dh huge": (with_keys(GOOD, p256dh="A" * 100_000), "keys.p256dh"),
    "no auth": ({**GOOD, "keys": {"p256dh": GOOD["keys"]["p256dh"]}}, "keys.auth"),
    "auth null": (with_keys(GOOD, auth=None), "keys.auth"),
    "auth a number": (with_keys(GOOD, auth=16), "keys.auth"),
    "auth empty": (with_keys(GOOD, auth=""), "keys.auth"),
    "auth 15 bytes": (with_keys(GOOD, auth=b64url(b"\x07" * 15)), "keys.auth"),
    "auth 17 bytes": (with_keys(GOOD, auth=b64url(b"\x07" * 17)), "keys.auth"),
    "auth non-ASCII": (with_keys(GOOD, auth="ä" * 22), "keys.auth"),
    "auth a NUL": (with_keys(GOOD, auth="\x00" * 22), "keys.auth"),
    "auth 21 characters": (with_keys(GOOD, auth="A" * 21), "keys.auth"),
    "auth padding inside": (with_keys(GOOD, auth="AAAA=AAAAAAAAAAAAAAAAA"), "keys.auth"),
    # expirationTime
    "expirationTime true": ({**GOOD, "expirationTime": True}, "expirationTime"),
    "expirationTime a string": ({**GOOD, "expirationTime": "123"}, "expirationTime"),
    "expirationTime a date": ({**GOOD, "expirationTime": "2030-01-01T00:00:00Z"}, "expirationTime"),
    "expirationTime 1e308": ({**GOOD, "expirationTime": 1e308}, "expirationTime"),
    "expirationTime -1": ({**GOOD, "expirationTime": -1}, "expirationTime"),
    "expirationTime 0": ({**GOOD, "expirationTime": 0}, "expirationTime"),
    "expirationTime past": ({**GOOD, "expirationTime": PAST}, "expirationTime"),
    "expirationTime a list": ({**GOOD, "expirationTime": [[1, 2]] * 5000}, "expirationTime"),
    "expirationTime an object": ({**GOOD, "expirationTime": {"ms": 1}}, "expirationTime"),
    "expirationTime 2**53": ({**GOOD, "expirationTime": 2**53}, "expirationTime"),
    # a datetime holds no later year than 9999: a later expirationTime is no time at all
    "expirationTime 2**53-1": ({**GOOD, "expirationTime": 2**53 - 1}, "expirationTime"),
    "expirationTime in year 10000": ({**GOOD, "expirationTime": LAST_MS + 1}, "expirationTime"),
    # the body
    "a list": ([GOOD], "non_field_errors"),
    "an empty list": ([], "non_field_errors"),
    "a string": ("subscribe me", "non_field_errors"),
    "a number": (42, "non_field_errors"),
    "null": (None, "non_field_errors"),
    "an empty object": ({}, "endpoint"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "field"), BAD_BODIES.values(), ids=list(BAD_BODIES))
def test_a_bad_body_is_a_400_naming_the_field_and_writes_nothing(api, body, field):
    text = json.dumps(body)  # as is: format="json" would refuse a lone surrogate
    answer = json_error(raw(api, "POST", text), 400)
    assert list(answer) == [field], answer
    assert isinstance(answer[field], list) and all(answer[field]), answer
    assert not PushSubscription.objects.exists()


RAW_BODIES = {
    "NaN": ('{"endpoint": "%s/abc", "expirationTime": NaN, "keys": %s}', "detail"),
    "Infinity": ('{"endpoint": "%s/abc", "expirationTime": Infinity, "keys": %s}', "detail"),
    "10**400": (
        '{"endpoint": "%s/abc", "expirationTime": 1' + "0" * 400 + ', "keys": %s}',
        "expirationTime",
    ),
    "5,000 digits": (
        '{"endpoint": "%s/abc", "expirationTime": ' + "9" * 5000 + ', "keys": %s}',
        "detail",
    ),
    "1e400": ('{"endpoint": "%s/abc", "expirationTime": 1e400, "keys": %s}', "expirationTime"),
}


@pytest.mark.parametrize(("template", "field"), RAW_BODIES.values(), ids=list(RAW_BODIES))
def test_json_numbers_python_reads_and_javascript_does_not_are_a_400(api, template, field):
    text = template % (FCM, json.dumps(GOOD["keys"]))
    answer = json_error(raw(api, "POST", text), 400)
    assert field in answer, answer
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    ("text", "content_type", "field"),
    [
        ("[" * 10_000 + "]" * 10_000, "application/json", "detail"),
        ('{"endpoint": ' * 5_000 + "1" + "}" * 5_000, "application/json", "detail"),
        ('{"endpoint": "https://fcm.googleapis.com/x", "keys": {', "application/json", "detail"),
        ("not json", "application/json", "detail"),
        ("", "application/json", "endpoint"),
        ("\x00", "application/json", "detail"),
        (b"\xff\xfe", "application/json", "detail"),
        ('{"endpoint": "\\ud800"}', "application/json", "endpoint"),
    ],
    ids=[
        "10,000 deep",
        "objects 5,000 deep",
        "truncated",
        "not JSON",
        "empty",
        "a NUL",
        "not UTF-8",
        "a lone surrogate",
    ],
)
def test_bodies_that_are_no_subscription_are_a_400(api, text, content_type, field):
    answer = json_error(raw(api, "POST", text, content_type), 400)
    assert field in answer, answer
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    ("text", "content_type"),
    [
        (json.dumps(GOOD), "text/plain"),
        (f"endpoint={FCM}/abc&keys=x", "application/x-www-form-urlencoded"),
        ("--b--\r\n", "multipart/form-data; boundary=b"),
        ("junk", "multipart/form-data"),
    ],
    ids=["text", "a form", "an empty multipart", "a multipart without boundary"],
)
def test_anything_but_json_is_a_json_415(api, text, content_type):
    json_error(raw(api, "POST", text, content_type), 415)
    assert not PushSubscription.objects.exists()


def test_http_on_the_loopback_needs_its_setting(api, push_on):
    configure(push_on, WEB_PUSH_ALLOW_LOOPBACK_HTTP=False)
    for endpoint in (
        "http://127.0.0.1:8765/push/a",
        "http://localhost:8765/push/a",
        "http://[::1]:8765/push/a",
        "https://127.0.0.1/push/a",  # nor https there: the loopback is no push service
        "https://localhost/push/a",
    ):
        answer = json_error(subscribe(api, browser(endpoint=endpoint)), 400)
        assert list(answer) == ["endpoint"], (endpoint, answer)
    assert not PushSubscription.objects.exists()


def test_a_backslash_cannot_smuggle_another_host_past_the_allow_list(api):
    """Python's urlsplit() reads the host of ``https://10.0.0.1\\.fcm.googleapis.com/x`` as
    ``10.0.0.1\\.fcm.googleapis.com``, a subdomain of an allowed service; urllib3, which
    push/delivery.py posts the pushes with, reads it as ``10.0.0.1`` (and the path as
    ``/%5C.fcm.googleapis.com/x``), as browsers do: the server would post into its own network."""
    for endpoint in (
        "https://10.0.0.1\\.fcm.googleapis.com/x",
        "https://169.254.169.254\\.push.apple.com/latest/meta-data",
        "https://evil.example.com\\.updates.push.services.mozilla.com/wpush/v2/x",
    ):
        assert not allowed_host(endpoint), endpoint  # where urllib3 would connect
        response = subscribe(api, browser(endpoint=endpoint))
        assert response.status_code == 400, (endpoint, response.status_code, response.json())
        assert "endpoint" in response.json()
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.0.0.1[v1.fcm.googleapis.com]/x",  # urlsplit: host v1.fcm.googleapis.com
        "https://evil.com[::1]/push/x",  # urlsplit: host ::1 (loopback, allowed here)
        "http://127.0.0.1;.[::1]:9/push/x",
    ],
)
def test_an_endpoint_whose_host_urllib3_cannot_read_is_refused(api, endpoint):
    """Python's urlsplit() finds a host in these, an allowed one; urllib3, which the pushes are
    posted with, finds no host at all: no push could ever be posted there."""
    with pytest.raises(urllib3.exceptions.LocationParseError):
        urllib3.util.parse_url(endpoint)
    response = subscribe(api, browser(endpoint=endpoint))
    assert response.status_code == 400, (response.status_code, response.json())
    assert list(response.json()) == ["endpoint"]
    assert not PushSubscription.objects.exists()


def test_a_far_expiration_time_breaks_neither_the_answer_nor_the_list(api, settings):
    """9999-12-31T23:59:59Z is a datetime; shown in a time zone east of UTC it is in year 10000,
    which no datetime holds. Refused (naming the field, writing nothing) or taken (and then
    listed): not a row written behind a 400 that makes the user's list a 400 from then on."""
    settings.TIME_ZONE = "Asia/Tokyo"
    response = subscribe(api, {**browser(), "expirationTime": LAST_MS})
    if response.status_code == 400:
        assert list(response.json()) == ["expirationTime"], response.json()
        assert not PushSubscription.objects.exists()
    else:
        assert response.status_code == 201, response.content
    assert api.get(SUBSCRIPTIONS).status_code == 200


BAD_UNSUBSCRIBES = {
    "no endpoint": ({}, 400),
    "endpoint null": ({"endpoint": None}, 400),
    "endpoint a number": ({"endpoint": 1}, 400),
    "endpoint a list": ({"endpoint": [f"{FCM}/abc"]}, 400),
    "endpoint empty": ({"endpoint": ""}, 404),
    "a list": ([{"endpoint": f"{FCM}/abc"}], 400),
    "a string": (f"{FCM}/abc", 400),
    "null": (None, 400),
    "an unknown endpoint": ({"endpoint": f"{FCM}/unknown"}, 404),
    "a NUL": ({"endpoint": f"{FCM}/a\x00b"}, 404),
    "a lone surrogate": ({"endpoint": f"{FCM}/\ud800"}, 404),
    "non-ASCII": ({"endpoint": f"{FCM}/ä"}, 404),
    "3,000 characters": ({"endpoint": f"{FCM}/{'a' * 3000}"}, 404),
    "100,000 characters": ({"endpoint": "a" * 100_000}, 404),
    "another case": ({"endpoint": f"{FCM}/ABC"}, 404),
}


@pytest.mark.parametrize(("body", "status"), BAD_UNSUBSCRIBES.values(), ids=list(BAD_UNSUBSCRIBES))
def test_a_bad_unsubscribe_is_a_json_4xx_and_removes_nothing(api, alice, body, status):
    subscribe(api, browser(endpoint=f"{FCM}/abc"))
    answer = json_error(raw(api, "DELETE", json.dumps(body)), status)
    assert ("endpoint" if status == 400 else "detail") in answer, answer
    assert endpoints(alice) == {f"{FCM}/abc"}


@pytest.mark.parametrize(
    ("text", "content_type", "status"),
    [
        ("[" * 10_000 + "]" * 10_000, "application/json", 400),
        ("not json", "application/json", 400),
        ("", "application/json", 400),
        (f"endpoint={FCM}/abc", "application/x-www-form-urlencoded", 415),
    ],
    ids=["10,000 deep", "not JSON", "empty", "a form"],
)
def test_unsubscribe_bodies_of_any_kind(api, alice, text, content_type, status):
    subscribe(api, browser(endpoint=f"{FCM}/abc"))
    response = raw(api, "DELETE", text, content_type)
    assert response.status_code == status, response.content[:300]
    if status != 204:
        json_error(response, status)
    assert endpoints(alice) == (set() if status == 204 else {f"{FCM}/abc"})


@pytest.mark.parametrize(
    ("query", "status"),
    [(f"?endpoint={FCM}/abc", 204), ("?endpoint=%00", 404), ("?endpoint=", 404), ("", 400)],
    ids=["the endpoint", "a NUL", "empty", "none"],
)
def test_unsubscribe_by_query_string(api, alice, query, status):
    subscribe(api, browser(endpoint=f"{FCM}/abc"))
    response = api.delete(f"/api/notifications/push-subscriptions/{query}")
    assert response.status_code == status, response.content[:300]
    if status != 204:
        json_error(response, status)
    assert endpoints(alice) == (set() if status == 204 else {f"{FCM}/abc"})


# --- any JSON at all ----------------------------------------------------------------------------


def allowed_host(endpoint: str) -> bool:
    """Whether the host urllib3 (which push/delivery.py posts with) would connect to for
    ``endpoint`` is a push service of WEB_PUSH_SERVICES' default, or the loopback."""
    try:
        url = urllib3.util.parse_url(endpoint)
    except Exception:
        return False
    host = (url.host or "").lower().strip("[]")
    if host in LOOPBACK_HOSTS:
        return url.scheme in ("http", "https")
    return url.scheme == "https" and any(
        host == service or host.endswith("." + service) for service in SERVICES
    )


def _decoded(text) -> bytes | None:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        return None
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None


def acceptable(body) -> bool:
    """What POST may take, written apart from the app: an endpoint urllib3 would post to a push
    service, printable ASCII without a fragment; a P-256 point; a 16-byte secret; a time to come
    that a datetime holds."""
    if not isinstance(body, dict):
        return False
    endpoint = body.get("endpoint")
    if not (
        isinstance(endpoint, str)
        and 0 < len(endpoint) <= 2000
        and re.fullmatch(r"[\x21-\x7e]+", endpoint)
        and "#" not in endpoint
        and allowed_host(endpoint)
    ):
        return False
    pair = body.get("keys")
    if not isinstance(pair, dict):
        return False
    point, secret = _decoded(pair.get("p256dh")), _decoded(pair.get("auth"))
    if point is None or len(point) != 65 or secret is None or len(secret) != 16:
        return False
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    expiration = body.get("expirationTime")
    if expiration is None:
        return True
    return (
        isinstance(expiration, int | float)
        and not isinstance(expiration, bool)
        and math.isfinite(expiration)
        and time.time() * 1000 < expiration <= LAST_MS
    )


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        st.sampled_from(["", "\x00", "\ud800", "٣", "https://", FCM, GOOD["keys"]["auth"]]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
GOOD_ENDPOINTS = [
    f"{FCM}/abc",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "https://web.push.apple.com/QGx",
    "https://wns2-par02p.notify.windows.com/w/?token=BQY",
    "http://127.0.0.1:8765/push/x",
    "http://localhost:9/push/y",
    "http://[::1]:9/p",
]
BAD_ENDPOINTS = list(BAD_ENDPOINTS_BY_NAME.values())
# Pieces that make a URL mean something else to one parser or another.
SHARDS = [
    *"\\@#?/:.%[];,~!$&'()*+= \x00\t\n",
    "evil.com",
    "10.0.0.1",
    "@evil.com",
    "\\.",
    "%2e",
    "%40",
    "\\@",
    ":443",
    ":abc",
    "..",
    "\u3002",
]


# Put before a push service's host, they make another host of it for one parser or another.
HOST_PREFIXES = ["10.0.0.1\\.", "evil.com\\.", "evil.com\\@", "evil.com#.", "evil.com?.",
                 "evil.com/.", "evil.com%2f.", "[::1]\\.", "localhost\\.",
                 "127.0.0.1;."]  # fmt: skip


@st.composite
def mutated(draw) -> str:
    endpoint = draw(st.sampled_from(GOOD_ENDPOINTS))
    if draw(st.sampled_from([True, True, True, False])):
        scheme, _, rest = endpoint.partition("://")
        endpoint = f"{scheme}://{draw(st.sampled_from(HOST_PREFIXES))}{rest}"
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(endpoint)))
        endpoint = endpoint[:at] + draw(st.sampled_from(SHARDS)) + endpoint[at:]
    return endpoint


@st.composite
def subscription_bodies(draw) -> tuple[object, bool]:
    """A body shaped like a subscription, each part good, bad or anything; and whether every part
    is good."""
    body: dict = {}
    good = True
    # Weighted to good parts: one bad part hides what the others would have found.
    endpoint = draw(st.sampled_from(["good"] * 3 + ["mutated"] * 4 + ["bad", "any", "absent"]))
    good &= endpoint == "good"
    if endpoint != "absent":
        body["endpoint"] = draw(
            {
                "good": st.sampled_from(GOOD_ENDPOINTS),
                "bad": st.sampled_from(BAD_ENDPOINTS),
                "mutated": mutated(),
                "any": JSON_VALUES,
            }[endpoint]
        )
    which = draw(st.sampled_from(["good"] * 6 + ["bad", "any", "absent"]))
    good &= which == "good"
    if which == "good":
        body["keys"] = {
            "p256dh": p256dh(),
            "auth": b64url(draw(st.binary(min_size=16, max_size=16))),
        }
    elif which == "bad":
        body["keys"] = {
            "p256dh": draw(st.sampled_from([p256dh(), NOT_ON_THE_CURVE, COMPRESSED, "", "ä"])),
            "auth": draw(st.one_of(st.binary(max_size=24).map(b64url), JSON_VALUES)),
        }
    elif which == "any":
        body["keys"] = draw(JSON_VALUES)
    expiration = draw(st.sampled_from(["null", "future", "absent", "far"] * 2 + ["any"]))
    good &= expiration in ("null", "future", "absent")
    if expiration == "null":
        body["expirationTime"] = None
    elif expiration == "future":
        body["expirationTime"] = draw(st.integers(SOON, SOON + 10**11))
    elif expiration == "far":
        body["expirationTime"] = draw(st.sampled_from(FAR))
    elif expiration == "any":
        body["expirationTime"] = draw(JSON_VALUES)
    if draw(st.booleans()):
        body[draw(st.text(max_size=8))] = draw(JSON_VALUES)  # unknown fields are ignored
    return body, good


# Past what a datetime holds, or a double.
FAR = [LAST_MS + 1, 2**53 - 1, 2**53, 2**63, 1e308, 10**400, -(10**400)]
# A day after the module is imported: a time to come whichever example draws it.
SOON = in_ms(datetime.now(UTC) + timedelta(days=1))

HOSTILE = hypothesis_settings(
    max_examples=120,
    # No shrinking: a failure shows its example as drawn (the tests above pin each bug found
    # so far, minimal), in seconds rather than the minute shrinking takes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def rolled_back(call):
    with transaction.atomic():
        try:
            return call()
        finally:
            transaction.set_rollback(True)


@pytest.fixture
def unthrottled(push_on):
    configure(push_on, THROTTLE_RATES={"write": None})


@HOSTILE
@given(
    drawn=st.one_of(
        subscription_bodies(),
        subscription_bodies(),
        subscription_bodies(),
        JSON_VALUES.map(lambda value: (value, False)),
    )
)
def test_any_json_posted_is_a_2xx_only_when_valid_and_never_a_5xx(api, unthrottled, drawn):
    body, good = drawn
    text = json.dumps(body)  # NaN and Infinity as Python writes them, which JSON is not
    good = good and "NaN" not in text and "Infinity" not in text  # outside strings too
    response = rolled_back(lambda: raw(api, "POST", text))
    assert response.status_code < 500
    assert response["Content-Type"].startswith("application/json")
    answer = response.json()
    if response.status_code < 300:
        assert response.status_code in (200, 201)
        assert acceptable(json.loads(text)), (text[:300], answer)
        assert set(answer) == FIELDS
    else:
        assert response.status_code == 400, (response.status_code, answer)
        assert isinstance(answer, dict) and len(answer) == 1, answer
        assert set(answer) <= {
            "endpoint",
            "keys",
            "keys.p256dh",
            "keys.auth",
            "expirationTime",
            "non_field_errors",
            "detail",
        }, answer
        assert not good, (text[:300], answer)


MINE = [f"{FCM}/abc", "http://127.0.0.1:8765/push/x"]
THEIRS = GOOD_ENDPOINTS[1]


@pytest.fixture
def subscribed(alice, bob, push_on):
    """alice's two browsers and bob's one, for every example (each rolled back)."""
    for endpoint in MINE:
        subscribe(client_for(alice), browser(endpoint=endpoint))
    subscribe(client_for(bob), browser(endpoint=THEIRS))


@hypothesis_settings(HOSTILE, max_examples=60)
@given(
    body=st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries({"endpoint": st.one_of(st.sampled_from(GOOD_ENDPOINTS), mutated())}),
        st.fixed_dictionaries({"endpoint": JSON_VALUES}),
    )
)
def test_any_json_deleted_removes_only_my_own_and_is_never_a_5xx(
    api, alice, bob, unthrottled, subscribed, body
):
    text = json.dumps(body)

    def delete():
        return raw(api, "DELETE", text), endpoints(alice), endpoints(bob)

    response, left, theirs = rolled_back(delete)
    assert theirs == {THEIRS}
    if isinstance(body, dict) and body.get("endpoint") in MINE:
        assert response.status_code == 204
        assert left == set(MINE) - {body["endpoint"]}
    else:
        assert response.status_code in (400, 404), (text[:200], response.status_code)
        assert isinstance(response.json(), dict) and response.json()
        assert left == set(MINE)


# --- WEB_PUSH off, credentials, CSRF ----------------------------------------------------------

ROUTES = [
    ("get", SUBSCRIPTIONS),
    ("post", SUBSCRIPTIONS),
    ("delete", SUBSCRIPTIONS),
    ("delete", f"{SUBSCRIPTIONS}1/"),
    ("delete", f"{SUBSCRIPTIONS}abc/"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_with_web_push_off_every_route_is_a_json_404_saying_so(alice, settings, method, path):
    settings.NOTIFICATIONS = {"WEB_PUSH": False}
    body = browser(endpoint=f"{FCM}/abc") if method == "post" else {"endpoint": f"{FCM}/abc"}
    response = getattr(client_for(alice), method)(path, body, format="json")
    assert json_error(response, 404) == {"detail": "Web Push is not enabled on this site."}
    assert not PushSubscription.objects.exists()


def test_with_web_push_off_a_subscription_made_before_stays_but_cannot_be_reached(alice, push_on):
    api = client_for(alice)
    pk = subscribe(api, browser()).json()["id"]
    configure(push_on, WEB_PUSH=False)
    json_error(api.delete(f"{SUBSCRIPTIONS}{pk}/"), 404)
    assert PushSubscription.objects.filter(pk=pk).exists()


def test_with_web_push_off_the_service_worker_is_still_served(client, settings):
    """Not a 404 like the routes above: a site's own service worker may importScripts() it
    (docs/push.md), and a failed import would fail that whole worker's installation."""
    settings.NOTIFICATIONS = {"WEB_PUSH": False}
    response = client.get(SERVICE_WORKER)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")


def request(client: APIClient, method: str, path: str):
    body = None if method == "get" else browser()
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_anonymous_requests_are_refused_in_json(push_on, method, path):
    response = request(APIClient(), method, path)
    assert "detail" in json_error(response, response.status_code)
    assert response.status_code in (401, 403)
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_bad_token_is_a_401(push_on, method, path):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert "detail" in json_error(request(client, method, path), 401)


def test_session_writes_need_the_csrf_token(alice, push_on):
    body = browser()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(SUBSCRIPTIONS).status_code == 200  # reads need none
    for response in (
        subscribe(client, body),
        unsubscribe(client, {"endpoint": body["endpoint"]}),
        client.delete(f"{SUBSCRIPTIONS}1/"),
    ):
        assert "CSRF" in json_error(response, 403)["detail"]
    assert not PushSubscription.objects.exists()
    client.get("/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    assert subscribe(client, body, HTTP_X_CSRFTOKEN=token).status_code == 201


# --- the push channel of the preferences ------------------------------------------------------

DEFAULT_CHANNEL = {"enabled": True, "muted_categories": [], "muted_levels": []}


def test_preferences_tell_whether_push_is_available_and_hold_its_channel(api, push_on):
    answer = api.get(PREFS).json()
    assert answer["push_available"] is True
    assert answer["channels"] == {"email": DEFAULT_CHANNEL, "push": DEFAULT_CHANNEL}
    configure(push_on, WEB_PUSH=False)
    assert api.get(PREFS).json()["push_available"] is False


def test_push_preferences_round_trip_and_leave_in_app_and_email_alone(api, alice):
    api.put(
        PREFS,
        {
            "muted_categories": ["digest"],
            "muted_levels": ["success"],
            "channels": {"email": {"enabled": False, "muted_levels": ["info"]}},
        },
        format="json",
    )
    push = {
        "enabled": False,
        "muted_categories": ["billing", "marketing"],
        "muted_levels": ["info"],
    }
    response = api.put(
        PREFS,
        {"muted_categories": ["digest"], "muted_levels": ["success"], "channels": {"push": push}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    answer = api.get(PREFS).json()
    assert answer["channels"]["push"] == push
    assert answer["channels"]["email"] == {
        "enabled": False,
        "muted_categories": [],
        "muted_levels": ["info"],
    }
    assert (answer["muted_categories"], answer["muted_levels"]) == (["digest"], ["success"])
    assert set(Mute.objects.filter(user=alice, channel="push").values_list("kind", "value")) == {
        ("all", ""),
        ("category", "billing"),
        ("category", "marketing"),
        ("level", "info"),
    }
    # One key of the channel changes only itself; an email-only PUT leaves push alone.
    api.put(
        PREFS,
        {
            "muted_categories": ["digest"],
            "muted_levels": [],
            "channels": {"push": {"enabled": True}},
        },
        format="json",
    )
    api.put(
        PREFS,
        {"muted_categories": [], "muted_levels": [], "channels": {"email": {"enabled": True}}},
        format="json",
    )
    assert api.get(PREFS).json()["channels"]["push"] == {**push, "enabled": True}


@pytest.mark.parametrize(
    ("channels", "field"),
    [
        ({"push": {"enabled": "false"}}, "channels.push.enabled"),
        ({"push": {"enabled": 0}}, "channels.push.enabled"),
        ({"push": {"enabled": None}}, "channels.push.enabled"),
        ({"push": {"enabled": 10**400}}, "channels.push.enabled"),
        ({"push": {"muted_categories": ["not a slug"]}}, "channels.push.muted_categories"),
        ({"push": {"muted_categories": ["a\x00b"]}}, "channels.push.muted_categories"),
        ({"push": {"muted_categories": "billing"}}, "channels.push.muted_categories"),
        ({"push": {"muted_categories": ["x"] * 101}}, "channels.push.muted_categories"),
        ({"push": {"muted_levels": ["fatal"]}}, "channels.push.muted_levels"),
        ({"push": {"muted_levels": [1]}}, "channels.push.muted_levels"),
        ({"push": {"muted_levels": "info"}}, "channels.push.muted_levels"),
        ({"push": []}, "channels.push"),
        ({"push": "off"}, "channels.push"),
        ({"push": None}, "channels.push"),
        ({"push": {"enabled": True}, "email": {"enabled": "no"}}, "channels.email.enabled"),
    ],
)
def test_bad_push_preferences_are_a_400_with_dotted_fields_and_change_nothing(api, channels, field):
    good = {"muted_categories": [], "muted_levels": [], "channels": {"push": {"enabled": False}}}
    assert api.put(PREFS, good, format="json").status_code == 200
    body = {"muted_categories": [], "muted_levels": [], "channels": channels}
    answer = json_error(api.put(PREFS, body, format="json"), 400)
    assert field in answer, answer
    assert api.get(PREFS).json()["channels"]["push"] == {**DEFAULT_CHANNEL, "enabled": False}


# --- query counts -----------------------------------------------------------------------------

# POST of a new browser, in a test's transaction: the hand-over look-up, update_or_create's
# look-up and insert, the surplus past the cap, the row read back for the answer; and the
# SAVEPOINT and RELEASE of three atomic blocks (outside a test, the outer one is the
# transaction). A repeated POST: an update instead of the insert (one atomic block less), and no
# look for a surplus.
NEW_POST_QUERIES = 11
REPEATED_POST_QUERIES = 8
EVICTING_POST_QUERIES = NEW_POST_QUERIES + 1  # the delete of the browser that makes room


def queries_of(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code < 300, response.content[:300]
    return len(queries)


def test_subscribing_and_listing_cost_the_same_queries_for_1_and_8_browsers(api, alice, push_on):
    counts: dict[str, list[int]] = {"new": [], "repeated": [], "list": [], "evicting": []}
    for existing in (1, 8):
        PushSubscription.objects.all().delete()
        for _ in range(existing):
            subscribe(api, browser())
        body = browser()
        counts["new"].append(queries_of(lambda: subscribe(api, body)))  # noqa: B023
        counts["repeated"].append(queries_of(lambda: subscribe(api, body)))  # noqa: B023
        counts["list"].append(queries_of(lambda: api.get(SUBSCRIPTIONS)))
        configure(push_on, WEB_PUSH_MAX_SUBSCRIPTIONS=existing + 1)
        counts["evicting"].append(queries_of(lambda: subscribe(api, browser())))
        assert len(endpoints(alice)) == existing + 1
        configure(push_on, WEB_PUSH_MAX_SUBSCRIPTIONS=10)
    assert counts == {
        "new": [NEW_POST_QUERIES] * 2,
        "repeated": [REPEATED_POST_QUERIES] * 2,
        "list": [1, 1],
        "evicting": [EVICTING_POST_QUERIES] * 2,
    }


# --- the throttle -----------------------------------------------------------------------------


def test_subscribing_and_unsubscribing_count_as_writes(make_user, push_on):
    configure(push_on, THROTTLE_RATES={"write": "3/minute"})
    # A user whose minute (each user's starts at a moment of its own) has 10 s left or more.
    user = make_user()
    while window("write", user.pk, 60, time.time())[1] < 10:
        user = make_user()
    api = client_for(user)
    body = browser()
    writes = [
        subscribe(api, body).status_code,
        subscribe(api, body).status_code,
        unsubscribe(api, {"endpoint": body["endpoint"]}).status_code,
    ]
    assert writes == [201, 200, 204]
    refused = subscribe(api, body)
    assert "throttled" in json_error(refused, 429)["detail"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    json_error(api.delete(f"{SUBSCRIPTIONS}1/"), 429)
    assert not PushSubscription.objects.exists()
    assert api.get(SUBSCRIPTIONS).status_code == 200  # reads are not limited
