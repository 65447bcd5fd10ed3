"""``manage.py notify``: audiences, validation, dry run, batches and their query cost."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import services
from notifications.management.commands.notify import Command
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("notify", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def recipients() -> list[int]:
    return sorted(Notification.objects.values_list("recipient_id", flat=True))


def make_users(count: int, prefix: str = "member", **fields) -> list:
    user_model = get_user_model()
    user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i:04d}", **fields) for i in range(count)]
    )
    return list(user_model.objects.filter(username__startswith=prefix).order_by("pk"))


@pytest.fixture
def notify_calls():
    """Each notify() call the command makes, as the sorted ids of the users it wrote to."""
    calls: list[list[int]] = []
    original = services.notify

    def spy(*args, **kwargs):
        batch = original(*args, **kwargs)
        calls.append(sorted(batch.recipient_ids))
        return batch

    with mock.patch.object(services, "notify", spy):
        yield calls


# --- audiences -------------------------------------------------------------------------------


def test_usernames_get_it_once_active_or_not(make_user):
    alice = make_user("alice")
    dormant = make_user("dormant", is_active=False)
    make_user("bystander")
    out, _ = run(
        "alice", "dormant", "alice", "--title", "Maintenance tonight", "--level", "warning"
    )
    assert recipients() == sorted([alice.pk, dormant.pk])
    assert set(Notification.objects.values_list("title", "level")) == {
        ("Maintenance tonight", "warning")
    }
    assert "to 2 users" in out


def test_user_ids_and_usernames_together(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    run("alice", "--user-id", str(bob.pk), "--user-id", str(alice.pk), "--title", "Hello")
    assert recipients() == sorted([alice.pk, bob.pk])
    assert not Notification.objects.filter(recipient=carol).exists()


def test_all_fields_reach_every_row(make_user):
    alice = make_user("alice")
    run(
        "alice",
        "--title",
        "Invoice paid",
        "--body",
        "Thanks!\nSee you.",
        "--level",
        "success",
        "--category",
        "billing",
        "--url",
        "/invoices/7/",
    )
    notification = Notification.objects.get()
    assert notification.recipient == alice
    assert (
        notification.title,
        notification.body,
        notification.level,
        notification.category,
        notification.url,
    ) == ("Invoice paid", "Thanks!\nSee you.", "success", "billing", "/invoices/7/")


def test_groups_send_to_active_members_each_once(make_user):
    staff, ops, other = (Group.objects.create(name=n) for n in ("staff", "ops", "other"))
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    gone = make_user("gone", is_active=False)
    staff.user_set.add(alice, bob, gone)
    ops.user_set.add(bob, carol)
    other.user_set.add(make_user("outsider"))
    out, _ = run("--group", "staff", "--group", "ops", "--title", "Deploy at 5")
    assert recipients() == sorted([alice.pk, bob.pk, carol.pk])
    assert "to 3 users" in out and "'staff'" in out


def test_all_sends_to_every_active_user(make_user):
    active = [make_user(f"user{i}") for i in range(3)]
    make_user("gone", is_active=False)
    out, _ = run("--all", "--title", "Welcome")
    assert recipients() == sorted(user.pk for user in active)
    assert "to 3 users (all active users)" in out


@pytest.mark.parametrize(
    "audience",
    [
        [],
        ["alice", "--all"],
        ["--user-id", "1", "--all"],
        ["alice", "--group", "staff"],
        ["--group", "staff", "--all"],
        ["alice", "--group", "staff", "--all"],
    ],
)
def test_exactly_one_audience_kind(make_user, audience):
    make_user("alice")
    Group.objects.create(name="staff").user_set.add(make_user("bob"))
    with pytest.raises(CommandError, match="exactly one audience"):
        run(*audience, "--title", "Hello")
    assert not Notification.objects.exists()


def test_unknown_usernames_are_named_and_nothing_is_sent(make_user):
    make_user("alice")
    with pytest.raises(CommandError) as raised:
        run("alice", "nobody", "ghost", "--title", "Hello")
    assert "'nobody'" in str(raised.value) and "'ghost'" in str(raised.value)
    assert "'alice'" not in str(raised.value)
    assert not Notification.objects.exists()


def test_unknown_user_ids_are_named_and_nothing_is_sent(make_user):
    alice = make_user("alice")
    missing = alice.pk + 1000
    with pytest.raises(CommandError, match=f"id {missing}"):
        run("--user-id", str(alice.pk), "--user-id", str(missing), "--title", "Hello")
    assert not Notification.objects.exists()


@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_user_id_must_be_a_positive_integer(make_user, value):
    make_user("alice")
    with pytest.raises(CommandError, match="positive integer"):
        run("--user-id", value, "--title", "Hello")
    assert not Notification.objects.exists()


def test_unknown_groups_are_named_and_nothing_is_sent(make_user):
    Group.objects.create(name="staff").user_set.add(make_user("alice"))
    with pytest.raises(CommandError) as raised:
        run("--group", "staff", "--group", "nope", "--group", "neither", "--title", "Hello")
    assert "'nope'" in str(raised.value) and "'neither'" in str(raised.value)
    assert not Notification.objects.exists()


def test_an_empty_audience_is_an_error(make_user):
    Group.objects.create(name="staff").user_set.add(make_user("gone", is_active=False))
    with pytest.raises(CommandError, match="no active members"):
        run("--group", "staff", "--title", "Hello")
    get_user_model().objects.update(is_active=False)
    with pytest.raises(CommandError, match="no active users"):
        run("--all", "--title", "Hello")
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--title", "", "title"),
        ("--title", "   ", "title"),
        ("--title", "x" * 1000, "title"),
        ("--level", "fatal", "level"),
        ("--category", "not a slug", "category"),
        ("--url", "javascript:alert(1)", "url"),
        ("--url", "//evil.example/", "url"),
        ("--url", "relative/path", "url"),
    ],
)
def test_bad_content_is_refused_and_nothing_is_sent(make_user, option, value, field):
    make_user("alice")
    args = ["--all", "--title", "Fine", option, value]
    with pytest.raises(CommandError, match=f"Invalid notification: {field}: "):
        run(*args)
    assert not Notification.objects.exists()


def test_title_is_required(make_user):
    make_user("alice")
    with pytest.raises(CommandError, match="--title"):
        run("--all")
    assert not Notification.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_errors_exit_non_zero(make_user, capsys):
    make_user("alice")
    with pytest.raises(SystemExit) as raised:
        Command().run_from_argv(["manage.py", "notify", "nobody", "--title", "Hello"])
    assert raised.value.code != 0
    assert "No user with the username 'nobody'" in capsys.readouterr().err
    assert not Notification.objects.exists()


def test_dry_run_counts_and_sends_nothing(make_user):
    make_users(7)
    make_user("gone", is_active=False)
    out, _ = run("--all", "--title", "Hello", "--dry-run", "--batch-size", "3")
    assert "would send 'Hello' to 7 users" in out
    assert "3 batches" in out
    assert not Notification.objects.exists()


def test_dry_run_still_checks_everything(make_user):
    make_user("alice")
    with pytest.raises(CommandError, match="'nobody'"):
        run("nobody", "--title", "Hello", "--dry-run")
    with pytest.raises(CommandError, match="url"):
        run("alice", "--title", "Hello", "--url", "javascript:x", "--dry-run")


# --- batches ---------------------------------------------------------------------------------


def test_batches_of_consecutive_ids_each_user_once(notify_calls):
    users = make_users(25)
    out, _ = run("--all", "--title", "Batched", "--batch-size", "10")
    ids = [user.pk for user in users]
    assert notify_calls == [ids[:10], ids[10:20], ids[20:]]
    assert recipients() == ids
    assert "to 25 users (all active users) in 3 batches" in out


def test_an_exact_multiple_sends_no_empty_batch(notify_calls):
    users = make_users(20)
    run("--all", "--title", "Batched", "--batch-size", "10")
    assert [len(call) for call in notify_calls] == [10, 10]
    assert recipients() == [user.pk for user in users]


def test_batches_work_for_groups_and_named_users(notify_calls):
    users = make_users(12)
    staff = Group.objects.create(name="staff")
    members = users[::2]  # not consecutive ids: batches count users, not ids
    staff.user_set.add(*members)
    run("--group", "staff", "--title", "Batched", "--batch-size", "4")
    assert notify_calls == [[u.pk for u in members[:4]], [u.pk for u in members[4:]]]
    Notification.objects.all().delete()
    notify_calls.clear()
    names = [user.username for user in users[:5]]
    run(*names, "--title", "Batched", "--batch-size", "2")
    assert [len(call) for call in notify_calls] == [2, 2, 1]
    assert recipients() == [user.pk for user in users[:5]]


def count_queries(*args: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        run(*args)
    return len(queries.captured_queries)


def test_queries_grow_with_batches_not_users():
    users = make_users(60)
    few, many = Group.objects.create(name="few"), Group.objects.create(name="many")
    few.user_set.add(*users[:12])
    many.user_set.add(*users)

    def queries(group: str, batch_size: int) -> int:
        Notification.objects.all().delete()
        return count_queries("--group", group, "--title", "Hello", "--batch-size", str(batch_size))

    one, three, six = queries("many", 60), queries("many", 20), queries("many", 10)
    assert queries("few", 4) == three  # 3 batches of 4 users cost what 3 batches of 20 do
    per_batch = (three - one) / 2
    assert per_batch == (six - three) / 3
    assert 1 <= per_batch <= 5
    assert one - per_batch <= 5  # resolving the audience and counting it


def test_progress_on_request_one_line_per_batch():
    make_users(25)
    _, err = run("--all", "--title", "Hello", "--batch-size", "10", "--progress")
    lines = err.splitlines()
    assert len(lines) == 3 and "\r" not in err
    assert "10/25" in lines[0] and "25/25" in lines[-1] and "100%" in lines[-1]
    assert "users/s" in lines[-1]


def test_no_progress_when_stderr_is_not_a_terminal():
    make_users(5)
    _, err = run("--all", "--title", "Hello", "--batch-size", "2")
    assert err == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_redrawn_in_place_on_a_terminal():
    make_users(5)
    err = Terminal()
    call_command(
        "notify", "--all", "--title", "Hello", "--batch-size", "2", stdout=io.StringIO(), stderr=err
    )
    text = err.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "5/5" in text.rsplit("\r", 1)[1]
