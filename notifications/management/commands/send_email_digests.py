"""Send every email that is due now, in this process: for cron, or to see a digest at once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...email.delivery import Report, send_batch


class Command(BaseCommand):
    help = (
        "Send the email digests (and emails sent at once) that are due now, batch after batch, "
        "without a task worker. Safe beside running workers: claims keep each digest to one."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = Report()
        while True:
            report = send_batch()
            for field in ("claimed", "sent", "no_address", "nothing_left", "failed", "retry"):
                setattr(total, field, getattr(total, field) + getattr(report, field))
            if not report.full:
                break
        self.stdout.write(
            f"{total.sent} sent, {total.no_address} without an email address, "
            f"{total.nothing_left} seen before sending, {total.failed} failed, "
            f"{total.retry} to retry"
        )
