"""``manage.py notify``: send a notification to users, groups or every active user.

The audience is resolved to one QuerySet of users and sent in batches of consecutive user ids:
each batch is one ``notify()`` call, so one ``INSERT ... SELECT`` and one push after its commit.
The queries grow with the number of batches, never with the number of users.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db import models

from notifications import services
from notifications.management.arguments import positive_int
from notifications.models import Level, id_list
from notifications.users import active_users

DEFAULT_BATCH_SIZE = 10_000


def _plain(text: str) -> str:
    return text


class Progress:
    """A one-line text bar on stderr: rewritten in place on a terminal, one line per batch
    elsewhere (a log file would otherwise collect every carriage return)."""

    width = 30

    def __init__(self, out: OutputWrapper, total: int, *, live: bool) -> None:
        self.out = out
        self.total = total
        self.live = live
        self.started = time.monotonic()

    def update(self, done: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = done / elapsed
        share = done / self.total if self.total else 1.0
        filled = min(self.width, int(self.width * share))
        eta = (self.total - done) / rate if rate and done < self.total else 0.0
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done:,}/{self.total:,}"
            f" {share:4.0%}  {rate:,.0f} users/s  {elapsed:.1f} s elapsed"
            + (f", ~{eta:.0f} s left" if eta >= 1 else "")
        )
        if self.live:
            # Padding clears what a longer previous line left behind.
            self.out.write(f"\r{line:<100}", ending="", style_func=_plain)
        else:
            self.out.write(line, style_func=_plain)
        self.out.flush()

    def finish(self) -> None:
        if self.live:
            self.out.write("", style_func=_plain)


class Command(BaseCommand):
    help = (
        "Send a notification to users (by username or --user-id), to the active members of "
        "groups (--group), or to every active user (--all). Large audiences are sent in batches "
        "of consecutive user ids, each one INSERT ... SELECT."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        audience = parser.add_argument_group(
            "audience", "exactly one kind: usernames and/or --user-id, --group, or --all"
        )
        audience.add_argument(
            "usernames", nargs="*", metavar="USERNAME", help="users to notify, active or not"
        )
        audience.add_argument(
            "--user-id",
            dest="user_ids",
            action="append",
            type=positive_int,
            default=[],
            metavar="ID",
            help="a user to notify by id, active or not (repeatable)",
        )
        audience.add_argument(
            "--group",
            dest="groups",
            action="append",
            default=[],
            metavar="NAME",
            help="notify the active members of this auth group (repeatable; each user once)",
        )
        audience.add_argument("--all", action="store_true", help="notify every active user")

        content = parser.add_argument_group("content", "checked exactly as notify() checks it")
        content.add_argument("--title", required=True, help="short text (required)")
        content.add_argument("--body", default="", help="longer plain text")
        content.add_argument(
            "--level", default=Level.INFO, help=f"one of {', '.join(Level.values)} (default info)"
        )
        content.add_argument("--category", default="", help="a slug, for filtering and muting")
        content.add_argument(
            "--url", default="", help="where it leads: http(s)://... or a path starting with /"
        )

        sending = parser.add_argument_group("sending")
        sending.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH_SIZE,
            help=f"users per INSERT (default {DEFAULT_BATCH_SIZE:,})",
        )
        sending.add_argument(
            "--dry-run", action="store_true", help="print how many users it would go to; send none"
        )
        sending.add_argument(
            "--progress",
            action="store_true",
            help="print progress to stderr even when it is not a terminal",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        content = {name: options[name] for name in ("title", "body", "level", "category", "url")}
        try:
            services.validate_content(
                content["title"],
                content["body"],
                level=content["level"],
                category=content["category"],
                url=content["url"],
            )
        except ValueError as error:
            raise CommandError(f"Invalid notification: {error}") from None

        audience, total, description = self._audience(options)
        batch_size = options["batch_size"]
        batches = -(-total // batch_size)
        if options["dry_run"]:
            self.stdout.write(
                f"Dry run: would send {content['title']!r} to {total:,} users ({description})"
                f" in {batches:,} batch{'es' if batches != 1 else ''} of at most {batch_size:,}."
                " Nothing was sent."
            )
            return

        progress = None
        if options["progress"] or (options["verbosity"] > 0 and self.stderr.isatty()):
            progress = Progress(self.stderr, total, live=self.stderr.isatty())
        started = time.monotonic()
        sent, sent_batches = self._send(audience, content, batch_size, progress, total)
        if progress is not None:
            progress.finish()
        if options["verbosity"] > 0:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Sent {content['title']!r} to {sent:,} users ({description}) in"
                    f" {sent_batches:,} batch{'es' if sent_batches != 1 else ''},"
                    f" {time.monotonic() - started:.1f} s."
                )
            )

    def _audience(self, options: dict[str, Any]) -> tuple[models.QuerySet, int, str]:
        """The recipients as one QuerySet of users, how many they are, and a few words on who."""
        kinds = [
            kind
            for kind, given in (
                ("usernames/--user-id", options["usernames"] or options["user_ids"]),
                ("--group", options["groups"]),
                ("--all", options["all"]),
            )
            if given
        ]
        if len(kinds) != 1:
            got = f" (got {' and '.join(kinds)})" if kinds else ""
            raise CommandError(
                "Choose exactly one audience: usernames and/or --user-id, --group NAME, or"
                f" --all{got}."
            )
        users = get_user_model()._default_manager.all()
        if options["groups"]:
            return self._groups(users, options["groups"])
        if options["all"]:
            active = active_users(users)
            total = active.count()
            if total == 0:
                raise CommandError("There are no active users: nothing was sent.")
            return active, total, "all active users"
        ids = self._user_ids(users, options["usernames"], options["user_ids"])
        return users.filter(pk__in=id_list(ids, users.db)), len(ids), "the users named"

    def _user_ids(self, users: models.QuerySet, usernames: list[str], ids: list[int]) -> list[int]:
        found: list[int] = []
        if usernames:
            field = users.model.USERNAME_FIELD
            pairs = dict(users.filter(**{f"{field}__in": set(usernames)}).values_list(field, "pk"))
            unknown = [name for name in dict.fromkeys(usernames) if name not in pairs]
            if unknown:
                raise CommandError(
                    f"No user with the {field} {', '.join(map(repr, unknown))}: nothing was sent."
                )
            found += pairs.values()
        if ids:
            wanted = list(dict.fromkeys(ids))
            existing = set(
                users.filter(pk__in=id_list(wanted, users.db)).values_list("pk", flat=True)
            )
            missing = [str(pk) for pk in wanted if pk not in existing]
            if missing:
                raise CommandError(f"No user with the id {', '.join(missing)}: nothing was sent.")
            found += wanted
        return sorted(set(found))

    def _groups(self, users: models.QuerySet, names: list[str]) -> tuple[models.QuerySet, int, str]:
        groups = dict(Group.objects.filter(name__in=set(names)).values_list("name", "pk"))
        unknown = [name for name in dict.fromkeys(names) if name not in groups]
        if unknown:
            raise CommandError(f"No group named {', '.join(map(repr, unknown))}: nothing was sent.")
        # A semi-join: each member once, however many of the groups they are in.
        members = users.filter(groups__in=list(groups.values())).values("pk")
        audience = active_users(users).filter(pk__in=members)
        total = audience.count()
        described = ", ".join(map(repr, groups))
        if total == 0:
            raise CommandError(
                f"The group(s) {described} have no active members: nothing was sent."
            )
        return audience, total, f"active members of {described}"

    def _send(
        self,
        audience: models.QuerySet,
        content: dict[str, Any],
        batch_size: int,
        progress: Progress | None,
        total: int,
    ) -> tuple[int, int]:
        """Send batch after batch of consecutive user ids; return (users sent to, batches)."""
        ordered = audience.order_by("pk")
        last: Any = None
        sent = batches = 0
        while True:
            remaining = ordered if last is None else ordered.filter(pk__gt=last)
            # The id that closes this batch, and whether any user comes after it: one small
            # query per batch, so each batch is a plain id range the INSERT ... SELECT reads.
            bounds = list(remaining.values_list("pk", flat=True)[batch_size - 1 : batch_size + 1])
            batch = remaining.filter(pk__lte=bounds[0]) if bounds else remaining
            try:
                written = services.notify(batch, **content)
            except Exception as error:
                raise CommandError(
                    f"Sending failed after {sent:,} of {total:,} users had it (the first"
                    f" {batches:,} batch{'es' if batches != 1 else ''} by user id): {error}"
                ) from error
            sent += len(written.ids)
            batches += 1
            if progress is not None:
                progress.total = max(progress.total, sent)
                progress.update(sent)
            if len(bounds) < 2:
                return sent, batches
            last = bounds[0]
