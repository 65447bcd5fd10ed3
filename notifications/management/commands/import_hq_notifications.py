"""``manage.py import_hq_notifications``: copy django-notifications-hq's rows into this app's table.

hq's table has the same name as ours, so it must first be renamed (or left in another database):
docs/migrating-from-hq.md gives the steps. The rows are read with raw SQL, in batches of
consecutive hq ids, and each batch is written in its own transaction with a bounded number of
queries: one read, one for the recipients, one per kind of object referenced (for the titles),
one for what was already imported (with ``--skip-existing``), and the INSERTs of one
``bulk_create``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from notifications import versions
from notifications.management.arguments import positive_int
from notifications.models import Level, Notification, id_list, is_category

DEFAULT_TABLE = "notifications_notification_hq"
DEFAULT_CATEGORY = "imported"
DEFAULT_BATCH_SIZE = 5000
# Rows per INSERT statement: keeps every statement under PostgreSQL's 65,535 parameters whatever
# the batch size (Django lowers it further where the database needs it, as on SQLite).
INSERT_CHUNK = 1000

# The columns of hq's table this command reads (hq 1.x; all present since its migration 0003).
COLUMNS = (
    "id",
    "recipient_id",
    "level",
    "unread",
    "verb",
    "description",
    "actor_content_type_id",
    "actor_object_id",
    "target_content_type_id",
    "target_object_id",
    "action_object_content_type_id",
    "action_object_object_id",
    "timestamp",
    "public",
    "deleted",
    "data",
)
ROLES = ("actor", "target", "action_object")

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?\Z")
_TITLE_LENGTH = cast(int, Notification._meta.get_field("title").max_length)
_LEVELS = frozenset(Level.values)


@dataclass(frozen=True)
class TypeRef:
    """One of hq's content types, as the source database names it and the target knows it."""

    label: str  # "app_label.model"
    content_type_id: int | None  # the target database's ContentType, None if it has none
    model: type[models.Model] | None  # None if no installed model has that name

    def pk(self, object_id: Any) -> Any:
        """The object id as the model's primary key, or None if it cannot be one."""
        if self.model is None or object_id in (None, ""):
            return None
        try:
            return self.model._meta.pk.to_python(object_id)
        except (ValidationError, ValueError, TypeError):
            return None


@dataclass
class Stats:
    read: int = 0
    imported: int = 0
    already_imported: int = 0
    no_recipient: int = 0

    @property
    def skipped(self) -> int:
        return self.already_imported + self.no_recipient


class HqImporter:
    """Reads hq's rows from ``source`` and turns them into our rows for the default database."""

    def __init__(
        self,
        *,
        source: str,
        table: str,
        category: str,
        include_deleted: bool,
        skip_existing: bool,
    ) -> None:
        self.source = source
        self.target = DEFAULT_DB_ALIAS
        self.connection: BaseDatabaseWrapper = connections[source]
        quote = self.connection.ops.quote_name
        self.table_sql = ".".join(quote(part) for part in table.split("."))
        self.table = table
        self.category = category
        self.include_deleted = include_deleted
        self.skip_existing = skip_existing
        self.types: dict[int, TypeRef] = {}

    # --- checks and totals -------------------------------------------------------------------

    def check_table(self) -> None:
        try:
            # A savepoint: on PostgreSQL a failed query would otherwise spoil the transaction.
            with transaction.atomic(using=self.source), self.connection.cursor() as cursor:
                cursor.execute(f"SELECT * FROM {self.table_sql} WHERE 1 = 0")
                found = {column[0].lower() for column in cursor.description}
        except DatabaseError as error:
            raise CommandError(
                f"No table {self.table!r} in database {self.source!r} ({error}). Rename hq's "
                "table before migrating this app (docs/migrating-from-hq.md), or name it "
                "with --table and --database."
            ) from None
        missing = [column for column in COLUMNS if column not in found]
        if missing:
            raise CommandError(
                f"Table {self.table!r} lacks the columns {', '.join(missing)}: it is not "
                "django-notifications-hq's notification table."
            )

    def load_content_types(self) -> None:
        """Map hq's content type ids to the target's by natural key: two queries, once.

        Within one database they are the same rows; from another database the ids may differ.
        """
        content_types = ContentType._meta.db_table
        try:
            with transaction.atomic(using=self.source), self.connection.cursor() as cursor:
                quote = self.connection.ops.quote_name
                cursor.execute(
                    f"SELECT {quote('id')}, {quote('app_label')}, {quote('model')}"
                    f" FROM {quote(content_types)}"
                )
                source_types = cursor.fetchall()
        except DatabaseError as error:
            raise CommandError(
                f"Cannot read {content_types!r} in database {self.source!r} ({error}): hq's "
                "actors and targets are named by the content types of their own database."
            ) from None
        target_ids = {
            (app_label, model): pk
            for pk, app_label, model in ContentType.objects.using(self.target).values_list(
                "pk", "app_label", "model"
            )
        }
        for pk, app_label, model_name in source_types:
            try:
                model = apps.get_model(app_label, model_name)
            except LookupError:
                model = None
            self.types[pk] = TypeRef(
                f"{app_label}.{model_name}", target_ids.get((app_label, model_name)), model
            )

    def already_imported(self) -> bool:
        return Notification.objects.using(self.target).filter(data__has_key="hq_id").exists()

    def totals(self) -> tuple[int, int]:
        """(rows, deleted rows) in hq's table."""
        deleted = self.connection.ops.quote_name("deleted")
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*), SUM(CASE WHEN {deleted} THEN 1 ELSE 0 END) FROM {self.table_sql}"
            )
            rows, deleted_rows = cursor.fetchone()
        return rows, deleted_rows or 0

    # --- reading ---------------------------------------------------------------------------------

    def fetch(self, after: int, limit: int) -> list[dict[str, Any]]:
        """The next ``limit`` rows after hq id ``after``, by id (a keyset: every batch is one
        primary key range scan, however far into the table)."""
        quote = self.connection.ops.quote_name
        where = f"{quote('id')} > %s"
        params: list[Any] = [after]
        if not self.include_deleted:
            where += f" AND {quote('deleted')} = %s"
            params.append(False)
        sql = (
            f"SELECT {', '.join(quote(column) for column in COLUMNS)} FROM {self.table_sql}"
            f" WHERE {where} ORDER BY {quote('id')} LIMIT %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [*params, limit])
            return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    # --- mapping ---------------------------------------------------------------------------------

    def build(self, rows: Sequence[dict[str, Any]], stats: Stats) -> list[Notification]:
        """Our unsaved rows for hq's ``rows``, without those to skip (counted in ``stats``)."""
        user_model = get_user_model()
        recipient_ids = sorted({row["recipient_id"] for row in rows})
        existing_users = set(
            user_model._base_manager.using(self.target)
            .filter(pk__in=id_list(recipient_ids, self.target))
            .values_list("pk", flat=True)
        )
        done = self._imported_ids(rows, existing_users) if self.skip_existing else set()
        objects = self._objects(rows)
        notifications = []
        for row in rows:
            stats.read += 1
            if row["id"] in done:
                stats.already_imported += 1
            elif row["recipient_id"] not in existing_users:
                stats.no_recipient += 1
            else:
                notifications.append(self._notification(row, objects))
        return notifications

    def _imported_ids(self, rows: Sequence[dict[str, Any]], users: set[int]) -> set[int]:
        # An imported row has its hq row's recipient and timestamp as created_at: both bound the
        # search to this batch's window of the (recipient, created_at) index, where a test of
        # data alone would read the whole table for every batch.
        if not users:
            return set()
        timestamps = [_datetime(row["timestamp"], self.connection) for row in rows]
        return set(
            Notification.objects.using(self.target)
            .filter(
                recipient_id__in=id_list(sorted(users), self.target),
                created_at__gte=min(timestamps),
                created_at__lte=max(timestamps),
                data__hq_id__gte=rows[0]["id"],
                data__hq_id__lte=rows[-1]["id"],
            )
            .values_list("data__hq_id", flat=True)
        )

    def _objects(self, rows: Iterable[dict[str, Any]]) -> dict[tuple[int, str], models.Model]:
        """The actors, targets and action objects still there, keyed by (content type, id):
        one query per model, never one per row."""
        wanted: dict[type[models.Model], dict[Any, set[tuple[int, str]]]] = defaultdict(
            lambda: defaultdict(set)
        )
        for row in rows:
            for role in ROLES:
                content_type_id = row[f"{role}_content_type_id"]
                ref = self.types.get(content_type_id)
                if ref is None:
                    continue
                object_id = row[f"{role}_object_id"]
                pk = ref.pk(object_id)
                if pk is not None and ref.model is not None:
                    wanted[ref.model][pk].add((content_type_id, str(object_id)))
        found: dict[tuple[int, str], models.Model] = {}
        for model, keys in wanted.items():
            for pk, obj in model._base_manager.in_bulk(list(keys)).items():
                for key in keys[pk]:
                    found[key] = obj
        return found

    def _notification(
        self, row: dict[str, Any], objects: dict[tuple[int, str], models.Model]
    ) -> Notification:
        data = _hq_data(row["data"])
        data["hq_id"] = row["id"]
        data["hq_verb"] = row["verb"]
        if not bool(row["public"]):
            data["hq_public"] = False

        level = row["level"]
        if level not in _LEVELS:
            data["hq_level"] = level
            level = Level.INFO

        displays: dict[str, str] = {}
        refs: dict[str, tuple[int | None, str]] = {}
        for role in ROLES:
            content_type_id = row[f"{role}_content_type_id"]
            object_id = row[f"{role}_object_id"]
            if content_type_id is None or object_id in (None, ""):
                continue
            object_id = str(object_id)
            ref = self.types.get(content_type_id)
            obj = objects.get((content_type_id, object_id))
            if obj is not None:
                displays[role] = _display(obj)
            label = ref.label if ref else f"contenttype:{content_type_id}"
            if role == "action_object":
                data["action_object"] = {"type": label, "id": object_id}
            elif ref and ref.content_type_id is not None and ref.pk(object_id) is not None:
                refs[role] = (ref.content_type_id, object_id)
            else:
                # A type this project no longer has (or an id its model cannot take) would make
                # every list that prefetches actors and targets fail: keep it as data instead.
                data[f"hq_{role}"] = {"type": label, "id": object_id}

        timestamp = _datetime(row["timestamp"], self.connection)
        read_at = None if bool(row["unread"]) else timestamp
        actor_type, actor_id = refs.get("actor", (None, ""))
        target_type, target_id = refs.get("target", (None, ""))
        return Notification(
            recipient_id=row["recipient_id"],
            title=_title(row["verb"], displays),
            body=row["description"] or "",
            level=level,
            category=self.category,
            url="",
            actor_content_type_id=actor_type,
            actor_object_id=actor_id,
            target_content_type_id=target_type,
            target_object_id=target_id,
            data=data,
            created_at=timestamp,
            read_at=read_at,
            # hq knows no "seen": what was read was seen.
            seen_at=read_at,
            archived_at=timestamp if bool(row["deleted"]) else None,
        )

    # --- writing -----------------------------------------------------------------------------

    def write(self, notifications: list[Notification]) -> None:
        # The one writer besides services: these rows are history, not news. services.notify()
        # would push each to the recipients' sockets (toasts, desktop notifications) and send
        # notification_sent, and it cannot set created_at, read_at or archived_at. bulk_create
        # sends no signals and pushes nothing.
        Notification.objects.using(self.target).bulk_create(notifications, batch_size=INSERT_CHUNK)


def _hq_data(value: Any) -> dict[str, Any]:
    """hq's ``data`` (JSON text from the jsonfield package, or already decoded) as a dict to
    extend; anything but an object is kept whole under "hq_data"."""
    if value is None:
        return {}
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode()
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_refuse_constant)
        except ValueError:
            return {"hq_data": value}
    if value is None:
        return {}
    return dict(value) if isinstance(value, dict) else {"hq_data": value}


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON: PostgreSQL's jsonb would refuse the whole batch.
    raise ValueError(name)


def _display(obj: models.Model) -> str:
    try:
        return str(obj)
    except Exception:
        # A project's __str__ that fails on old rows must not stop the import.
        return ""


def _title(verb: str, displays: dict[str, str]) -> str:
    """hq's sentence, "<actor> <verb> [<action object> on] <target>", without its "... ago";
    objects that are gone are left out (down to the bare verb)."""
    actor, target, action_object = (displays.get(role, "") for role in ROLES)
    if action_object and target:
        rest = gettext("%(action_object)s on %(target)s") % {
            "action_object": action_object,
            "target": target,
        }
    else:
        rest = target or action_object
    title = " ".join(part for part in (actor, verb, rest) if part).strip()
    title = " ".join(title.split()) or gettext("Notification")
    if len(title) > _TITLE_LENGTH:
        title = title[: _TITLE_LENGTH - 1].rstrip() + "…"
    return title


def _datetime(value: Any, connection: BaseDatabaseWrapper) -> datetime:
    """A timestamp read by raw SQL, made what a DateTimeField expects (as Django's own converters
    would: SQLite gives naive UTC, or text when it does not know the column's type)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise CommandError(f"hq timestamp {value!r} is not a date and time")
        value = parsed
    if settings.USE_TZ and timezone.is_naive(value):
        return timezone.make_aware(value, connection.timezone)
    if not settings.USE_TZ and timezone.is_aware(value):
        return timezone.make_naive(value, connection.timezone)
    return value


class Command(BaseCommand):
    help = (
        "Import django-notifications-hq's notifications (its table renamed, see "
        "docs/migrating-from-hq.md) into this app's table, in batches, without pushing them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--table",
            default=DEFAULT_TABLE,
            help=f"hq's table, optionally schema.table (default: {DEFAULT_TABLE})",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            metavar="ALIAS",
            help="the DATABASES alias holding hq's table (default: default); rows are always "
            "written to the default database",
        )
        parser.add_argument(
            "--category",
            default=DEFAULT_CATEGORY,
            help=f'category of the imported notifications (default: "{DEFAULT_CATEGORY}"; '
            '"" for none)',
        )
        parser.add_argument(
            "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, metavar="N"
        )
        parser.add_argument(
            "--include-deleted",
            action="store_true",
            help="import hq's soft-deleted notifications too, as archived",
        )
        parser.add_argument(
            "--skip-existing",
            action="store_true",
            help="skip hq rows imported before (resume an interrupted import)",
        )
        parser.add_argument("--dry-run", action="store_true", help="read and map, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        table = options["table"]
        if not _TABLE_NAME.match(table):
            raise CommandError(f"--table: {table!r} is not a table name (or schema.table)")
        if options["database"] not in connections:
            raise CommandError(
                f"--database: no alias {options['database']!r} in DATABASES "
                f"(have: {', '.join(connections)})"
            )
        category = options["category"]
        if not is_category(category):
            raise CommandError(
                "--category: a slug of at most 64 letters, digits, hyphens and underscores"
            )

        importer = HqImporter(
            source=options["database"],
            table=table,
            category=category,
            include_deleted=options["include_deleted"],
            skip_existing=options["skip_existing"],
        )
        importer.check_table()
        if not options["skip_existing"] and importer.already_imported():
            raise CommandError(
                "Some hq notifications were imported already: pass --skip-existing to import "
                "only the others."
            )
        importer.load_content_types()
        total, deleted = importer.totals()
        if not options["include_deleted"]:
            total -= deleted
        dry_run = options["dry_run"]
        verbosity = options["verbosity"]
        if verbosity:
            self.stdout.write(
                f"{'Dry run: reading' if dry_run else 'Importing'} {total:,} hq notifications "
                f"from {table} ({options['database']})"
                + ("" if options["include_deleted"] else f", leaving out {deleted:,} deleted")
            )

        stats = Stats()
        after, batch_number = 0, 0
        while True:
            with transaction.atomic(using=importer.target):
                rows = importer.fetch(after, options["batch_size"])
                if not rows:
                    break
                notifications = importer.build(rows, stats)
                if not dry_run:
                    importer.write(notifications)
            after = rows[-1]["id"]
            batch_number += 1
            stats.imported += len(notifications)
            if not dry_run:
                # Not a push: makes the polling clients' ETags stale so that their badges count
                # the history too.
                versions.bump(sorted({n.recipient_id for n in notifications}))
            elif verbosity > 1:
                for notification in notifications:
                    self.stdout.write(_describe(notification))
            if verbosity:
                self.stdout.write(
                    f"  batch {batch_number}: hq ids {rows[0]['id']}-{after}, "
                    f"{stats.read:,}/{total:,} read, {stats.imported:,} "
                    f"{'to import' if dry_run else 'imported'}, {stats.skipped:,} skipped"
                )
        if verbosity:
            self.stdout.write(self._summary(stats, dry_run))

    def _summary(self, stats: Stats, dry_run: bool) -> str:
        skipped = (
            (stats.already_imported, "already imported"),
            (stats.no_recipient, "whose recipient is not in the default database"),
        )
        reasons = ", ".join(f"{count:,} {reason}" for count, reason in skipped if count)
        verb = "Would import" if dry_run else "Imported"
        line = f"{verb} {stats.imported:,} of {stats.read:,} hq notifications"
        line += f"; skipped {reasons}." if reasons else "."
        return line + (" Dry run: nothing was written." if dry_run else "")


def _describe(notification: Notification) -> str:
    state = "read" if notification.read_at else "unread"
    if notification.archived_at:
        state += ", archived"
    return (
        f"    hq #{notification.data['hq_id']} -> user {notification.recipient_id}: "
        f"{notification.title!r} [{notification.level}, {state}]"
    )
