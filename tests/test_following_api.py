"""Following over REST: ``subscriptions/`` (list, follow, mute, unmute, change and forget by id),
who may follow what (``FOLLOWABLE_MODELS``, ``FOLLOW_PERMISSION``, the targets of one's own
notifications), and what each route refuses: a JSON 400 naming the field or a JSON 404 that
tells nothing of what exists, writing nothing, never a 500."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Follow, Notification

pytestmark = pytest.mark.django_db

BASE = "/api/notifications/subscriptions/"
FIELDS = {"id", "object", "following", "reason", "muted", "created_at", "muted_at"}


def may_follow_only_staff_groups(user, obj):
    return obj.name.startswith("staff") == user.is_staff


@pytest.fixture
def followable(settings):
    settings.NOTIFICATIONS = {"FOLLOWABLE_MODELS": ["auth.Group"]}


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def document(db):
    return Group.objects.create(name="Design doc")


def ref(obj, **extra):
    return {"object": {"type": "auth.group", "id": str(obj.pk)}, **extra}


def test_follow_list_and_forget(api, alice, document, followable):
    first = api.post(BASE, ref(document), format="json")
    assert first.status_code == 201, first.json()
    item = first.json()
    assert set(item) == FIELDS
    assert item["object"] == {"type": "auth.group", "id": str(document.pk), "display": "Design doc"}
    assert item["following"] is True and item["reason"] == "manual" and item["muted"] is False
    again = api.post(BASE, ref(document, reason="author"), format="json")
    assert again.status_code == 200 and again.json()["reason"] == "manual"
    listed = api.get(BASE).json()
    assert [row["id"] for row in listed["results"]] == [item["id"]]
    assert api.get(f"{BASE}{item['id']}/").json() == listed["results"][0]
    assert api.delete(f"{BASE}{item['id']}/").status_code == 204
    assert not Follow.objects.exists()
    assert api.delete(f"{BASE}{item['id']}/").status_code == 404


def test_mute_then_unmute_a_target_of_my_notifications_needs_no_setting(api, alice, document):
    services.notify(alice, "Comment", target=document)
    muted = api.post(f"{BASE}mute/", ref(document), format="json")
    assert muted.status_code == 201, muted.json()
    assert muted.json()["muted"] is True and muted.json()["following"] is False
    assert api.post(f"{BASE}mute/", ref(document), format="json").status_code == 200
    services.notify(alice, "Another comment", target=document)
    assert Notification.objects.count() == 1
    assert api.post(f"{BASE}unmute/", ref(document), format="json").status_code == 204
    assert api.post(f"{BASE}unmute/", ref(document), format="json").status_code == 204
    assert not Follow.objects.exists()
    services.notify(alice, "Heard again", target=document)
    assert Notification.objects.count() == 2


def test_muting_what_i_never_heard_of_and_may_not_follow_is_a_404(api, bob, document):
    services.notify(bob, "For bob", target=document)  # bob's notification, not alice's
    response = api.post(f"{BASE}mute/", ref(document), format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such object, or not one you may follow."}
    assert not Follow.objects.exists()


def test_following_needs_followable_models(api, document):
    response = api.post(BASE, ref(document), format="json")
    assert response.status_code == 404 and "detail" in response.json()
    assert not Follow.objects.exists()


def test_follow_permission_decides_per_object(api, alice, settings):
    settings.NOTIFICATIONS = {
        "FOLLOWABLE_MODELS": ["auth.group"],
        "FOLLOW_PERMISSION": f"{__name__}.may_follow_only_staff_groups",
    }
    staff_room, lobby = Group.objects.create(name="staff room"), Group.objects.create(name="lobby")
    assert api.post(BASE, ref(staff_room), format="json").status_code == 404
    assert api.post(f"{BASE}mute/", ref(staff_room), format="json").status_code == 404
    assert api.post(BASE, ref(lobby), format="json").status_code == 201


def test_a_missing_object_is_the_same_404_as_a_forbidden_one(api, followable):
    missing = api.post(BASE, {"object": {"type": "auth.group", "id": "987654"}}, format="json")
    unknown = api.post(BASE, {"object": {"type": "nope.thing", "id": "1"}}, format="json")
    assert missing.status_code == unknown.status_code == 404
    assert missing.json() == unknown.json()


def test_following_by_hand_ends_a_mute(api, alice, document, followable):
    services.mute_object(alice, document)
    response = api.post(BASE, ref(document), format="json")
    assert response.status_code == 201
    assert response.json()["muted"] is False and response.json()["following"] is True
    assert list(services.followers(document)) == [alice]


def test_patch_mutes_unmutes_and_unfollows_and_a_row_left_empty_is_gone(
    api, alice, document, followable
):
    row = api.post(BASE, ref(document), format="json").json()
    url = f"{BASE}{row['id']}/"
    muted = api.patch(url, {"muted": True}, format="json")
    assert muted.status_code == 200 and muted.json()["muted"] is True
    assert list(services.followers(document)) == []
    unmuted = api.patch(url, {"muted": False}, format="json").json()
    assert unmuted["muted"] is False and unmuted["following"] is True
    assert (
        api.patch(url, {"following": False, "muted": True}, format="json").json()["following"]
        is False
    )
    assert api.patch(url, {"following": True}, format="json").json()["following"] is True
    api.patch(url, {"muted": False}, format="json")
    assert api.patch(url, {"following": False}, format="json").status_code == 204
    assert not Follow.objects.exists()
    assert api.patch(url, {"muted": True}, format="json").status_code == 404


def test_patch_following_true_needs_the_permission_still(api, alice, document):
    services.notify(alice, "Comment", target=document)
    row = api.post(f"{BASE}mute/", ref(document), format="json").json()
    response = api.patch(f"{BASE}{row['id']}/", {"following": True}, format="json")
    assert response.status_code == 404
    assert Follow.objects.get().reason == ""


def test_filters(api, alice, bob, followable):
    followed, muted, both = (Group.objects.create(name=n) for n in ("followed", "muted", "both"))
    services.follow(alice, followed)
    services.mute_object(alice, muted)
    services.follow(alice, both)
    services.mute_object(alice, both)
    services.follow(bob, followed)

    def names(query):
        response = api.get(BASE + query)
        assert response.status_code == 200, response.json()
        return [row["object"]["display"] for row in response.json()["results"]]

    assert names("") == ["both", "muted", "followed"]
    assert names("?muted=true") == ["both", "muted"]
    assert names("?muted=false") == ["followed"]
    assert names("?following=true") == ["both", "followed"]
    assert names("?following=false") == ["muted"]
    assert names(f"?type=auth.group&id={muted.pk}") == ["muted"]
    assert names("?type=auth.group&id=\u0663") == []
    assert names("?type=nope.nope&id=1") == []


def test_pages_follow_the_cursor(api, alice):
    for index in range(5):
        services.follow(alice, Group.objects.create(name=f"g{index}"))
    first = api.get(f"{BASE}?page_size=2").json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    seen = [row["object"]["display"] for page in (first, second, third) for row in page["results"]]
    assert seen == ["g4", "g3", "g2", "g1", "g0"] and third["next"] is None


def test_rows_are_mine_alone(api, bob, document):
    theirs = services.follow(bob, document)
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"{BASE}{theirs.pk}/", {"muted": True}, format="json")
        assert response.status_code == 404, method
    assert api.get(BASE).json()["results"] == []
    assert Follow.objects.get().muted_at is None


def test_an_object_gone_shows_with_an_empty_display_and_can_be_forgotten(api, alice, document):
    row = services.follow(alice, document)
    document.delete()
    listed = api.get(BASE).json()["results"]
    assert listed[0]["object"]["display"] == ""
    assert api.delete(f"{BASE}{row.pk}/").status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"object": None},
        {"object": "auth.group:1"},
        {"object": {"type": "auth.group"}},
        {"object": {"id": "1"}},
        {"object": {"type": "Auth.Group", "id": "1"}},
        {"object": {"type": "auth.group\x00", "id": "1"}},
        {"object": {"type": "auth", "id": "1"}},
        {"object": {"type": "a" * 300 + ".b", "id": "1"}},
        {"object": {"type": "auth.group", "id": "1" * 300}},
        {"object": {"type": "auth.group", "id": ["1"]}},
        {"object": {"type": "auth.group", "id": "1"}, "reason": "has space"},
        {"object": {"type": "auth.group", "id": "1"}, "reason": "x" * 65},
        {"object": {"type": "auth.group", "id": "1"}, "reason": "caf\u00e9"},
    ],
)
def test_a_malformed_follow_is_a_400_naming_the_field(api, document, followable, body):
    response = api.post(BASE, body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) <= {"object", "reason", "non_field_errors"}
    assert not Follow.objects.exists()


@pytest.mark.parametrize(
    "object_id", ["\u0663", "1\x00", "99999999999999999999999", "-1", "1.0", " 1", "1e3", ""]
)
def test_ids_that_are_no_key_are_a_404_or_400_never_a_500(api, document, followable, object_id):
    for path in (BASE, f"{BASE}mute/", f"{BASE}unmute/"):
        body = {"object": {"type": "auth.group", "id": object_id}}
        response = api.post(path, body, format="json")
        assert response.status_code in (400, 404, 204), (path, response.status_code)
        assert response.status_code == 204 or response.json()
    assert not Follow.objects.exists()


@pytest.mark.parametrize("pk", ["\u0663", "0", "99999999999999999999999", "x", "1%00"])
def test_ids_in_the_path_that_are_no_row_are_a_json_404(api, pk):
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"{BASE}{pk}/", {"muted": True}, format="json")
        assert response.status_code == 404 and response.json(), (method, pk)


@pytest.mark.parametrize(
    "query",
    ["?muted=maybe", "?following=2", "?type=auth.group", "?id=1", "?page_size=0", "?cursor=zz"],
)
def test_bad_filters_are_a_400(api, query):
    response = api.get(BASE + query)
    assert response.status_code == 400 and response.json()


@pytest.mark.parametrize("body", [{}, {"muted": "maybe"}, {"following": None}, {"muted": [1]}])
def test_a_bad_change_is_a_400(api, alice, document, body):
    row = services.follow(alice, document)
    response = api.patch(f"{BASE}{row.pk}/", body, format="json")
    assert response.status_code == 400 and response.json()
    assert Follow.objects.get().muted_at is None


def test_a_body_nested_10_000_deep_is_a_400(api, followable):
    body = '{"object": ' + "[" * 10_000 + "]" * 10_000 + "}"
    response = api.generic("POST", BASE, body, content_type="application/json")
    assert response.status_code == 400 and response.json()


def test_anonymous_requests_are_refused_in_json(document):
    for method, path in (("get", BASE), ("post", BASE), ("post", f"{BASE}mute/")):
        response = getattr(APIClient(), method)(path, ref(document), format="json")
        assert response.status_code in (401, 403) and response.json()


def test_session_writes_need_the_csrf_token(alice, document, followable):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(BASE, ref(document), format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Follow.objects.exists()


def test_writes_are_rate_limited(api, document, followable, settings):
    settings.NOTIFICATIONS = {
        "FOLLOWABLE_MODELS": ["auth.group"],
        "THROTTLE_RATES": {"write": "2/minute"},
    }
    codes = [api.post(BASE, ref(document), format="json").status_code for _ in range(3)]
    assert codes == [201, 200, 429]


def test_the_list_costs_the_same_queries_for_1_and_20_rows(api, alice):
    counts = []
    for total in (1, 20):
        Follow.objects.all().delete()
        for index in range(total):
            services.follow(alice, Group.objects.create(name=f"n{total}-{index}"))
        with CaptureQueriesContext(connection) as queries:
            response = api.get(BASE)
        assert len(response.json()["results"]) == total
        counts.append(len(queries))
    # The page of rows with their content types, and the objects: one query per model.
    assert counts == [2, 2]


def test_following_costs_a_flat_number_of_queries(api, alice, document, followable):
    api.get(f"{BASE}?type=auth.group&id=1")  # the content type, cached from then on
    with CaptureQueriesContext(connection) as queries:
        assert api.post(BASE, ref(document), format="json").status_code == 201
    # The object, the user's row if any, get_or_create's read, savepoint, insert and release.
    assert len(queries) == 6, [query["sql"] for query in queries.captured_queries]


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=10,
    )
    | st.fixed_dictionaries(
        {
            "object": st.fixed_dictionaries(
                {"type": st.text(max_size=20), "id": st.text(max_size=20)}
            )
        }
    ),
    path=st.sampled_from(["", "mute/", "unmute/"]),
)
def test_any_json_posted_is_never_a_5xx_and_writes_only_when_accepted(api, settings, body, path):
    settings.NOTIFICATIONS = {
        "FOLLOWABLE_MODELS": ["auth.group"],
        "THROTTLE_RATES": {"write": None},
    }
    before = Follow.objects.count()
    response = api.generic("POST", BASE + path, json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 201, 204, 400, 404), response.content
    if response.status_code in (400, 404):
        assert Follow.objects.count() == before


def test_anything_but_json_is_a_json_415(api, document, followable):
    response = api.post(BASE, {"object": "x"})  # multipart, the test client's default
    assert response.status_code == 415 and response.json()
    assert not Follow.objects.exists()


@pytest.mark.parametrize("reference", [{"type": 1.5, "id": "1"}, {"type": "auth.group", "id": 1}])
def test_numbers_are_no_type_or_id(api, document, followable, reference):
    response = api.post(BASE, {"object": reference}, format="json")
    assert response.status_code == 400 and "object" in response.json()


def test_an_id_with_leading_zeros_names_the_same_object_in_every_route(api, alice, document):
    services.notify(alice, "Comment", target=document)
    padded = {"object": {"type": "auth.group", "id": f"00{document.pk}"}}
    assert api.post(f"{BASE}mute/", padded, format="json").status_code == 201
    assert Follow.objects.get().object_id == str(document.pk)
    listed = api.get(f"{BASE}?type=auth.group&id=00{document.pk}").json()["results"]
    assert [row["object"]["id"] for row in listed] == [str(document.pk)]
    assert api.post(f"{BASE}unmute/", padded, format="json").status_code == 204
    assert not Follow.objects.exists()
