"""Delete old notifications in batches, each its own short transaction (no long locks)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from notifications.conf import app_settings
from notifications.models import Notification
from notifications.services.following import orphaned_follows


def positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError("must be at least 1 day")
    return days


class Command(BaseCommand):
    help = (
        "Delete notifications older than --older-than DAYS (default: the RETENTION_DAYS "
        "setting), and every notification past its expires_at, in batches; and the follows "
        "of objects that are gone."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--older-than", type=positive_days, metavar="DAYS")
        parser.add_argument("--read-only", action="store_true", help="only notifications read")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"] or app_settings.RETENTION_DAYS
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        queryset = Notification.objects.expired()
        if days is not None:
            old = Notification.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
            queryset |= old.read() if options["read_only"] else old
        elif options["read_only"]:
            raise CommandError("--read-only needs --older-than (or the RETENTION_DAYS setting)")
        what = (
            f"older than {days} days{' and read' if options['read_only'] else ''}, or expired"
            if days is not None
            else "expired"
        )
        orphans = orphaned_follows()
        if options["dry_run"]:
            self.stdout.write(f"Would delete {queryset.count()} notifications ({what}).")
            self.stdout.write(f"Would delete {orphans.count()} follows of objects that are gone.")
            return
        deleted = batches = 0
        while True:
            # By id, a batch at a time: each DELETE is short, and locks only its own rows.
            ids = list(
                queryset.order_by("id").values_list("id", flat=True)[: options["batch_size"]]
            )
            if not ids:
                break
            with transaction.atomic():
                deleted += Notification.objects.filter(id__in=ids).delete()[0]
            batches += 1
            self.stderr.write(f"  deleted {deleted} so far", ending="\r")
        self.stdout.write(f"Deleted {deleted} notifications ({what}) in {batches} batches.")
        gone = orphans.delete()[0]
        self.stdout.write(f"Deleted {gone} follows of objects that are gone.")
