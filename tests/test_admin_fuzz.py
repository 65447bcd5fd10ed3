"""Property-based fuzzing of the admin pages: never a 500, whatever the query string or form.

The values are hostile: digits Python reads and databases do not (``²``, ``٣``, ``１``), numbers
past any column (2**63, 5,000 digits), NUL bytes, bytes that are no UTF-8 (a lone surrogate,
percent-encoded), regex and SQL syntax, dates that do not exist, wrong types. Two passes:

- a sweep: every parameter a changelist reads (its filters, the date hierarchy, search,
  ordering, paging) and every lookup a URL may name on the model's fields, each with every one
  of ``SHARP`` values, on every changelist (Notification, Mute, Digest, Follow); and each of
  those values as the id of an object's change, delete and history pages, and as the selection
  of each action;
- hypothesis: combinations of them, the send page's ``?users=`` and ``?followers_of=`` links,
  and the send form's fields (the followers' object type and id too; with EMAIL_DIGESTS off and
  on: then the form has a channel choice), ``MAX_EXAMPLES`` cases a test, derandomized so that
  CI is repeatable.

Each request runs as a superuser in a savepoint rolled back afterwards, on whichever database
the suite runs on (CI: PostgreSQL and SQLite). The answer must be a page (200), a redirect within
the admin (a bad filter: back to the unfiltered list, with a message) or a 400 (a lookup the
admin does not offer); never a 5xx, and no exception may escape a view.
"""

from __future__ import annotations

import traceback
from urllib.parse import quote, unquote, urlencode

import pytest
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications import services
from notifications.models import Digest, Follow, Mute, Notification

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 60  # a case costs a page render: 30-100 ms
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CHANGELISTS = {
    "notification": "/admin/notifications/notification/",
    "mute": "/admin/notifications/mute/",
    "digest": "/admin/notifications/digest/",
    "follow": "/admin/notifications/follow/",
}
SEND_URL = "/admin/notifications/notification/send/"

# Text as it stands in a URL, percent-encoded: what a browser or a script may send.
RAW = st.sampled_from(
    [
        "%C2%B2",  # ²
        "%D9%A3",  # ٣, an Arabic-Indic three
        "%EF%BC%91",  # １, a fullwidth one
        "9" * 5000,
        str(2**63),
        str(2**64),
        "99999999999999999999",
        "-1",
        "0",
        "1",
        "1.5",
        "1e400",
        "%00",
        "1%00",
        "%ED%A0%80",  # a lone surrogate, as UTF-8 would encode it (it cannot)
        "%FF",
        "(",
        "%5B",  # [
        "%5C",  # \
        "*",
        "%25",  # %
        "'",
        "%22",
        "1%2C2",  # 1,2
        "%2C",
        "",
        "+",
        "true",
        "null",
        "info",
        "yes",
        "no",
        "2024",
        "13",
        "32",
        "9999",
        "10000",
        "2024-02-30",
        "2024-01-01+00%3A00%3A00",
        "-",
        "-pk",
        "1.-2",
        "%7B%7D",  # {}
    ]
)
# The sharpest of them, which the sweep tries on every parameter.
SHARP = [
    "%C2%B2",
    "%D9%A3",
    "99999999999999999999",
    "9" * 5000,
    "1%00",
    "%ED%A0%80",
    "(",
    "1e400",
    "-1",
    "9999",
    "2024-02-30",
    "%7B%7D",
]
TEXT = st.text(max_size=12).map(lambda text: quote(text.encode("utf-8", "surrogatepass")))
NUMBER = st.integers(-(2**70), 2**70).map(str)
VALUE = st.one_of(RAW, RAW, TEXT, NUMBER)

# Parameters every changelist reads, then those of each (its filters, and lookups a URL can
# name on the model's fields).
COMMON_KEYS = ["q", "o", "p", "all", "e", "_to_field", "_popup", "_changelist_filters", "id",
               "pk", "id__gt", "id__in", "id__range"]  # fmt: skip
KEYS = {
    "notification": COMMON_KEYS + [
        "level__exact", "level", "level__in", "category", "read", "created_at__gte",
        "created_at__lt", "created_at__isnull", "created_at__year", "created_at__month",
        "created_at__day", "recipient", "recipient__id__exact", "recipient__username",
        "title__regex", "title__startswith", "body__icontains", "data", "data__contains",
        "data__has_key", "actors__contains", "group_count__gte", "expires_at__lte", "emailed",
        "digest__id__exact", "digest", "digest__status", "email", "email_due_at__lte",
    ],
    "mute": COMMON_KEYS + [
        "kind__exact", "kind", "user", "user__id__exact", "user__username", "value",
        "value__regex", "channel__exact", "channel",
    ],
    "digest": COMMON_KEYS + [
        "status__exact", "status", "kind__exact", "kind", "user", "user__id__exact",
        "user__username", "sent_at__gte", "created_at__year", "attempts__gt", "notifications",
    ],
    "follow": COMMON_KEYS + [
        "content_type__id__exact", "content_type", "object_id", "object_id__regex", "reason",
        "following", "muted", "muted_at__isnull", "user", "user__id__exact", "user__username",
        "created_at__gte",
    ],
}  # fmt: skip


def queries(changelist: str) -> st.SearchStrategy[str]:
    keys = st.sampled_from(KEYS[changelist])
    pairs = st.lists(st.tuples(st.one_of(keys, keys, TEXT), VALUE), max_size=4)
    return pairs.map(lambda items: "&".join(f"{key}={value}" for key, value in items))


@pytest.fixture
def admin_client(make_user):
    root = make_user("root", is_staff=True, is_superuser=True)
    alice = make_user("alice")
    services.notify([root, alice], "Hello", category="news")
    services.notify(alice, "Later", level="warning", data={"k": [1, "v"]}, group_key="g")
    Mute.objects.create(user=alice, kind=Mute.Kind.CATEGORY, value="news")
    Mute.objects.create(user=alice, kind=Mute.Kind.ALL, channel="email")
    now = timezone.now()
    digest = Digest.objects.create(
        user=alice, kind="digest", status="sent", created_at=now, lease_until=now, sent_at=now
    )
    Notification.objects.filter(recipient=alice, title="Hello").update(digest=digest)
    # Follows of a user (any model will do), one also muted: the send form's followers then
    # have a type to choose, and object 1 or 2 may exist.
    services.follow(alice, root, reason="author")
    services.mute_object(root, alice)
    client = Client()
    client.force_login(root)
    return client


def answered(client: Client, method: str, url: str, form: str | None = None) -> int:
    """The status of one request (``form``: an urlencoded body) in a savepoint rolled back after
    it; fails on any exception the view let escape (with its traceback) and on any 5xx."""
    raised: list[str] = []

    def record(sender, request=None, **kwargs):
        raised.append(traceback.format_exc())

    body = {} if form is None else {"data": form, "content_type": FORM}
    got_request_exception.connect(record)
    try:
        with transaction.atomic():
            try:
                response = client.generic(method, url, **body)
            finally:
                transaction.set_rollback(True)
    finally:
        got_request_exception.disconnect(record)
    assert not raised, f"{method} {url} {form or ''} raised:\n{raised[0]}"
    assert response.status_code < 500, f"{method} {url} {form or ''}: {response.status_code}"
    if response.status_code in (301, 302):
        assert response["Location"].startswith(("/admin/", "?")), response["Location"]
    return response.status_code


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_a_changelist_answers_each_parameter_with_each_hostile_value(admin_client, changelist):
    failures = []
    for key in KEYS[changelist]:
        for value in SHARP:
            url = f"{CHANGELISTS[changelist]}?{key}={value}"
            try:
                assert answered(admin_client, "GET", url) in (200, 302, 400)
            except AssertionError as error:
                failures.append(f"{url[:120]}: {str(error)[-600:]}")
    assert not failures, "\n".join(failures[:5])


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_an_objects_pages_and_the_actions_answer_each_hostile_id(admin_client, changelist):
    """The change, delete and history pages of an "object" whose id is hostile, and each action
    (mark read, mark unread, delete, none, an unknown one) on a selection of such ids."""
    url = CHANGELISTS[changelist]
    # Digests are a log: deleting one is forbidden to everyone, whatever the id.
    answers = (200, 302, 400, 403, 404) if changelist == "digest" else (200, 302, 400, 404)
    failures = []
    for raw in [*SHARP, "0", "1"]:
        value = unquote(raw, errors="surrogateescape").encode("utf-8", "surrogateescape")
        requests = [
            ("GET", f"{url}{raw}/{page}", None) for page in ("change/", "delete/", "history/")
        ]
        requests.append(("POST", f"{url}{raw}/delete/", "post=yes"))
        for action in ("mark_read", "mark_unread", "delete_selected", "", "nonsense"):
            for extra in ({}, {"post": "yes"}, {"select_across": "1"}):
                form = urlencode({"action": action, "_selected_action": value, **extra})
                requests.append(("POST", url, form))
        for method, target, form in requests:
            try:
                answer = answered(admin_client, method, target, form)
                assert answer in answers
                assert answer != 403 or "/delete/" in target
            except AssertionError as error:
                failures.append(f"{method} {target[:100]} {form or ''}: {str(error)[-600:]}")
    assert not failures, "\n".join(failures[:5])


@pytest.mark.parametrize("changelist", CHANGELISTS)
@FUZZ
@given(data=st.data())
def test_a_changelist_answers_any_query_string(admin_client, changelist, data):
    query = data.draw(queries(changelist), label="query")
    assert answered(admin_client, "GET", f"{CHANGELISTS[changelist]}?{query}") in (200, 302, 400)


@FUZZ
@given(parts=st.lists(VALUE, max_size=6))
def test_the_send_page_answers_any_users_link(admin_client, parts):
    assert answered(admin_client, "GET", f"{SEND_URL}?users={'%2C'.join(parts)}") == 200


@FUZZ
@given(type_id=st.one_of(st.sampled_from(["1", "2", "3", "4"]), VALUE), object_id=VALUE,
       colon=st.sampled_from(["%3A", ":", "", "::"]))  # fmt: skip
def test_the_send_page_answers_any_followers_link(admin_client, type_id, object_id, colon):
    url = f"{SEND_URL}?followers_of={type_id}{colon}{object_id}"
    assert answered(admin_client, "GET", url) == 200


FORM = "application/x-www-form-urlencoded"
# A form's values as the browser typed them; a lone surrogate goes as the bytes it stands for.
FORM_VALUE = st.one_of(
    RAW.map(lambda raw: unquote(raw, errors="surrogateescape")), st.text(max_size=12), NUMBER
)
# Ids as a form posts them: mostly the sharp ones, some that exist, and anything.
SHARP_IDS = [unquote(raw, errors="surrogateescape") for raw in SHARP] + [str(2**63), "0"]
ID_LIST = st.lists(
    st.one_of(st.sampled_from(SHARP_IDS), st.sampled_from(["1", "2"]), FORM_VALUE), max_size=3
)
SEND_FORM = st.fixed_dictionaries(
    {
        "audience": st.one_of(
            st.sampled_from(["users", "groups", "all", "followers", "followers"]), FORM_VALUE
        ),
        "users": ID_LIST,
        "groups": ID_LIST,
        # The followers' object: a content type's id (one is followed), and the object's id.
        "object_type": st.one_of(st.just("followed"), st.sampled_from(SHARP_IDS), FORM_VALUE),
        "object_id": st.one_of(st.sampled_from(SHARP_IDS), st.sampled_from(["1", "2"]), FORM_VALUE),
        "title": st.one_of(st.just("Hello"), FORM_VALUE),
        "body": FORM_VALUE,
        "level": st.one_of(st.sampled_from(["info", "error"]), FORM_VALUE),
        "category": st.one_of(st.just(""), FORM_VALUE),
        "url": st.one_of(st.just(""), st.just("/x/"), FORM_VALUE),
        "confirmed": st.one_of(st.just(""), FORM_VALUE),
        # The channel choice (EMAIL_DIGESTS on; with it off the field is not there).
        "email": st.one_of(st.sampled_from(["", "none", "digest", "now"]), FORM_VALUE),
    },
    optional={"_preview": st.just("1"), "_send": st.just("1"), "_edit": st.just("1")},
)


@pytest.mark.parametrize("email_digests", [False, True], ids=["email off", "email on"])
@FUZZ
@given(form=SEND_FORM)
def test_the_send_form_answers_any_values(admin_client, settings, email_digests, form):
    settings.NOTIFICATIONS = {"EMAIL_DIGESTS": email_digests, "BASE_URL": "https://example.com"}
    if form["object_type"] == "followed":
        form["object_type"] = str(Follow.objects.values_list("content_type", flat=True).first())
    body = urlencode(
        [
            (name, item.encode("utf-8", "surrogateescape"))
            for name, value in form.items()
            for item in (value if isinstance(value, list) else [value])
        ]
    )
    assert answered(admin_client, "POST", SEND_URL, body) in (200, 302)
