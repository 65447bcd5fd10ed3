"""The notifications table and the queries every other module asks of it.

Knows nothing of sockets or HTTP. Views, consumers and services say
``Notification.objects.for_user(user).unread()``; they never build these filters by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes import fields as contenttypes_fields
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Count, Min, OuterRef, Q, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Now
from django.db.models.sql import Query
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .conf import app_settings
from .prepared import Prepared, Slot


class Level(models.TextChoices):
    INFO = "info", _("Info")
    SUCCESS = "success", _("Success")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")


CATEGORY_MAX_LENGTH = 64
_CATEGORY = re.compile(r"[-a-zA-Z0-9_]*\Z")


def is_category(value: Any) -> bool:
    """Whether ``value`` can be a notification's category: a slug (ASCII letters, digits, hyphens
    and underscores) of at most ``CATEGORY_MAX_LENGTH`` characters, or "" for none."""
    return (
        isinstance(value, str)
        and len(value) <= CATEGORY_MAX_LENGTH
        and _CATEGORY.match(value) is not None
    )


class Email(models.TextChoices):
    """Whether and how a notification goes out by email (see notifications/email/)."""

    NONE = "", _("in-app only")
    DIGEST = "digest", _("in a digest, if still unseen")
    NOW = "now", _("at once")


class Channel(models.TextChoices):
    """Where a notification reaches its user: what a mute applies to."""

    IN_APP = "in_app", _("in-app")
    EMAIL = "email", _("email")
    PUSH = "push", _("push")


class Counts(TypedDict):
    unread_count: int
    unseen_count: int
    last_id: int | None


def id_list(ids: Sequence[int], using: str = "default") -> RawSQL | list[int]:
    """The given ids as something ``__in`` accepts, in one query parameter where the database can.

    A plain list becomes one parameter per id: SQLite refuses more than 32,766 of them and the SQL
    grows with the audience. An array (PostgreSQL) or a JSON document (SQLite) stays one parameter.
    """
    vendor = connections[using].vendor
    if vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [id_list_param(ids, connections[using])])
    if vendor == "sqlite":
        return RawSQL("SELECT value FROM json_each(%s)", [id_list_param(ids, connections[using])])
    return list(ids)


def id_list_param(ids: Sequence[int], connection: Any) -> Any:
    """The one parameter :func:`id_list` passes for ``ids`` (PostgreSQL and SQLite)."""
    return list(ids) if connection.vendor == "postgresql" else json.dumps(list(ids))


_DIGITS = re.compile(r"[0-9]{1,20}\Z")


def is_primary_key(model: type[models.Model], value: Any) -> bool:
    """Whether ``value`` (text from a form, a URL or a JSON body) can be a primary key of
    ``model``, decided without a query: an integer key is ASCII digits within its column's range.

    Looked up as they are, such values fail in the database driver rather than in Django: SQLite
    raises OverflowError on an id past 2**63, int() reads "\u0663" (an Arabic-Indic three) as 3,
    and PostgreSQL refuses a NUL byte in any text.
    """
    if not isinstance(value, str | int) or isinstance(value, bool):
        return False
    field = model._meta.pk
    if isinstance(field, models.IntegerField):
        if isinstance(value, str) and not _DIGITS.match(value):
            return False
        try:
            low, high = connections[model._default_manager.db].ops.integer_field_range(
                field.get_internal_type()
            )
        except KeyError:  # an integer field of a type of its own: a 64-bit column, say
            low, high = -(2**63), 2**63 - 1  # a bigint column
        return low <= int(value) <= high
    if "\x00" in str(value):
        return False
    try:
        field.to_python(value)
    except ValidationError:
        return False
    return True


def database_now(using: str = DEFAULT_DB_ALIAS) -> datetime:
    """The database's clock: the one that writes ``inserted_at``."""
    connection = connections[using]
    sql, params = Query(None).get_compiler(using).compile(Now())  # per vendor, as db_default
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        value = cursor.fetchone()[0]
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _sql(queryset: models.QuerySet) -> tuple[str, tuple[Any, ...]]:
    return queryset.query.get_compiler(queryset.db).as_sql()


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user: Any, *, expired: bool = False) -> NotificationQuerySet:
        """One user's notifications, without those past their ``expires_at`` (unless
        ``expired``: the admin sees and deletes those too)."""
        user_id = getattr(user, "pk", user)
        mine = self.filter(recipient_id=user_id)
        return mine if expired else mine.live()

    def live(self, now: datetime | None = None) -> NotificationQuerySet:
        now = timezone.now() if now is None else now
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def expired(self) -> NotificationQuerySet:
        return self.filter(expires_at__lte=timezone.now())

    # The states, each stated here only: everything else (services, API, admin) asks for them.
    def unread(self) -> NotificationQuerySet:
        """Unread and not archived: what the badge counts."""
        return self.not_read().unarchived()

    def not_read(self) -> NotificationQuerySet:
        """Not read, archived or not."""
        return self.filter(read_at__isnull=True)

    def read(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=False)

    def unseen(self) -> NotificationQuerySet:
        """Unseen and not archived: what the badge counts."""
        return self.not_seen().unarchived()

    def not_seen(self) -> NotificationQuerySet:
        """Not seen, archived or not."""
        return self.filter(seen_at__isnull=True)

    def archived(self) -> NotificationQuerySet:
        return self.filter(archived_at__isnull=False)

    def unarchived(self) -> NotificationQuerySet:
        return self.filter(archived_at__isnull=True)

    def awaiting_email(self) -> NotificationQuerySet:
        """Meant for email, in no digest yet, and still unseen, unread and unarchived: what a
        digest would carry (the ``notif_email_due`` index holds exactly these). One row:
        ``Notification.awaits_email``."""
        pending = self.filter(email_due_at__isnull=False, digest__isnull=True)
        return pending.not_seen().not_read().unarchived().live()

    def up_to(self, last_id: int | None) -> NotificationQuerySet:
        """Only what existed up to ``last_id``: makes "mark all" race-safe against new arrivals."""
        return self if last_id is None else self.filter(id__lte=last_id)

    def with_related(self) -> NotificationQuerySet:
        """Everything the serializer reads, in a query count that does not grow with the page."""
        return self.prefetch_related("actor", "target")

    # State changes: one UPDATE each, returning how many rows changed.
    def mark_read(self) -> int:
        return self.not_read().update(read_at=timezone.now())

    def mark_unread(self) -> int:
        return self.read().update(read_at=None)

    def mark_seen(self) -> int:
        return self.not_seen().update(seen_at=timezone.now())

    def archive(self) -> int:
        return self.unarchived().update(archived_at=timezone.now())

    def unarchive(self) -> int:
        return self.archived().update(archived_at=None)

    def since(self, after: int) -> NotificationQuerySet:
        """What a client that has shown everything up to ``after`` may have missed.

        Call it on one user's rows. Besides every row newer than ``after``, it keeps the rows
        the database wrote within ``RESUME_MARGIN`` before the one the client saw last: a
        transaction that took an id before ``after`` but committed after it was shown is caught
        here. Clients drop the duplicates this brings by id.

        The margin is measured on ``inserted_at``, which only the database's clock writes: an
        app server's clock, or rows imported with old ``created_at`` values, cannot move it.
        Rows written before that column existed have none, and are never in a margin (they
        committed long ago). Costs two small queries before the rows' own.
        """
        anchor = (
            self.filter(id__lte=after).order_by("-id").values_list("inserted_at", flat=True).first()
        )
        if anchor is None:
            return self.filter(id__gt=after)
        margin = app_settings.RESUME_MARGIN
        # The lowest row that could have committed late. Bounding the window above as well keeps
        # this an index range scan; a late row's INSERT began before the anchor's took its id.
        lowest = (
            self.filter(
                id__lt=after,
                inserted_at__gte=anchor - margin,
                inserted_at__lte=anchor + margin,
            )
            .order_by()
            .aggregate(lowest=Min("id"))["lowest"]
        )
        if lowest is None:
            return self.filter(id__gt=after)
        # With a lower bound on id the planner has a range to scan instead of a whole user's rows.
        # The row at `after` itself the client has shown: leave it out.
        return self.filter(
            Q(id__gt=after) | Q(inserted_at__gte=anchor - margin) & ~Q(id=after), id__gte=lowest
        )

    def inserted_after(self, moment: datetime) -> NotificationQuerySet:
        """Rows the database wrote after ``moment`` (by its clock): gap detection's window."""
        return self.filter(inserted_at__gt=moment)

    def backlog(
        self, after: int, limit: int | None = None, cursor: int | None = None
    ) -> tuple[list[Notification], bool]:
        """:meth:`since`, oldest first, at most ``limit`` rows; the flag is False when more wait.

        ``cursor`` pages through the same set: pass the last id of the previous page (and the
        same ``after``) to get the next one. Resuming from the newest id received instead would
        recompute the margin from it and could return the same rows again and again.
        """
        limit = app_settings.BACKLOG_LIMIT if limit is None else limit
        rows = self.since(after)
        if cursor is not None:
            rows = rows.filter(id__gt=cursor)
        page = list(rows.with_related().order_by("id")[: limit + 1])
        return page[:limit], len(page) <= limit

    def counts(self) -> Counts:
        """Unread and unseen counts and the newest id of one user's rows, in one round trip.

        Three scalar subqueries rather than one aggregate with filters: each then uses its own
        partial index instead of all three reading every row of the user.
        """
        unread, unread_params = _sql(self.unread().order_by().values("id"))
        unseen, unseen_params = _sql(self.unseen().order_by().values("id"))
        last, last_params = _sql(self.order_by("-id").values("id")[:1])
        sql = (
            f"SELECT (SELECT COUNT(*) FROM ({unread}) AS u),"
            f" (SELECT COUNT(*) FROM ({unseen}) AS s), ({last})"
        )
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, (*unread_params, *unseen_params, *last_params))
            unread_count, unseen_count, last_id = cursor.fetchone()
        return {"unread_count": unread_count, "unseen_count": unseen_count, "last_id": last_id}

    def counts_by_recipient(self, user_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """``{user_id: (unread, unseen)}`` for many users in one query (users with none absent),
        of live notifications, as :meth:`counts`.

        One scalar subquery per user and count, each an index-only scan of its partial index: a
        single GROUP BY over the users' rows would read every unread row of every one of them.
        """
        if not user_ids:
            return {}
        if len(user_ids) == 1 and not self.query.where:
            # The common case (one recipient), its statement built once (prepared.py).
            sql, params = _ONE_USER_COUNTS.sql(self.db, user_id=user_ids[0], now=timezone.now())
            with connections[self.db].cursor() as cursor:
                cursor.execute(sql, params)
                unread, unseen = cursor.fetchone()
            return {user_ids[0]: (unread, unseen)} if unread or unseen else {}

        def count(queryset: NotificationQuerySet) -> Coalesce:
            per_user = (
                queryset.filter(recipient_id=OuterRef("pk"))
                .order_by()
                .values("recipient_id")
                .annotate(n=Count("*"))
                .values("n")
            )
            return Coalesce(Subquery(per_user, output_field=models.IntegerField()), Value(0))

        rows = (
            get_user_model()
            ._default_manager.using(self.db)
            .filter(pk__in=id_list(user_ids, self.db))
            .order_by()
            .annotate(unread=count(self.live().unread()), unseen=count(self.live().unseen()))
            .values_list("pk", "unread", "unseen")
        )
        return {user_id: (unread, unseen) for user_id, unread, unseen in rows if unread or unseen}


def _one_user_counts(using: str, *, user_id: int, now: datetime) -> tuple[str, Sequence[Any]]:
    """What ``counts_by_recipient`` counts for one user, as :meth:`counts` counts it."""
    mine = Notification.objects.using(using).filter(recipient_id=user_id).live(now)
    unread, unread_params = _sql(mine.unread().order_by().values("id"))
    unseen, unseen_params = _sql(mine.unseen().order_by().values("id"))
    sql = f"SELECT (SELECT COUNT(*) FROM ({unread}) AS u), (SELECT COUNT(*) FROM ({unseen}) AS s)"
    return sql, (*unread_params, *unseen_params)


def _naive_or_not(value: datetime) -> datetime:
    """A datetime as ``timezone.now()`` would give it (aware in UTC, or naive without USE_TZ)."""
    return value.replace(tzinfo=UTC) if settings.USE_TZ else value


def _adapt_datetime(value: datetime, connection: Any) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


_ONE_USER_COUNTS = Prepared(
    _one_user_counts,
    user_id=Slot(-7_301_001),
    now=Slot(lambda: _naive_or_not(datetime(1901, 2, 3, 4, 5, 6, 789012)), _adapt_datetime),
)


def _model_exists(field: GenericForeignKey, instance: Any) -> bool:
    """Whether the model behind ``instance``'s generic key exists (no key: nothing to miss)."""
    ct_id = getattr(instance, field.model._meta.get_field(field.ct_field).attname)
    if ct_id is None:
        return True
    try:
        content_type = field.get_content_type(id=ct_id, using=instance._state.db)
    except ContentType.DoesNotExist:
        return False
    return content_type.model_class() is not None


def _prefetch_known_models(
    field: GenericForeignKey, prefetch: Any, instances: Any, querysets: Any
) -> Any:
    """Django's prefetch for the instances whose model exists; the others match nothing."""
    usable = [instance for instance in instances if _model_exists(field, instance)]
    objects, object_key, instance_key, *rest = prefetch(usable, querysets)

    def key(instance: Any) -> Any:
        return instance_key(instance) if _model_exists(field, instance) else None

    return (objects, object_key, key, *rest)


# Django 6.0 moved the reading of a generic key (get, prefetch) from the field to a descriptor
# the field installs; Django 5.2's field is its own descriptor.
_Descriptor: Any = getattr(contenttypes_fields, "GenericForeignKeyDescriptor", None)

if _Descriptor is not None:

    class _KnownModelsDescriptor(_Descriptor):
        def get_prefetch_querysets(self, instances: Any, querysets: Any = None) -> Any:
            prefetch = super().get_prefetch_querysets
            return _prefetch_known_models(self.field, prefetch, instances, querysets)

        def __get__(self, instance: Any, cls: Any = None) -> Any:
            if instance is not None and not _model_exists(self.field, instance):
                return None
            return super().__get__(instance, cls)


class GenericObject(GenericForeignKey):
    """A generic foreign key that takes an object whose model is gone (its app uninstalled, its
    content type left behind) for a missing object, instead of failing every list, backlog and
    push that includes it: one such row must not lock its user out of the inbox."""

    def contribute_to_class(self, cls: Any, name: str, **kwargs: Any) -> None:  # type: ignore[override]
        super().contribute_to_class(cls, name, **kwargs)
        if _Descriptor is not None:
            setattr(cls, self.attname, _KnownModelsDescriptor(self))

    # Django 5.2, where the field reads (on 6.0+ the descriptor above does).
    def get_prefetch_querysets(self, instances: Any, querysets: Any = None) -> Any:
        prefetch = super().get_prefetch_querysets  # type: ignore[misc]
        return _prefetch_known_models(self, prefetch, instances, querysets)

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is not None and not _model_exists(self, instance):
            return None
        return super().__get__(instance, cls)


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("recipient"),
        db_index=False,  # covered by the composite indexes below, which all lead with it
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True, default="")
    level = models.CharField(_("level"), max_length=16, choices=Level.choices, default=Level.INFO)
    category = models.SlugField(
        _("category"), max_length=CATEGORY_MAX_LENGTH, blank=True, default="", db_index=False
    )
    url = models.CharField(_("url"), max_length=2000, blank=True, default="")

    actor_content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    actor_object_id = models.CharField(max_length=255, blank=True, default="")
    actor = GenericObject("actor_content_type", "actor_object_id")

    target_content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    target_object_id = models.CharField(max_length=255, blank=True, default="")
    target = GenericObject("target_content_type", "target_object_id")

    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # When the row was written, by the database's clock (never set by the app: an import keeps
    # its old created_at, and app servers' clocks differ). Resume's late-commit margin and gap
    # detection measure on it. Null for rows written before the column existed.
    inserted_at = models.DateTimeField(
        _("inserted at"), db_default=Now(), null=True, editable=False
    )
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    seen_at = models.DateTimeField(_("seen at"), null=True, blank=True)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    # After this moment it is no longer listed, counted or pushed (and prune_notifications
    # deletes it).
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # Grouping: while the recipient has an unread notification with the same key, a new one
    # replaces it (a new row, a new id) carrying the count and the latest actors.
    group_key = models.CharField(_("group key"), max_length=200, blank=True, default="")
    group_count = models.PositiveIntegerField(_("group count"), default=1)
    actors = models.JSONField(_("latest actors"), default=list, blank=True)
    # Email: how it goes out, from when (null: never), and the digest that carried it (null: not
    # yet). A digest's claim sets ``digest`` in one UPDATE that only matches rows without one.
    email = models.CharField(
        _("email"), max_length=8, choices=Email.choices, blank=True, default=Email.NONE
    )
    email_due_at = models.DateTimeField(_("email due at"), null=True, blank=True)
    digest = models.ForeignKey(
        "Digest",
        on_delete=models.RESTRICT,  # a digest goes only with its user (and so its rows)
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("email"),
    )

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-id"]
        permissions = [("send_notification", _("Can send notifications from the admin"))]
        indexes = [
            # The list (newest first), resume (id > N) and "up to id" updates.
            models.Index(fields=["recipient", "id"], name="notif_recipient_id"),
            # Retention by age, and finding imported rows.
            models.Index(fields=["recipient", "created_at"], name="notif_recipient_created"),
            # Resume's late-commit margin and gap detection's window.
            models.Index(fields=["recipient", "inserted_at"], name="notif_recipient_inserted"),
            # The badge counts and the "up to id" changes: partial indexes that hold only what is
            # unread (unseen). archived_at and expires_at are key columns so that counts, which
            # leave those rows out, stay index-only, while mark_read/mark_seen can use them too.
            models.Index(
                fields=["recipient", "id", "archived_at", "expires_at"],
                condition=Q(read_at__isnull=True),
                name="notif_unread",
            ),
            models.Index(
                fields=["recipient", "id", "archived_at", "expires_at"],
                condition=Q(seen_at__isnull=True),
                name="notif_unseen",
            ),
            # Grouping: the unread notification a new one of the same key folds into.
            models.Index(
                fields=["recipient", "group_key"],
                condition=Q(read_at__isnull=True) & ~Q(group_key=""),
                name="notif_group",
            ),
            # Retention: what is past its expiry.
            models.Index(
                fields=["expires_at"], condition=Q(expires_at__isnull=False), name="notif_expiry"
            ),
            # Email: what waits for a digest, by when it is due. Seen, read or archived rows
            # leave it, as do rows a digest carried.
            models.Index(
                fields=["email_due_at", "recipient"],
                condition=Q(
                    email_due_at__isnull=False,
                    digest__isnull=True,
                    seen_at__isnull=True,
                    read_at__isnull=True,
                    archived_at__isnull=True,
                ),
                name="notif_email_due",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    @property
    def awaits_email(self) -> bool:
        """Whether a digest will carry it once due: ``awaiting_email()``, asked of this row
        (keep the two together)."""
        return (
            self.email_due_at is not None
            and self.digest_id is None
            and self.seen_at is None
            and self.read_at is None
            and self.archived_at is None
            and (self.expires_at is None or self.expires_at > timezone.now())
        )


class Mute(models.Model):
    """One thing a user chose not to be notified of on one channel: a category, a level, or
    (``ALL``, email only) everything.

    A row per muted value (not a list in a JSON column) so that notify() can leave muted users
    out of its INSERT ... SELECT with a plain, indexed NOT IN on every database.
    """

    class Kind(models.TextChoices):
        CATEGORY = "category", _("category")
        LEVEL = "level", _("level")
        ALL = "all", _("everything")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_mutes",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    value = models.CharField(_("value"), max_length=CATEGORY_MAX_LENGTH, blank=True)
    channel = models.CharField(
        _("channel"), max_length=16, choices=Channel.choices, default=Channel.IN_APP
    )

    class Meta:
        verbose_name = _("muted category or level")
        verbose_name_plural = _("muted categories and levels")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "channel", "kind", "value"], name="notif_mute_unique_channel"
            )
        ]
        indexes = [
            models.Index(fields=["channel", "kind", "value", "user"], name="notif_mute_channel")
        ]

    def __str__(self) -> str:
        return f"{self.user} mutes {self.kind} {self.value} ({self.channel})"


class Digest(models.Model):
    """One email to one user: the notifications it carries point at it.

    Created when a worker claims the user's due notifications, ``sent_at`` set once the mail
    server accepted it. While ``status`` is pending the claim holds until ``lease_until``; a
    worker that died leaves it to the next one after that.
    """

    class Kind(models.TextChoices):
        DIGEST = "digest", _("digest")
        NOW = "now", _("at once")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        NO_ADDRESS = "no-address", _("skipped: no email address")
        NOTHING_LEFT = "nothing-left", _("skipped: seen before it was sent")
        FAILED = "failed", _("failed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_digests",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    created_at = models.DateTimeField(_("created at"))
    lease_until = models.DateTimeField(_("claimed until"))
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("email digest")
        verbose_name_plural = _("email digests")
        indexes = [
            # The window: a user's latest digest.
            models.Index(fields=["user", "created_at"], name="notif_digest_user"),
            # Claims a dead worker left behind.
            models.Index(
                fields=["lease_until"], condition=Q(status="pending"), name="notif_digest_lease"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.user} ({self.get_status_display()})"


class PushSubscription(models.Model):
    """One browser a user subscribed to Web Push: where its push service takes pushes
    (``endpoint``) and the keys they are encrypted with (RFC 8291), as ``PushSubscription.toJSON()``
    gave them. notifications/push/subscriptions.py checks what goes in."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_push_subscriptions",
        verbose_name=_("user"),
    )
    endpoint = models.CharField(_("endpoint"), max_length=2000)
    p256dh = models.CharField(_("public key"), max_length=100)
    auth = models.CharField(_("authentication secret"), max_length=50)
    user_agent = models.CharField(_("browser"), max_length=200, blank=True, default="")
    # A digest of the sign-in (session) that subscribed it: signing out of that browser ends
    # its pushes. Empty for a subscription made with a token, which lives until deleted.
    credential = models.CharField(max_length=32, blank=True, default="", editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # When the browser last posted it (each page with the widget does): the least recently seen
    # one makes room past WEB_PUSH_MAX_SUBSCRIPTIONS.
    seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    # When the push service said it would go (PushSubscription.expirationTime), if it did.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    pushed_at = models.DateTimeField(_("last pushed"), null=True, blank=True)

    class Meta:
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["user", "endpoint"], name="notif_push_user_endpoint")
        ]
        indexes = [
            # Handing a browser over from the user who subscribed it to the one signed in now.
            models.Index(fields=["endpoint"], name="notif_push_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {urlsplit(self.endpoint).hostname or self.endpoint[:40]}"


REASON_MAX_LENGTH = CATEGORY_MAX_LENGTH  # a reason is a slug as a category is (is_category)
# Why a user follows an object. A project may use its own slugs beside these.
FOLLOW_REASONS = ("manual", "author", "mentioned", "participated")


def object_key(obj: models.Model, using: str = DEFAULT_DB_ALIAS) -> tuple[ContentType, str]:
    """How a follow (and a notification's target) names ``obj``: its content type (of its own
    model, a proxy's included) and its primary key as text."""
    content_type = ContentType.objects.db_manager(using).get_for_model(
        obj, for_concrete_model=False
    )
    return content_type, str(obj.pk)


class FollowQuerySet(models.QuerySet["Follow"]):
    def of(self, obj: models.Model) -> FollowQuerySet:
        """The rows about one object (any user): the unique index's leading columns."""
        content_type, object_id = object_key(obj, self.db)
        return self.of_key(content_type.pk, object_id)

    def of_key(self, content_type_id: int, object_id: str) -> FollowQuerySet:
        """:meth:`of` the object :func:`object_key` names so (its content type's id)."""
        return self.filter(content_type_id=content_type_id, object_id=object_id)

    def following(self) -> FollowQuerySet:
        """Rows whose user follows the object and has not muted it: who hears of it."""
        return self.in_state(following=True, muted=False)

    def muted(self) -> FollowQuerySet:
        return self.in_state(muted=True)

    def in_state(
        self, *, following: bool | None = None, muted: bool | None = None
    ) -> FollowQuerySet:
        """Rows by whether their user follows the object, and whether they muted it (None:
        either): the REST list's and the admin's filters."""
        rows = self
        if following is not None:
            rows = rows.exclude(reason="") if following else rows.filter(reason="")
        if muted is not None:
            rows = rows.filter(muted_at__isnull=not muted)
        return rows


class Follow(models.Model):
    """A user's relation to one object of any model: following it (``reason`` says why), muting
    it (``muted_at``), or both.

    Following puts the user among ``followers(obj)``; muting keeps every notification whose
    target is the object from them, whoever sends it and whatever its category (but those of
    ``UNMUTABLE_CATEGORIES``). Muting leaves the reason as it was, so that unmuting restores
    following. A row with no reason and no mute has nothing left to say and is deleted.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_follows",
        verbose_name=_("user"),
        db_index=False,  # the user's list is served by notif_follow_user
    )
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("object type"),
        db_index=False,  # leads notif_follow_unique
    )
    object_id = models.CharField(_("object id"), max_length=255)
    target = GenericObject("content_type", "object_id")
    # "" while the user mutes the object without following it.
    reason = models.SlugField(
        _("reason"), max_length=REASON_MAX_LENGTH, blank=True, default="", db_index=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    muted_at = models.DateTimeField(_("muted at"), null=True, blank=True)

    objects = FollowQuerySet.as_manager()

    class Meta:
        verbose_name = _("follow")
        verbose_name_plural = _("follows")
        constraints = [
            # Also the index of followers(obj) and of the muted users a send to obj leaves out.
            models.UniqueConstraint(
                fields=["content_type", "object_id", "user"], name="notif_follow_unique"
            )
        ]
        indexes = [
            # A user's own list, newest first.
            models.Index(fields=["user", "id"], name="notif_follow_user"),
        ]

    def __str__(self) -> str:
        what = f"{self.content_type.app_label}.{self.content_type.model} {self.object_id}"
        if self.muted_at is not None:
            return f"{self.user} mutes {what}"
        return f"{self.user} follows {what} ({self.reason})"

    @property
    def is_following(self) -> bool:
        return bool(self.reason)

    @property
    def is_muted(self) -> bool:
        return self.muted_at is not None
