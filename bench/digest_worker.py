"""A Django process of the digest benchmark, driven over stdin (``bench.lib.processes``), with
email digests on and Django's SMTP backend pointed at the run's server (``EMAIL_HOST`` and
``EMAIL_PORT`` in its environment, read by the demo's settings).

``seed``: ``count`` users with an address, one notification each (one ``notify()``).
``reset``: every notification due again, no digest sent. ``send``: ``send_batch()`` until a
batch is not full, as the task does, counting SQL statements (per batch). ``baseline``: the same
users' messages sent over one connection with no database work: ``render`` true builds them
with the app's templates inside the clock, false before it.
"""

import json
import sys
import time
from datetime import timedelta
from typing import Any

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core import mail  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from notifications.email import messages  # noqa: E402
from notifications.email.delivery import send_batch  # noqa: E402
from notifications.models import Digest, Notification  # noqa: E402
from notifications.services import notify  # noqa: E402

User = get_user_model()
PREFIX = "digest-bench-"
override_settings(
    NOTIFICATIONS={
        **settings.NOTIFICATIONS,
        "EMAIL_DIGESTS": True,
        "BASE_URL": "http://bench.invalid",
    }
).enable()


def seed(count: int) -> dict[str, Any]:
    password = make_password(None)
    users = [
        User(username=f"{PREFIX}{i:05d}", email=f"user{i:05d}@bench.invalid", password=password)
        for i in range(count)
    ]
    User.objects.bulk_create(users, batch_size=1000)
    audience = User.objects.filter(username__startswith=PREFIX)
    notify(
        audience,
        "Export ready",
        body="Your export of 1,204 rows is ready.",
        url="/exports/7/",
        email="digest",
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return reset()


def reset() -> dict[str, Any]:
    past = timezone.now() - timedelta(seconds=1)
    Notification.objects.update(digest=None, email_due_at=past, seen_at=None, read_at=None)
    Digest.objects.all().delete()
    return {"due": Notification.objects.awaiting_email().filter(email_due_at__lte=past).count()}


def send() -> dict[str, Any]:
    statements = 0

    def count(execute, sql, params, many, context):  # noqa: ANN001
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    per_batch, sent, t0 = [], 0, time.monotonic()
    with connection.execute_wrapper(count):
        while True:
            before = statements
            report = send_batch()
            per_batch.append(statements - before)
            sent += report.sent
            if not report.full:
                break
    return {"t0": t0, "t1": time.monotonic(), "sent": sent, "batches": per_batch}


def baseline(render: bool) -> dict[str, Any]:
    rows = Notification.objects.filter(recipient__username__startswith=PREFIX).select_related(
        "recipient"
    )
    made = [(Digest(pk=row.pk, user=row.recipient), row) for row in rows]

    def build() -> list[Any]:
        return [
            messages.build(digest, digest.user.email, [row], 1, row.category)
            for digest, row in made
        ]

    prepared = (
        None
        if render
        else [(m.subject, m.body, m.alternatives[0][0], m.to, m.extra_headers) for m in build()]
    )
    t0 = time.monotonic()
    if prepared is None:
        built = build()
    else:
        built = []
        for subject, text, html, to, headers in prepared:
            message = mail.EmailMultiAlternatives(
                subject, text, settings.DEFAULT_FROM_EMAIL, to, headers=headers
            )
            message.attach_alternative(html, "text/html")
            built.append(message)
    sent = mail.get_connection(fail_silently=False).send_messages(built)
    return {"t0": t0, "t1": time.monotonic(), "sent": sent, "batches": []}


def handle(command: dict[str, Any]) -> dict[str, Any]:
    if command["cmd"] == "seed":
        return seed(command["count"])
    if command["cmd"] == "reset":
        return reset()
    if command["cmd"] == "send":
        return send()
    return baseline(command["render"])


if __name__ == "__main__":
    print(json.dumps({"ready": True, "vendor": connection.vendor}), flush=True)
    for line in sys.stdin:  # an error ends the process: the run stops with its log
        print(json.dumps(handle(json.loads(line))), flush=True)
