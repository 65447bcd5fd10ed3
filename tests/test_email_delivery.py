"""Sending the email digests: a batch's queries do not grow with it, workers side by side send
each digest once, a worker that dies leaves its digests to the next one after the lease, the mail
server failing (down, refusing a recipient) and the task queue running for real (db_worker).

The tests with other processes (workers, db_worker) commit their rows (``transaction=True``) and
hand the test database to the processes as daphne's end-to-end tests do (tests/email_worker.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from io import StringIO

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from notifications import cache, services
from notifications.conf import app_settings
from notifications.email import claims, delivery
from notifications.models import Digest, Notification
from tests.servers import ROOT, database_url
from tests.smtp import SMTPServer, free_port

EMAIL_ON = {"EMAIL_DIGESTS": True, "BASE_URL": "http://testserver", "EMAIL_BATCH_SIZE": 100}
TASK = "notifications.email.tasks.send_due_emails"


@pytest.fixture(autouse=True)
def email_on(settings):
    settings.NOTIFICATIONS = dict(EMAIL_ON)


@pytest.fixture(autouse=True)
def no_run_scheduled():
    """The cache remembers the email task's next run across tests (and, in Redis, processes)."""
    store = caches[app_settings.CACHE_ALIAS]
    store.delete(cache.EMAIL_SCHEDULE)
    yield
    store.delete(cache.EMAIL_SCHEDULE)


@dataclass
class SlowServer(SMTPServer):
    """Takes ``delay`` seconds over each message before it accepts it."""

    delay: float = 0.2

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class RefusingServer(SMTPServer):
    """Refuses the ``refused`` addresses for good (550), accepts the others."""

    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def serve(settings):
    """Start one of the servers above and point Django's SMTP backend at it."""
    controllers: list[Controller] = []

    def start(server: SMTPServer) -> SMTPServer:
        controller = Controller(server, hostname=server.host, port=server.port)
        controller.start()
        controllers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = server.host
        settings.EMAIL_PORT = server.port
        settings.EMAIL_TIMEOUT = 10
        return server

    yield start
    for controller in controllers:
        controller.stop()


def due_users(count: int, name: str = "reader", *, email: bool = True) -> list:
    """``count`` users (with an email address unless ``email`` is False), each with two
    notifications due now: one with an actor, one with a target (a batch fetches both)."""
    user_model = get_user_model()
    author = user_model.objects.create_user(f"{name}-author", password="pw")
    users = user_model.objects.bulk_create(
        [
            user_model(username=f"{name}{i}", email=f"{name}{i}@example.com" if email else "")
            for i in range(count)
        ]
    )
    services.notify(users, "New comment", "Nice work", category="comments", actor=author)
    services.notify(users, "Review requested", target=author, email="digest")
    past = timezone.now() - timedelta(seconds=1)
    Notification.objects.filter(recipient__in=users).update(email_due_at=past)
    return users


def recipients(server: SMTPServer) -> Counter[str]:
    return Counter(str(message["To"]) for message in server.messages)


def worker_env(settings, server: SMTPServer, **env: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        # pytest-django has swapped in the test database's name by now.
        "DATABASE_URL": database_url(connection.settings_dict),
        "TEST_NOTIFICATIONS": json.dumps(settings.NOTIFICATIONS),
        "TEST_EMAIL_PORT": str(server.port),
        **env,
    }


def start_worker(env: dict[str, str], *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.email_worker", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"the worker did not finish within {timeout} s:\n{output}")
    assert process.returncode == 0, output
    return output


# 1. Queries that do not grow with the batch.


@pytest.mark.django_db
def test_send_batch_takes_as_many_queries_for_100_users_as_for_10():
    counts = {}
    for size in (10, 100):
        users = due_users(size, name=f"batch{size}-")
        with CaptureQueriesContext(connection) as queries:
            report = delivery.send_batch()
        assert (report.claimed, report.sent) == (size, size)
        assert Digest.objects.filter(user__in=users, status=Digest.Status.SENT).count() == size
        counts[size] = len(queries)
    # The claim's 8 (as below), then 6: the digests with their users, each digest's count of
    # rows (and category), the rows shown, their actors and their targets (one query per model:
    # both users here), and the sent digests' UPDATE.
    assert counts == {10: 14, 100: 14}


@pytest.mark.django_db
def test_claim_takes_as_many_queries_for_100_users_as_for_10():
    counts = {}
    for size in (10, 100):
        due_users(size, name=f"claim{size}-")
        with CaptureQueriesContext(connection) as queries:
            claimed = claims.claim(timezone.now(), 100)
        assert len(claimed) == size
        counts[size] = len(queries)
    # SAVEPOINT (the test's transaction around it; BEGIN outside one), the lock (SQLite: an
    # empty DELETE; PostgreSQL: pg_advisory_xact_lock), the claims dead workers left (none
    # here, so no UPDATE of them), the email-muted rows' UPDATE, the users due, the digests'
    # INSERT, the rows' UPDATE pointing them at their digests, RELEASE SAVEPOINT.
    assert counts == {10: 8, 100: 8}


@pytest.mark.django_db
def test_a_full_batch_says_so_and_250_users_take_three_batches():
    due_users(250)
    reports = []
    while not reports or reports[-1].full:
        reports.append(delivery.send_batch())
    assert [(report.sent, report.full) for report in reports] == [
        (100, True),
        (100, True),
        (50, False),
    ]
    assert Digest.objects.filter(status=Digest.Status.SENT).count() == 250


# 2. Workers side by side.


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_digest_once(settings, smtp_server):
    settings.NOTIFICATIONS = {**EMAIL_ON, "EMAIL_BATCH_SIZE": 10}
    users = due_users(150)
    # Both begin claiming at the same moment, once Django is loaded in each.
    env = worker_env(settings, smtp_server, TEST_START_AT=str(time.time() + 5))
    workers = [start_worker(env, "send_email_digests") for _ in range(2)]
    outputs = [finish(worker) for worker in workers]

    sent = [int(output.strip().splitlines()[-1].split()[0]) for output in outputs]
    assert sum(sent) == 150, outputs
    assert all(sent), f"one worker sent everything, they did not overlap: {outputs}"
    received = recipients(smtp_server)
    assert received == Counter({user.email: 1 for user in users})
    assert len({message["Message-ID"] for message in smtp_server.messages}) == 150
    assert Digest.objects.count() == 150
    assert set(Digest.objects.values_list("status", flat=True)) == {Digest.Status.SENT}


# 3. Failures.


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_leaves_its_digests_to_the_next_after_the_lease(settings, serve):
    settings.NOTIFICATIONS = {**EMAIL_ON, "EMAIL_BATCH_SIZE": 20}
    server = serve(SlowServer("127.0.0.1", free_port(), delay=0.2))
    users = due_users(20)
    worker = start_worker(worker_env(settings, server), "send_email_digests")
    deadline = time.monotonic() + 60
    while len(server.messages) < 3:
        assert worker.poll() is None, worker.communicate()[0]
        assert time.monotonic() < deadline, "the worker sent nothing"
        time.sleep(0.02)
    worker.kill()
    worker.communicate()
    time.sleep(0.5)  # a message the server was still taking in when the worker died
    accepted = recipients(server)
    assert 3 <= len(accepted) < 20

    # Its claims hold: pending, leased, none recorded.
    now = timezone.now()
    digests = list(Digest.objects.all())
    assert len(digests) == 20
    assert all(digest.status == Digest.Status.PENDING for digest in digests)
    assert all(digest.lease_until > now for digest in digests)
    server.delay = 0
    assert delivery.send_batch().claimed == 0  # a worker before the lease ends takes none
    assert recipients(server) == accepted

    report = delivery.send_batch(now=now + claims.LEASE + timedelta(seconds=1))
    assert (report.claimed, report.sent) == (20, 20)
    received = recipients(server)
    assert set(received) == {user.email for user in users}  # nobody skipped
    # Sent twice: only what the server had accepted before the worker died, with the same id.
    assert {address for address, count in received.items() if count > 1} == set(accepted)
    assert max(received.values()) == 2
    for address in accepted:
        ids = {str(m["Message-ID"]) for m in server.messages if str(m["To"]) == address}
        assert len(ids) == 1
    assert set(Digest.objects.values_list("status", "attempts")) == {(Digest.Status.SENT, 2)}


@pytest.mark.django_db
def test_the_mail_server_down_leaves_the_batch_to_retry_and_a_later_batch_sends_it(
    settings, smtp_server
):
    due_users(3)
    (nobody,) = due_users(1, name="nobody", email=False)
    settings.EMAIL_PORT = free_port()  # nothing listens there: connection refused
    report = delivery.send_batch()
    assert (report.claimed, report.sent, report.retry, report.no_address) == (4, 0, 3, 1)
    # What needed no server is done with; the rest waits.
    assert Digest.objects.get(user=nobody).status == Digest.Status.NO_ADDRESS
    digests = Digest.objects.exclude(user=nobody)
    assert set(digests.values_list("status", "attempts")) == {(Digest.Status.PENDING, 1)}
    retry_at = max(digests.values_list("lease_until", flat=True))
    assert retry_at <= timezone.now() + claims.RETRY_AFTER
    assert delivery.send_batch().claimed == 0  # not before its pause

    settings.EMAIL_PORT = smtp_server.port
    report = delivery.send_batch(now=retry_at + timedelta(seconds=1))
    assert (report.claimed, report.sent, report.retry) == (3, 3, 0)
    assert set(digests.values_list("status", "attempts")) == {(Digest.Status.SENT, 2)}
    assert len(smtp_server.messages) == 3


@pytest.mark.django_db
def test_a_recipient_the_server_refuses_fails_and_the_others_are_sent(serve):
    users = due_users(3)
    refused = users[1].email
    server = serve(RefusingServer("127.0.0.1", free_port(), refused={refused}))
    report = delivery.send_batch()
    assert (report.sent, report.failed, report.retry) == (2, 1, 0)
    assert Digest.objects.get(user=users[1]).status == Digest.Status.FAILED
    assert set(recipients(server)) == {users[0].email, users[2].email}


@dataclass
class DataRefusingServer(SMTPServer):
    """Refuses the message for the ``refused`` addresses after DATA (554), takes the others."""

    refused: set[str] = field(default_factory=set)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        if set(envelope.rcpt_tos) & self.refused:
            return "554 5.7.1 Message refused"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.django_db
def test_one_users_unusable_address_never_holds_up_the_others(serve):
    """A newline in an address, a message the server refuses after DATA: each fails that user's
    digest alone."""
    users = due_users(5)
    users[1].email = "bad\n@example.com"
    get_user_model().objects.bulk_update(users, ["email"])
    server = serve(DataRefusingServer("127.0.0.1", free_port(), refused={users[3].email}))
    report = delivery.send_batch()
    assert (report.sent, report.failed, report.retry) == (3, 2, 0)
    assert set(recipients(server)) == {users[0].email, users[2].email, users[4].email}
    statuses = dict(Digest.objects.values_list("user_id", "status"))
    assert [statuses[user.pk] for user in users] == [
        Digest.Status.SENT,
        Digest.Status.FAILED,
        Digest.Status.SENT,
        Digest.Status.FAILED,
        Digest.Status.SENT,
    ]


@pytest.mark.django_db
def test_a_digest_is_given_up_after_max_attempts(settings):
    (user,) = due_users(1)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # down for good
    now = timezone.now()
    for attempt in range(1, claims.MAX_ATTEMPTS + 1):
        report = delivery.send_batch(now=now)
        assert (report.claimed, report.retry) == (1, 1)
        digest = Digest.objects.get(user=user)
        assert (digest.status, digest.attempts) == (Digest.Status.PENDING, attempt)
        # The pause grows with the attempts, counted from the batch's clock.
        assert digest.lease_until >= now + claims.RETRY_AFTER * attempt
        assert delivery.send_batch(now=digest.lease_until - timedelta(seconds=1)).claimed == 0
        now = digest.lease_until + timedelta(seconds=1)
    assert delivery.send_batch(now=now).claimed == 0
    digest.refresh_from_db()
    assert (digest.status, digest.sent_at) == (Digest.Status.FAILED, now)
    # Its notifications stay with it: given up means not emailed again.
    assert not Notification.objects.awaiting_email().filter(recipient=user).exists()


@pytest.mark.django_db
def test_a_digest_given_up_takes_no_place_in_the_batch(settings):
    (given_up,) = due_users(1, name="given-up")
    claims.claim(timezone.now(), 1)
    Digest.objects.update(attempts=claims.MAX_ATTEMPTS)
    (waiting,) = due_users(1, name="waiting")
    later = timezone.now() + claims.LEASE + timedelta(seconds=1)
    report = delivery.send_batch(now=later, limit=1)
    assert (report.claimed, report.sent, report.full) == (1, 1, True)
    assert Digest.objects.get(user=given_up).status == Digest.Status.FAILED
    assert Digest.objects.get(user=waiting).status == Digest.Status.SENT


# 4. The task queue, for real.


@pytest.mark.django_db(transaction=True)
def test_the_database_worker_sends_the_digest_and_schedules_the_next_run(settings, smtp_server):
    user_model = get_user_model()
    alice = user_model.objects.create_user("alice", "alice@example.com", "pw")
    bob = user_model.objects.create_user("bob", "bob@example.com", "pw")
    settings.NOTIFICATIONS = {**EMAIL_ON, "EMAIL_AFTER_SECONDS": 1}
    before = timezone.now()
    services.notify(alice, "Hello")
    task = DBTaskResult.objects.get()
    alice_due = Notification.objects.get(recipient=alice).email_due_at
    assert task.task_path == TASK
    assert task.run_after == alice_due
    assert timedelta(seconds=1) <= task.run_after - before < timedelta(seconds=5)  # a loaded CI
    # Something else waits, due after the run already scheduled: no second run for it.
    settings.NOTIFICATIONS = {**EMAIL_ON, "EMAIL_AFTER_SECONDS": 3600}
    services.notify(bob, "Later")
    bob_due = Notification.objects.get(recipient=bob).email_due_at
    assert DBTaskResult.objects.count() == 1

    time.sleep(max((task.run_after - timezone.now()).total_seconds(), 0) + 0.1)
    worker = start_worker(
        worker_env(settings, smtp_server),
        *("db_worker", "--batch", "--no-reload", "--no-startup-delay", "--interval", "0.1"),
    )
    finish(worker, timeout=60)

    assert recipients(smtp_server) == Counter({"alice@example.com": 1})
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL"
    assert task.return_value["sent"] == 1
    # The run scheduled the next one, for when bob's notification falls due.
    (following,) = DBTaskResult.objects.exclude(pk=task.pk)
    assert (following.task_path, following.status) == (TASK, "READY")
    assert following.run_after == bob_due


@pytest.mark.django_db(transaction=True)
def test_sends_due_together_enqueue_one_run_and_a_later_one_none(settings, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    settings.NOTIFICATIONS = {**EMAIL_ON, "EMAIL_AFTER_SECONDS": 60}
    services.notify(alice, "One")
    services.notify(bob, "Two")
    assert DBTaskResult.objects.count() == 1
    settings.NOTIFICATIONS = {**EMAIL_ON, "EMAIL_AFTER_SECONDS": 600}
    services.notify(carol, "Three")
    assert DBTaskResult.objects.count() == 1
    # Due before the scheduled run: that one is too late for it.
    services.notify(carol, "Four", email="now")
    assert DBTaskResult.objects.count() == 2


# 5. The command.


@pytest.mark.django_db
def test_send_email_digests_prints_its_counts(settings):
    settings.NOTIFICATIONS = {**EMAIL_ON, "EMAIL_BATCH_SIZE": 2}
    due_users(3)
    due_users(1, name="nobody", email=False)
    out = StringIO()
    call_command("send_email_digests", stdout=out)
    assert out.getvalue() == (
        "3 sent, 1 without an email address, 0 seen before sending, 0 failed, 0 to retry\n"
    )
