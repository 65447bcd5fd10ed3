"""The REST API: every endpoint, its permissions and its bad input."""

import pytest
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import connection
from django.http import UnreadablePostError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from notifications import services
from notifications.api.parsers import api_exception
from notifications.models import Notification
from notifications.realtime import tickets

pytestmark = pytest.mark.django_db

BASE = "/api/notifications/"


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_login(alice)
    return client


def ids_of(response):
    return [item["id"] for item in response.json()["results"]]


def sent(user, n=1, **options):
    return [services.notify(user, f"n{i}", **options).ids[0] for i in range(n)]


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", BASE),
        ("get", f"{BASE}1/"),
        ("delete", f"{BASE}1/"),
        ("post", f"{BASE}1/read/"),
        ("post", f"{BASE}read-all/"),
        ("post", f"{BASE}seen/"),
        ("get", f"{BASE}unread-count/"),
        ("post", f"{BASE}ws-ticket/"),
    ],
)
def test_anonymous_gets_401_with_a_json_body(method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_token_authentication(alice):
    token = Token.objects.create(user=alice)
    sent(alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(BASE).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get(BASE).status_code == 401


def test_session_posts_need_csrf(alice):
    [nid] = sent(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(f"{BASE}{nid}/read/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    client.get("/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    assert client.post(f"{BASE}{nid}/read/", HTTP_X_CSRFTOKEN=token).status_code == 200


# --- list ------------------------------------------------------------------------------------


def test_list_is_newest_first_and_only_mine(api, alice, bob):
    mine = sent(alice, 3)
    sent(bob, 2)
    response = api.get(BASE)
    assert response.status_code == 200
    assert ids_of(response) == mine[::-1]
    assert response.json()["results"][0]["title"] == "n2"


def test_cursor_pages_stay_exact_while_new_ones_arrive(api, alice):
    first = sent(alice, 5)
    page1 = api.get(BASE, {"page_size": 2}).json()
    assert [n["id"] for n in page1["results"]] == first[4:2:-1]
    sent(alice, 3)  # arrive between two page loads
    page2 = api.get(page1["next"]).json()
    assert [n["id"] for n in page2["results"]] == first[2:0:-1]
    page3 = api.get(page2["next"]).json()
    assert [n["id"] for n in page3["results"]] == [first[0]] and page3["next"] is None


def test_page_size_default_and_maximum(api, alice, settings):
    settings.NOTIFICATIONS = {"PAGE_SIZE": 2, "MAX_PAGE_SIZE": 3}
    sent(alice, 5)
    assert len(api.get(BASE).json()["results"]) == 2
    assert len(api.get(BASE, {"page_size": 50}).json()["results"]) == 3


def test_filters(api, alice):
    a, b, c, d = sent(alice, 4)
    services.notify(alice, "billing", category="billing", level="error")
    billing = Notification.objects.latest("id").pk
    services.mark_read(alice, [a])
    services.archive(alice, [b])
    assert billing not in ids_of(api.get(BASE, {"category": "other"}))
    assert ids_of(api.get(BASE, {"category": "billing"})) == [billing]
    assert ids_of(api.get(BASE, {"level": "error"})) == [billing]
    assert ids_of(api.get(BASE, {"unread": "true"})) == [billing, d, c]
    assert ids_of(api.get(BASE, {"unread": "false"})) == [a]
    assert ids_of(api.get(BASE, {"archived": "true"})) == [b]
    assert b not in ids_of(api.get(BASE))
    newer = ids_of(api.get(BASE, {"after": c}))
    assert newer[:2] == [billing, d]
    # and, by design, what was created just before `c` (it may have committed late): the
    # client drops the ids it has
    assert set(newer[2:]) <= {a}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"unread": "maybe"}, "unread"),
        ({"archived": "2"}, "archived"),
        ({"level": "fatal"}, "level"),
        ({"category": "not a slug"}, "category"),
        ({"after": "ten"}, "after"),
        ({"after": "-1"}, "after"),
        ({"after": str(2**64)}, "after"),
        ({"page_size": "lots"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "cD1hYmM="}, "cursor"),  # base64 of "p=abc": decodes, but no id (fuzzer-found)
        # Digits Python's int() reads, and no client means: "٣" is an Arabic-Indic three.
        ({"after": "\u0663"}, "after"),
        ({"after": "\u00b2"}, "after"),
        ({"after": "9" * 5000}, "after"),
        ({"page_size": "\u0663"}, "page_size"),
        ({"page_size": "9" * 5000}, "page_size"),
        ({"category": "a\x00"}, "category"),
        ({"level": "\x00"}, "level"),
    ],
)
def test_bad_filters_are_400_naming_the_field(api, params, field):
    response = api.get(BASE, params)
    assert response.status_code == 400
    assert field in response.json()


def test_list_query_count_is_constant(api, alice, bob, django_assert_num_queries):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="g")
    for i in range(50):
        services.notify(alice, f"n{i}", actor=bob if i % 2 else group, target=group)
    # user (the session is cached), page, actors (one per content type: users, groups),
    # targets (groups)
    with django_assert_num_queries(5):
        response = api.get(BASE, {"page_size": 50})
    assert len(response.json()["results"]) == 50
    with django_assert_num_queries(5):
        api.get(BASE, {"page_size": 5})


def test_actor_and_target_render(api, alice, bob):
    services.notify(alice, "Bob waved", actor=bob)
    item = api.get(BASE).json()["results"][0]
    assert item["actor"] == {"type": "auth.user", "id": str(bob.pk), "display": "bob"}
    assert item["target"] is None


# --- one notification --------------------------------------------------------------------------


def test_retrieve_mine_and_404_for_anyone_elses(api, alice, bob):
    [mine], [theirs] = sent(alice), sent(bob)
    assert api.get(f"{BASE}{mine}/").json()["id"] == mine
    response = api.get(f"{BASE}{theirs}/")
    assert response.status_code == 404 and "detail" in response.json()
    for odd in ("abc", str(2**70), "0.5", "1.json"):  # "0.5" was an HTML 404 (fuzzer-found)
        response = api.get(f"{BASE}{odd}/")
        assert response.status_code == 404 and response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("action", "field", "expect_set"),
    [("read", "read_at", True), ("archive", "archived_at", True)],
)
def test_state_actions(api, alice, action, field, expect_set):
    [nid] = sent(alice)
    response = api.post(f"{BASE}{nid}/{action}/")
    assert response.status_code == 200
    assert response.json()[field] is not None
    undo = {"read": "unread", "archive": "unarchive"}[action]
    assert api.post(f"{BASE}{nid}/{undo}/").json()[field] is None


def test_state_actions_on_anyone_elses_are_404_and_change_nothing(api, bob):
    [theirs] = sent(bob)
    for action in ("read", "unread", "archive", "unarchive"):
        assert api.post(f"{BASE}{theirs}/{action}/").status_code == 404
    assert api.delete(f"{BASE}{theirs}/").status_code == 404
    notification = Notification.objects.get(pk=theirs)
    assert notification.read_at is None and notification.archived_at is None


def test_delete(api, alice):
    [nid] = sent(alice)
    assert api.delete(f"{BASE}{nid}/").status_code == 204
    assert not Notification.objects.filter(pk=nid).exists()
    assert api.delete(f"{BASE}{nid}/").status_code == 404


def test_get_on_a_state_action_is_405(api, alice):
    [nid] = sent(alice)
    response = api.get(f"{BASE}{nid}/read/")
    assert response.status_code == 405 and "detail" in response.json()


# --- bulk --------------------------------------------------------------------------------------


def test_read_all_with_up_to_is_race_safe(api, alice):
    old = sent(alice, 2)
    new = sent(alice)
    response = api.post(f"{BASE}read-all/", {"up_to": old[-1]}, format="json")
    assert response.json() == {
        "ids": old,
        "up_to": old[-1],
        "count": 2,
        "unread_count": 1,
        "unseen_count": 3,
    }
    assert Notification.objects.get(pk=new[0]).read_at is None
    assert api.post(f"{BASE}read-all/", {}, format="json").json()["unread_count"] == 0


def test_seen(api, alice):
    first, second = sent(alice, 2)
    response = api.post(f"{BASE}seen/", {"up_to": first}, format="json")
    assert response.json() == {
        "ids": [first],
        "up_to": first,
        "count": 1,
        "unread_count": 2,
        "unseen_count": 1,
    }


def test_read_all_answers_in_bounded_size_however_many_changed(api, alice, settings):
    settings.NOTIFICATIONS = {"MAX_IDS_PER_MESSAGE": 3}
    Notification.objects.bulk_create(Notification(recipient=alice, title="x") for _ in range(4))
    newest = Notification.objects.filter(recipient=alice).latest("id").pk
    response = api.post(f"{BASE}read-all/", {}, format="json")
    assert response.json() == {
        "ids": [],  # more than MAX_IDS_PER_MESSAGE: up_to says which
        "up_to": newest,
        "count": 4,
        "unread_count": 0,
        "unseen_count": 4,
    }
    seen = api.post(f"{BASE}seen/", {"up_to": newest}, format="json").json()
    assert (seen["ids"], seen["up_to"], seen["count"], seen["unseen_count"]) == ([], newest, 4, 0)
    again = api.post(f"{BASE}read-all/", {}, format="json").json()
    assert (again["ids"], again["up_to"], again["count"]) == ([], None, 0)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("read-all/", {"up_to": "all"}),
        ("read-all/", {"up_to": -1}),
        ("read-all/", {"up_to": 2**64}),
        ("seen/", {}),
        ("seen/", {"up_to": None}),
        ("seen/", {"up_to": [1]}),
        ("seen/", {"up_to": "\u0663"}),
        ("seen/", {"up_to": "9" * 5000}),
        ("read-all/", {"up_to": 1e300}),
        ("read-all/", {"up_to": {"a": [[[[1]]]]}}),
    ],
)
def test_bulk_bad_input_is_400_naming_the_field(api, path, body):
    response = api.post(f"{BASE}{path}", body, format="json")
    assert response.status_code == 400 and "up_to" in response.json()


def test_malformed_json_body_is_400(api):
    response = api.post(f"{BASE}read-all/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()


# --- bodies that cannot be read: JSON answers, never a 500 nor Django's HTML page ---------------

WRITES = [("post", "read-all/"), ("post", "seen/"), ("put", "preferences/")]


def nested(depth, leaf="1"):
    return "[" * depth + leaf + "]" * depth


CSRF_SECRET = "s" * 32


def csrf_session(user, header=True):
    """A browser's session: the CSRF cookie, and its token in the header (as the widget sends
    it) or, without ``header``, nowhere but where the CSRF check then looks: the form body."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies["csrftoken"] = CSRF_SECRET
    if header:
        client.defaults["HTTP_X_CSRFTOKEN"] = CSRF_SECRET
    return client


@pytest.fixture(params=["token", "session"])
def any_client(request, alice):
    if request.param == "token":
        return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    return csrf_session(alice)


def send(client, method, path, body, content_type):
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    return client.generic(method.upper(), f"{BASE}{path}", body, content_type=content_type)


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        nested(5_000),  # 10 KB: RecursionError in Python's decoder
        nested(100_000),
        '{"up_to": ' + nested(2_000) + "}",
        '{"muted_categories": [], "muted_levels": [], "x": '
        + '{"a":' * 3_000
        + "1"
        + "}" * 3_000
        + "}",
        nested(33),
    ],
    ids=["5000", "100000", "in-a-field", "objects", "33"],
)
def test_json_nested_too_deeply_is_a_400(any_client, method, path, body):
    response = send(any_client, method, path, body, "application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - nested deeper than 32 levels."}


def test_json_nested_up_to_the_limit_reaches_the_serializer(api):
    response = api.post(
        f"{BASE}read-all/", '{"up_to": ' + nested(31) + "}", content_type="application/json"
    )
    assert response.status_code == 400 and "up_to" in response.json()


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        ('{"up_to": ' + "9" * 5_000 + "}", "application/json", 400, "JSON parse error"),
        ('{"up_to": 1, "x": "' + "a" * 3_000_000 + '"}', "application/json", 413, "too large"),
        ('{"up_to": 1}', "application/json; charset=bz2_codec", 400, "charset"),
        (b'{"up_to": "\xed\xa0\x80"}', "application/json", 400, "JSON parse error"),
        ("&".join(f"f{i}=1" for i in range(3_000)), "application/x-www-form-urlencoded", 400,
         "too many fields"),
        ("up_to=" + "9" * 3_000_000, "application/x-www-form-urlencoded", 413, "too large"),
        ("".join(f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n1\r\n'
                 for i in range(1_100)) + "--b--\r\n", "multipart/form-data; boundary=b", 400,
         "too many fields"),
    ],
    ids=["huge-number", "3-MB-json", "bz2-charset", "bad-utf8", "3000-fields", "3-MB-form",
         "1100-parts"],
)  # fmt: skip
def test_a_body_that_cannot_be_read_is_a_json_error(
    any_client, method, path, body, content_type, status, detail
):
    response = send(any_client, method, path, body, content_type)
    if path == "preferences/" and not content_type.startswith("application/json"):
        status, detail = 415, "Unsupported media type"  # preferences take JSON only
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert detail in response.json()["detail"]


# --- unread-count and polling ------------------------------------------------------------------


def test_unread_count_with_etag_and_poll_interval(api, alice, settings):
    settings.NOTIFICATIONS = {"POLL_INTERVAL_SECONDS": 7}
    [nid] = sent(alice)
    response = api.get(f"{BASE}unread-count/")
    assert response.json() == {"unread_count": 1, "unseen_count": 1, "last_id": nid}
    assert response["X-Poll-Interval"] == "7"
    etag = response["ETag"]
    again = api.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and again["X-Poll-Interval"] == "7"


@pytest.mark.django_db(transaction=True)
def test_304_costs_no_database_query(alice):
    client = Client()
    client.force_login(alice)
    sent(alice)
    etag = client.get(f"{BASE}unread-count/")["ETag"]
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert [q["sql"] for q in queries.captured_queries] == []


@pytest.mark.django_db(transaction=True)
def test_304_with_a_token_costs_no_database_query(alice):
    token = Token.objects.create(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    etag = client.get(f"{BASE}unread-count/")["ETag"]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_304_with_a_token_is_one_cache_round_trip(alice, monkeypatch):
    from django.core.cache import caches

    token = Token.objects.create(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    etag = client.get(f"{BASE}unread-count/")["ETag"]
    cache_class = type(caches["default"])
    reads = []
    depth = [0]  # a get_many may be made of gets (the local-memory cache's is): count the outer
    for name in ("get", "get_many"):
        original = getattr(cache_class, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            if not depth[0]:
                reads.append(_name)
            depth[0] += 1
            try:
                return _original(self, *args, **kwargs)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(cache_class, name, counted)
    assert client.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert reads == ["get_many"]  # the token and the version together


@pytest.mark.django_db(transaction=True)
def test_a_token_client_naming_another_user_in_its_etag_gets_its_own_counts(alice, bob):
    token = Token.objects.create(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.get(f"{BASE}unread-count/")  # the token is now cached
    other = APIClient()
    other.force_login(bob)
    bobs = other.get(f"{BASE}unread-count/")["ETag"]
    services.notify(alice, "for alice")
    response = client.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=bobs)
    assert response.status_code == 200 and response.json()["unread_count"] == 1
    for forged in ('"99999999999999999999-x"', '"²-x"', '"-"', '""', "*"):
        assert client.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=forged).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_every_send_and_change_makes_the_etag_stale(alice, bob):
    client = Client()
    client.force_login(alice)

    def etag():
        return client.get(f"{BASE}unread-count/")["ETag"]

    first = etag()
    services.notify(alice, "new")
    second = etag()
    assert second != first
    services.mark_read(alice, up_to=None)
    third = etag()
    assert third != second
    services.notify(bob, "not alice's")
    assert etag() == third
    assert client.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=first).status_code == 200


def test_another_users_etag_is_not_a_304(api, bob):
    other = APIClient()
    other.force_login(bob)
    etag = other.get(f"{BASE}unread-count/")["ETag"]
    assert api.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_anonymous_with_an_etag_is_still_refused():
    response = APIClient().get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH='"1-abc"')
    assert response.status_code in (401, 403)


# --- ws-ticket -----------------------------------------------------------------------------------


def test_ws_ticket_is_single_use_and_bound_to_the_user(api, alice, settings):
    settings.NOTIFICATIONS = {"TICKET_TTL_SECONDS": 20}
    response = api.post(f"{BASE}ws-ticket/")
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 20 and len(body["ticket"]) >= 32
    assert tickets.redeem(body["ticket"])[0] == alice.pk
    assert tickets.redeem(body["ticket"]) is None
    assert tickets.redeem("made-up") is None
    assert tickets.redeem("x" * 1000) is None


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_cache_costs_the_304_but_breaks_nothing(alice, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    client = APIClient()
    client.force_authenticate(alice)
    services.notify(alice, "sent while the cache is down")
    response = client.get(f"{BASE}unread-count/")
    assert response.status_code == 200 and response.json()["unread_count"] == 1
    again = client.get(f"{BASE}unread-count/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 200  # no version to compare with: answer in full


@pytest.mark.parametrize(
    ("body", "status"),
    [("&".join(f"f{i}=1" for i in range(3_000)), 400), ("up_to=" + "9" * 3_000_000, 413)],
    ids=["3000-fields", "3-MB"],
)
def test_a_form_the_csrf_check_cannot_read_is_a_json_error(alice, body, status):
    response = send(csrf_session(alice, header=False), "post", "read-all/", body,
                    "application/x-www-form-urlencoded")  # fmt: skip
    assert response.status_code == status and "detail" in response.json()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RequestDataTooBig(), 413),
        (TooManyFieldsSent(), 400),
        (TooManyFilesSent(), 400),
        (UnreadablePostError("connection reset"), 400),
    ],
)
def test_bodies_django_refuses_to_read_become_api_errors(error, status):
    assert api_exception(error).status_code == status


def test_other_errors_are_left_to_drf():
    error = ValueError("a bug")
    assert api_exception(error) is error
