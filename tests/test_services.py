"""notify() and the state-change services: validation, audiences, transactions, signals, queries."""

import datetime

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications import protocol, services, signals
from notifications.models import Notification
from notifications.realtime import broker
from notifications.services import state as state_changes

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent():
    """Every batch announced by notification_sent, as (titles, recipient ids)."""
    received = []

    def receiver(sender, batch, **kwargs):
        received.append(([n.title for n in batch], batch.recipient_ids))

    signals.notification_sent.connect(receiver)
    yield received
    signals.notification_sent.disconnect(receiver)


@pytest.fixture
def changed():
    received = []

    def receiver(sender, user_id, ids, state, **kwargs):
        received.append((user_id, ids, state))

    signals.notifications_changed.connect(receiver)
    yield received
    signals.notifications_changed.disconnect(receiver)


# --- audiences -------------------------------------------------------------------------------


def recipients_of(batch):
    return sorted(batch.recipient_ids)


def test_to_one_user(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.notify(alice, "Export ready", url="/exports/7/")
    notification = Notification.objects.get()
    assert batch.ids == [notification.pk]
    assert notification.recipient == alice
    assert (notification.title, notification.url, notification.level) == (
        "Export ready",
        "/exports/7/",
        "info",
    )
    assert notification.read_at is notification.seen_at is notification.archived_at is None


def test_to_ids_users_and_duplicates(alice, bob, make_user):
    carol = make_user("carol")
    batch = services.notify([alice, bob.pk, carol, alice.pk], "Hi")
    assert recipients_of(batch) == sorted([alice.pk, bob.pk, carol.pk])
    assert Notification.objects.count() == 3


def test_to_a_queryset(alice, bob, make_user):
    make_user("carol")
    users = get_user_model().objects.filter(username__in=["alice", "bob"])
    assert recipients_of(services.notify(users, "Hi")) == sorted([alice.pk, bob.pk])


def test_to_a_group_reaches_its_active_members_only(alice, bob, make_user):
    group = Group.objects.create(name="team")
    gone = make_user("gone", is_active=False)
    group.user_set.add(alice, bob, gone)
    make_user("outsider")
    assert recipients_of(services.notify(group, "Team news")) == sorted([alice.pk, bob.pk])


def test_an_inactive_user_named_explicitly_is_notified(make_user):
    dormant = make_user("dormant", is_active=False)
    assert services.notify(dormant, "Still yours").recipient_ids == [dormant.pk]


def test_empty_audience_writes_and_announces_nothing(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.notify([], "Nobody")
        services.notify(Group.objects.create(name="empty"), "Nobody either")
    assert len(batch) == 0 and Notification.objects.count() == 0 and sent == []


def test_actor_target_and_data_are_stored(alice, bob):
    group = Group.objects.create(name="g")
    services.notify(alice, "Bob added you", actor=bob, target=group, data={"k": [1, "two"]})
    notification = Notification.objects.get()
    assert notification.actor == bob and notification.target == group
    assert notification.data == {"k": [1, "two"]}


def test_data_is_copied_at_send_time(alice):
    data = {"count": 1}
    batch = services.notify(alice, "Snapshot", data=data)
    data["count"] = 2
    assert Notification.objects.get().data == {"count": 1}
    assert next(iter(batch)).data == {"count": 1}


# --- validation: a clear error, nothing written ----------------------------------------------

LONG = "x" * 201


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": None}, "title"),
        ({"title": LONG}, "title: at most 200"),
        ({"body": 5}, "body"),
        ({"body": "b" * 10001}, "body: at most 10000 characters"),
        ({"level": "fatal"}, "level: must be one of"),
        ({"category": "has space"}, "category"),
        ({"category": "c" * 65}, "category"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "JaVaScRiPt:alert(1)"}, "url"),
        ({"url": "data:text/html,hi"}, "url"),
        ({"url": "//evil.example/"}, "url"),
        ({"url": "/\\evil.example/"}, "url"),
        ({"url": "ftp://files.example/"}, "url"),
        ({"url": "http:evil.example"}, "url"),
        ({"url": "relative/path"}, "url"),
        ({"url": "/a path"}, "url"),
        ({"url": "/tab\there"}, "url"),
        ({"url": "/" + "u" * 2000}, "url: at most"),
        ({"url": 7}, "url"),
        ({"data": [1, 2]}, "data: must be a dict"),
        ({"data": {"when": datetime.datetime(2026, 1, 1)}}, "data: must be JSON"),
        ({"data": {"n": float("nan")}}, "data: must be JSON"),
        ({"data": {"big": "x" * 20000}}, "data: at most"),
        ({"actor": "bob"}, "actor"),
        ({"target": 5}, "target"),
    ],
)
def test_bad_content_is_refused(alice, options, message):
    arguments = {"title": "Title", **options}
    title = arguments.pop("title")
    with pytest.raises(ValueError, match=message):
        services.notify(alice, title, **arguments)
    assert Notification.objects.count() == 0


def test_the_body_limit_is_a_setting(alice, settings):
    settings.NOTIFICATIONS = {"MAX_BODY_CHARS": 20}
    assert services.notify(alice, "Short", "é" * 20).ids  # characters, not bytes
    with pytest.raises(ValueError, match=r"^body: at most 20 characters \(got 21\)$"):
        services.validate_content("Long", "x" * 21)
    assert Notification.objects.count() == 1


NUL, SURROGATE = "\x00", "\ud800"


def deep(levels):
    data = {}
    for _ in range(levels):
        data = {"a": data}
    return data


@pytest.mark.parametrize("bad", [NUL, SURROGATE, "\udfff"], ids=["nul", "high", "low"])
@pytest.mark.parametrize(
    ("where", "options"),
    [
        ("title", lambda bad: {"title": f"Hi{bad}"}),
        ("body", lambda bad: {"body": f"line{bad}"}),
        ("category", lambda bad: {"category": f"c{bad}"}),
        ("url", lambda bad: {"url": f"/x{bad}"}),
        ("group_key", lambda bad: {"group_key": f"k{bad}"}),
        ("data", lambda bad: {"data": {"k": f"v{bad}"}}),
        ("data", lambda bad: {"data": {f"k{bad}": 1}}),
        ("data", lambda bad: {"data": {"list": [1, {"inner": ["ok", bad]}]}}),
        ("data", lambda bad: {"data": {"outer": {f"in{bad}ner": None}}}),
    ],
)
def test_nul_bytes_and_lone_surrogates_are_refused_in_every_text_field(alice, bad, where, options):
    arguments = {"title": "Title", **options(bad)}
    title = arguments.pop("title")
    with pytest.raises(ValueError, match=rf"^{where}: ") as raised:
        services.notify(alice, title, **arguments)
    assert ("NUL" if bad == NUL else "lone surrogate") in str(raised.value)
    str(raised.value).encode()  # the message itself is printable anywhere
    assert Notification.objects.count() == 0


def test_a_surrogate_pair_written_as_two_escapes_is_one_character_and_fine(alice):
    (notification,) = services.notify(alice, "Smile \U0001f600", data={"e": "\U0001f600"})
    notification.refresh_from_db()
    assert notification.title == "Smile \U0001f600" and notification.data == {"e": "\U0001f600"}


def test_data_nested_too_deeply_for_json_is_refused(alice):
    with pytest.raises(ValueError, match="^data: nested too deeply"):
        services.notify(alice, "Title", data=deep(100_000))
    assert Notification.objects.count() == 0


def test_unsaved_actor_is_refused(alice):
    with pytest.raises(ValueError, match="actor: must be a saved"):
        services.notify(alice, "Hi", actor=get_user_model()(username="ghost"))


@pytest.mark.parametrize(
    "recipients",
    ["alice", True, 0, -3, 1.5, None, [1, "x"], [None]],
    ids=["str", "bool", "zero", "negative", "float", "none", "mixed-list", "list-of-none"],
)
def test_bad_recipients_are_refused(alice, recipients):
    with pytest.raises(ValueError, match="recipients"):
        services.notify(recipients, "Hi")
    assert Notification.objects.count() == 0


def test_a_queryset_of_another_model_is_refused():
    with pytest.raises(ValueError, match="QuerySet of auth.User"):
        services.notify(Group.objects.all(), "Hi")


def test_unsaved_user_or_group_is_refused():
    with pytest.raises(ValueError, match="not saved"):
        services.notify(get_user_model()(username="ghost"), "Hi")
    with pytest.raises(ValueError, match="not saved"):
        services.notify(Group(name="ghosts"), "Hi")


def test_unknown_user_id_writes_nothing_and_keeps_the_callers_work(alice, sent):
    with transaction.atomic():
        services.notify(alice, "Kept")
        with pytest.raises(ValueError, match="no user with id 987654"):
            services.notify([alice.pk, 987654], "Not for anyone")
    assert list(Notification.objects.values_list("title", flat=True)) == ["Kept"]


def test_unknown_user_id_with_a_group_key_undoes_the_fold_too(alice, sent):
    with transaction.atomic():
        services.notify(alice, "Kept", group_key="k")
        with pytest.raises(ValueError, match="no user with id 987654"):
            services.notify([alice.pk, 987654], "Not for anyone", group_key="k")
    assert list(Notification.objects.values_list("title", "group_count")) == [("Kept", 1)]


@pytest.mark.django_db(transaction=True)
def test_an_unknown_id_among_several_writes_nothing_in_autocommit_mode(alice, bob, sent):
    with pytest.raises(ValueError, match="no user with id 987654"):
        services.notify([alice.pk, bob.pk, 987654], "Not for anyone")
    assert not Notification.objects.exists()
    assert sent == []


def test_sends_of_one_shape_with_other_values_reach_whom_they_name(alice, bob, make_user):
    carol = make_user("carol")
    services.set_preferences(bob, muted_categories=["billing"])
    services.set_preferences(carol, muted_levels=["warning"])
    services.notify([alice, bob, carol], "One", category="billing", level="warning")
    services.notify([alice, bob, carol], "Two", category="comments", level="info")
    services.notify(bob, "Three", category="billing")
    services.notify(carol, "Four", category="billing")
    rows = Notification.objects.order_by("id").values_list("title", "recipient__username")
    assert list(rows) == [
        ("One", "alice"),
        ("Two", "alice"),
        ("Two", "bob"),
        ("Two", "carol"),
        ("Four", "carol"),
    ]


def test_a_send_inside_a_transaction_is_one_statement(alice, django_assert_num_queries):
    with transaction.atomic(), django_assert_num_queries(1):  # no savepoint of its own
        services.notify(alice, "One statement")


# --- transactions and signals ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_signal_fires_after_commit_once_per_transaction(alice, bob, sent):
    with transaction.atomic():
        services.notify(alice, "One")
        services.notify([alice, bob], "Two")
        assert sent == []  # nothing announced inside the transaction
    assert sent == [(["One", "Two", "Two"], [alice.pk, bob.pk])]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_call_is_announced_at_once(alice, sent):
    services.notify(alice, "One")
    services.notify(alice, "Two")
    assert sent == [(["One"], [alice.pk]), (["Two"], [alice.pk])]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_notification_is_never_announced(alice, sent):
    with transaction.atomic():
        services.notify(alice, "Never")
        transaction.set_rollback(True)
    services.notify(alice, "Later")  # a later transaction must not carry the rolled-back one
    assert sent == [(["Later"], [alice.pk])]
    assert list(Notification.objects.values_list("title", flat=True)) == ["Later"]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_savepoint_is_not_announced_but_the_rest_is(alice, sent):
    with transaction.atomic():
        services.notify(alice, "Before")
        try:
            with transaction.atomic():
                services.notify(alice, "Inner, rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
        with transaction.atomic():
            services.notify(alice, "Inner, kept")
        services.notify(alice, "After")
    titles = [title for batch_titles, _ in sent for title in batch_titles]
    assert titles == ["Before", "After", "Inner, kept"] or titles == [
        "Before",
        "Inner, kept",
        "After",
    ]
    assert "Inner, rolled back" not in titles


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_does_not_break_the_sender(alice, sent):
    def broken(**kwargs):
        raise RuntimeError("integration down")

    signals.notification_sent.connect(broken)
    try:
        services.notify(alice, "Still sent")
    finally:
        signals.notification_sent.disconnect(broken)
    assert sent == [(["Still sent"], [alice.pk])]


@pytest.mark.django_db(transaction=True)
def test_anotify_from_async_code(alice, sent):
    async def send():
        return await services.anotify(alice, "From async", level="warning")

    batch = async_to_sync(send)()
    assert Notification.objects.get(pk=batch.ids[0]).level == "warning"
    assert sent == [(["From async"], [alice.pk])]


# --- query counts ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fan_out_costs_the_same_queries_for_1_100_and_10000_recipients(bob, monkeypatch):
    # Nobody online, even in a Redis registry too young to know it (it would push to all).
    monkeypatch.setattr(broker, "online", lambda user_ids: set())
    user_model = get_user_model()
    user_model.objects.bulk_create(user_model(username=f"fan{i}") for i in range(10_000))
    services.notify(bob, "warm the content-type cache", actor=bob)
    counts = {}
    for size in (1, 100, 10_000):
        ids = list(
            user_model.objects.filter(username__startswith="fan").values_list("pk", flat=True)[
                :size
            ]
        )
        with CaptureQueriesContext(connection) as queries:
            batch = services.notify(ids, f"To {size}", actor=bob)
        assert len(batch) == size
        counts[size] = len(queries)
    # The INSERT ... SELECT alone, its own transaction in autocommit mode (no socket open, so
    # no counts).
    assert counts == {1: 1, 100: 1, 10_000: 1}


@pytest.mark.django_db(transaction=True)
def test_fan_out_to_a_group_costs_the_same_queries(make_user, monkeypatch):
    # Who is online is unknown (as in a Redis registry younger than its grace period): everybody
    # is pushed to, their counts in one query. Left to the registry, the grace could end between
    # the two sends and take the counts query out of the second.
    monkeypatch.setattr(broker, "online", lambda user_ids: None)
    small, large = Group.objects.create(name="small"), Group.objects.create(name="large")
    user_model = get_user_model()
    users = user_model.objects.bulk_create(user_model(username=f"m{i}") for i in range(2_000))
    small.user_set.add(users[0])
    large.user_set.add(*users)
    with CaptureQueriesContext(connection) as one:
        services.notify(small, "Hi")
    with CaptureQueriesContext(connection) as many:
        services.notify(large, "Hi")
    assert len(one) == len(many)


# --- state changes ---------------------------------------------------------------------------


def ids_for(user, n):
    return [services.notify(user, f"n{i}").ids[0] for i in range(n)]


def test_mark_read_is_scoped_to_the_user(alice, bob, changed, django_capture_on_commit_callbacks):
    mine, theirs = ids_for(alice, 2), ids_for(bob, 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.mark_read(alice, mine + theirs) == mine
    assert changed == [(alice.pk, mine, "read")]
    assert Notification.objects.for_user(bob).unread().count() == 1
    assert services.mark_read(alice, mine) == []  # already read: nothing changes


def test_mark_read_up_to_leaves_newer_ones(alice):
    first, second, third = ids_for(alice, 3)
    change = services.mark_read(alice, up_to=second)
    assert (change.ids, change.up_to, change.count) == ([first, second], second, 2)
    assert list(Notification.objects.for_user(alice).unread().values_list("id", flat=True)) == [
        third
    ]


def test_mark_unread_seen_archive_unarchive_delete(alice):
    first, second = ids_for(alice, 2)
    services.mark_read(alice, [first, second])
    assert services.mark_unread(alice, [first]) == [first]
    assert services.mark_seen(alice, up_to=first).ids == [first]
    assert services.archive(alice, [second]) == [second]
    counts = Notification.objects.for_user(alice).counts()
    assert counts == {"unread_count": 1, "unseen_count": 0, "last_id": second}
    assert services.unarchive(alice, [second]) == [second]
    assert services.delete(alice, [first]) == [first]
    assert list(Notification.objects.values_list("id", flat=True)) == [second]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda user: services.mark_read(user, "1,2"), "ids"),
        (lambda user: services.mark_read(user, [1, -2]), "ids"),
        (lambda user: services.mark_read(user, [True]), "ids"),
        (lambda user: services.mark_read(user, up_to="all"), "up_to"),
        (lambda user: services.mark_seen(user, up_to=-1), "up_to"),
        (lambda user: services.archive(user, list(range(501))), "at most 500"),
        (lambda user: services.mark_read("alice", [1]), "user"),
    ],
)
def test_bad_state_change_input_is_refused(alice, call, message):
    with pytest.raises(ValueError, match=message):
        call(alice)


def test_state_change_queries_do_not_grow_with_the_ids(alice, django_assert_max_num_queries):
    few, many = ids_for(alice, 2), ids_for(alice, 200)
    with CaptureQueriesContext(connection) as one:
        services.mark_read(alice, few)
    with CaptureQueriesContext(connection) as other:
        services.mark_read(alice, many)
    assert len(one) == len(other)


# --- changes "up to an id": bounded however many rows ----------------------------------------


def unread_rows(user, n):
    Notification.objects.bulk_create(Notification(recipient=user, title=f"r{i}") for i in range(n))
    return list(
        Notification.objects.filter(recipient=user).order_by("id").values_list("id", flat=True)
    )


class Statements:
    """Every statement run while it is active, with the rows an UPDATE changed."""

    def __init__(self):
        self.run = []

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        self.run.append((sql, context["cursor"].rowcount))
        return result

    def on(self, table):
        return [(sql, rows) for sql, rows in self.run if table in sql]


@pytest.mark.parametrize("state", ["read", "seen"])
def test_a_change_up_to_an_id_runs_in_bounded_statements_and_announces_one_compact_change(
    alice, bob, monkeypatch, settings, django_capture_on_commit_callbacks, state
):
    monkeypatch.setattr(state_changes, "RANGE_BATCH_SIZE", 10)
    settings.NOTIFICATIONS = {"MAX_IDS_PER_MESSAGE": 5}
    ids = unread_rows(alice, 36)
    theirs = unread_rows(bob, 3)
    announced = []

    def receiver(sender, user_id, ids, state, up_to, count, **kwargs):
        announced.append((user_id, ids, state, up_to, count))

    signals.notifications_changed.connect(receiver)
    statements = Statements()
    try:
        with (
            django_capture_on_commit_callbacks(execute=True),
            connection.execute_wrapper(statements),
        ):
            if state == "read":
                change = services.mark_all_read(alice, up_to=ids[-2])
            else:
                change = services.mark_seen(alice, up_to=ids[-2])
    finally:
        signals.notifications_changed.disconnect(receiver)

    # 35 rows: four batches of at most 10, each a SELECT ... LIMIT 10 and an UPDATE of its ids.
    table = Notification._meta.db_table
    updates = [rows for sql, rows in statements.on(table) if sql.startswith("UPDATE")]
    selects = [sql for sql, _ in statements.on(table) if sql.startswith("SELECT")]
    assert updates == [10, 10, 10, 5]
    assert len(selects) == 4 and all("LIMIT 10" in sql for sql in selects)
    assert (change.ids, change.up_to, change.count) == ([], ids[-2], 35)
    assert announced == [(alice.pk, [], state, ids[-2], 35)]
    stamped = Notification.objects.filter(**{f"{state}_at__isnull": False})
    assert sorted(stamped.values_list("id", flat=True)) == ids[:-1]  # the newest one is left
    assert len(set(stamped.values_list(f"{state}_at", flat=True))) == 1  # one moment for all
    assert not Notification.objects.filter(id__in=theirs, **{f"{state}_at__isnull": False}).exists()


def test_a_small_change_up_to_an_id_still_lists_its_ids(
    alice, monkeypatch, changed, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(state_changes, "RANGE_BATCH_SIZE", 2)
    ids = unread_rows(alice, 5)
    with django_capture_on_commit_callbacks(execute=True):
        change = services.mark_all_read(alice)
    assert (change.ids, change.up_to, change.count) == (ids, ids[-1], 5)
    assert changed == [(alice.pk, ids, "read")]
    nothing = services.mark_all_read(alice)
    assert (nothing.ids, nothing.up_to, nothing.count) == ([], None, 0)
    assert len(changed) == 1  # nothing changed: nothing announced


def test_every_state_of_the_protocol_is_a_change_the_services_know():
    assert set(state_changes._PENDING) == set(protocol.STATES)
