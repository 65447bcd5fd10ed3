"""Sending: who gets a notification, what it may say, and the one insert that writes it."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import F, Func, Q, Subquery
from django.utils import timezone

from ..conf import app_settings
from ..models import (
    Channel,
    Email,
    Follow,
    Level,
    Mute,
    Notification,
    id_list,
    id_list_param,
    is_category,
    object_key,
)
from ..prepared import Prepared, Slot
from ..protocol import object_ref
from ..users import active_users
from . import outbox
from .batch import NotificationBatch
from .per_user import AUDIENCE_USER_ID, audience_sql, insert_from

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def notify(
    recipients: Any,
    title: str,
    body: str = "",
    *,
    level: str = Level.INFO,
    category: str = "",
    url: str = "",
    actor: models.Model | None = None,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
    group_key: str | None = None,
    expires_at: datetime | None = None,
    email: str | None = None,
    exclude: Any = None,
) -> NotificationBatch:
    """Send a notification to each of ``recipients``; return what was written.

    ``recipients`` is a user, a user id, an iterable of users or ids, a QuerySet of users, or an
    auth ``Group`` (its active members). Users who muted this category or level are left out,
    unless the category is in ``UNMUTABLE_CATEGORIES`` (then no mute applies). Raises
    ``ValueError`` on bad input, writing nothing. The rows are written in the caller's
    transaction, in one ``INSERT ... SELECT`` whatever the number of recipients, and pushed to
    their sockets after that transaction commits.

    With ``group_key``, a recipient who has an unread notification with the same key gets it
    replaced by this one (a new row, so a new id that resume and ``after`` cannot miss), which
    carries ``group_count`` (how many it stands for) and ``actors`` (the latest five).

    ``email`` (with ``EMAIL_DIGESTS`` on): ``"digest"`` puts it in the recipient's next digest
    if it is still unseen ``EMAIL_AFTER_SECONDS`` later, ``"now"`` emails it at once, ``"none"``
    keeps it in-app; None decides by ``EMAIL_NOW_LEVELS`` and ``EMAIL_NOW_CATEGORIES``. Users
    who turned email off for it get no email whatever this says.

    ``exclude`` (a user, an id, several, or a QuerySet) is left out: the actor who caused a send
    to ``followers(obj)``. With a ``target``, users who muted that object are left out too.
    """
    prototype = validate_content(
        title,
        body,
        level=level,
        category=category,
        url=url,
        actor=actor,
        target=target,
        data=data,
        group_key=group_key,
        expires_at=expires_at,
        email=email,
    )
    ids = _recipient_ids(recipients)  # None: a QuerySet or a Group, whoever matches
    users = None if ids is not None else _audience(recipients)[0]
    excluded = None if exclude is None else _excluded(exclude)
    using = DEFAULT_DB_ALIAS
    prototype._state.db = using
    folded: list[Notification] = []
    missing: list[int] = []
    with _transaction(using, several=bool(prototype.group_key)):
        source: tuple[str, Sequence[Any]] | None
        if ids is not None and excluded is None and not prototype.group_key:
            # The common send: its statement built once (prepared.py).
            source = _prepared_audience(ids, category=category, level=level, target=target)
        else:
            audience = without_muted(
                users if users is not None else _users(cast(list[int], ids)),
                category=category,
                level=level,
                target=target,
            )
            if excluded is not None:
                audience = audience.exclude(pk__in=excluded)
            if ids is not None and len(ids) > 1:
                audience = _all_exist(audience, ids, len(ids), using)
            folded = _fold(prototype, audience, using) if prototype.group_key else []
            if folded:
                folded_users = [row.recipient_id for row in folded]
                audience = audience.exclude(pk__in=id_list(folded_users, using))
            source = audience_sql(audience, using)
        rows = _insert(prototype, source, using)
        if ids is not None and len(rows) + len(folded) != len(ids):
            # Fewer rows than ids: some are muted, or do not exist (one query, on this path
            # only). Ids of no user made the insert write nothing (_all_exist).
            written = {rid for _, rid in rows} | {row.recipient_id for row in folded}
            missing = _missing([user_id for user_id in ids if user_id not in written])
            if missing and prototype.group_key:
                raise _unknown_users(missing)  # rolls the fold back to the savepoint
    if missing:
        # Raised out of the block: with no savepoint of its own, raising in it would leave the
        # caller's transaction unusable.
        raise _unknown_users(missing)
    batch = NotificationBatch.merge(
        [NotificationBatch.of(prototype, rows)]
        + [NotificationBatch.of(row, [(row.pk, row.recipient_id)]) for row in folded]
    )
    if len(batch):
        outbox.queue_sent(batch, using)
    return batch


def _transaction(using: str, *, several: bool) -> AbstractContextManager[Any]:
    """Where a send writes. Folding writes several statements: a savepoint of its own. One
    statement needs none inside the caller's transaction (two round trips saved, as
    Model.save() does), and no transaction at all in autocommit mode, where it is one (BEGIN and
    COMMIT saved): its rows are committed when it returns, before anything is announced."""
    if several:
        return transaction.atomic(using=using)
    if transaction.get_connection(using).get_autocommit():
        return contextlib.nullcontext()
    return transaction.atomic(using=using, savepoint=False)


def _users(ids: list[int]) -> models.QuerySet:
    return get_user_model()._default_manager.filter(pk__in=id_list(ids))


_COUNT = models.IntegerField()


def _all_exist(users: models.QuerySet, ids: Any, count: int, using: str) -> models.QuerySet:
    """``users``, or no one unless all ``count`` of ``ids`` are users: a send naming an unknown
    id writes nothing, in the same statement, and needs no transaction to take rows back."""
    known = (
        get_user_model()
        ._default_manager.using(using)
        .filter(pk__in=id_list(ids, using))
        .order_by()
        .values(n=Func(F("pk"), function="COUNT", output_field=_COUNT))
    )
    return users.alias(known_users=Subquery(known)).filter(known_users=count)


def _missing(unwritten: list[int]) -> list[int]:
    """Which of these ids are no user's."""
    existing = set(_users(unwritten).values_list("pk", flat=True)) if unwritten else set()
    return [user_id for user_id in unwritten if user_id not in existing]


def _prepared_audience(
    ids: list[int], *, category: str, level: str, target: models.Model | None
) -> tuple[str, tuple[Any, ...]]:
    """What ``without_muted(users with these ids, ...)`` selects, as SQL and parameters, with
    ``_all_exist`` for several ids: built once per shape."""
    shape: dict[str, Any] = {"ids": ids}
    if len(ids) > 1:
        shape["count"] = len(ids)
    if not _unmutable(category):
        shape["level"] = level
        if category:
            shape["category"] = category
        if target is not None and target.pk is not None:
            content_type, object_id = object_key(target)
            shape.update(target_type=content_type.pk, target_id=object_id)
    return _AUDIENCE.sql(DEFAULT_DB_ALIAS, **shape)


def _build_audience(
    using: str,
    *,
    ids: Any,
    count: int | None = None,
    level: str | None = None,
    category: str = "",
    target_type: int | None = None,
    target_id: str = "",
) -> tuple[str, tuple[Any, ...]]:
    users = _users(ids).using(using)
    if count is not None:
        users = _all_exist(users, ids, count, using)
    if level is not None:
        target_key = None if target_type is None else (target_type, target_id)
        users = _without_mutes(users, category=category, level=level, target_key=target_key)
    source = audience_sql(users, using)
    assert source is not None  # an id list is never empty by construction
    return source


_AUDIENCE = Prepared(
    _build_audience,
    ids=Slot([-7_301_011, -7_301_012], id_list_param),
    count=Slot(-7_301_013, lambda value, connection: _COUNT.get_db_prep_value(value, connection)),
    level=Slot("notifications-marker-level"),
    category=Slot("notifications-marker-category"),
    target_type=Slot(-7_301_014),
    target_id=Slot("notifications-marker-target"),
)


def _unknown_users(ids: list[int]) -> ValueError:
    return ValueError(f"recipients: no user with id {', '.join(map(str, ids[:10]))}")


MAX_GROUP_ACTORS = 5


def _fold(prototype: Notification, audience: models.QuerySet, using: str) -> list[Notification]:
    """Replace the audience's unread notifications of the prototype's group: write the new rows
    (count and actors carried over) and delete the old ones. Returns the new rows.

    Four queries whatever the audience: the lock, the unread ones of the group, the new rows,
    the delete.
    """
    _lock_group(prototype.group_key, audience, using)
    previous = list(
        Notification.objects.using(using)
        .live()
        .unread()
        .filter(group_key=prototype.group_key)
        .filter(recipient_id__in=audience.values("pk"))
        .order_by("recipient_id", "-id")
        .values_list("id", "recipient_id", "group_count", "actors")
    )
    if not previous:
        return []
    latest: dict[int, tuple[int, list[Any]]] = {}
    for _, recipient_id, count, actors in previous:
        latest.setdefault(recipient_id, (count, actors))  # the newest, if ever there are several
    new_rows = []
    for recipient_id, (count, actors) in latest.items():
        row = copy.copy(prototype)
        row._state = copy.copy(prototype._state)
        row._state.fields_cache = dict(prototype._state.fields_cache)
        row.recipient_id = recipient_id
        row.group_count = count + 1
        row.actors = (prototype.actors + [a for a in actors if a not in prototype.actors])[
            :MAX_GROUP_ACTORS
        ]
        new_rows.append(row)
    Notification.objects.using(using).bulk_create(new_rows)
    Notification.objects.using(using).filter(
        id__in=id_list([p[0] for p in previous], using)
    ).delete()
    return new_rows


# Concurrent folds of one key lock one of this many buckets of recipients each (PostgreSQL).
GROUP_LOCK_BUCKETS = 32


def _lock_group(group_key: str, audience: models.QuerySet, using: str) -> None:
    """Make a concurrent fold of this group key for any of these recipients wait until this
    transaction ends, so that it reads the rows this one writes (and folds into them) rather
    than the rows this one deletes: two folds that both read the same unread row (or none)
    would each write one, and leave two unread rows with the same count. One statement.

    PostgreSQL: a transaction-level advisory lock per (key, bucket of recipient ids), taken in
    order, so that two folds of the key to disjoint users rarely wait for each other and a fold
    to 100,000 users takes at most ``GROUP_LOCK_BUCKETS`` locks (the lock table is small). The
    fold's read then runs in a snapshot taken after the other transaction committed (READ
    COMMITTED, Django's default).

    SQLite writes one transaction at a time, but Django's transactions there are deferred: they
    read before they take the write lock, and a second fold that read too fails with "database
    is locked" when it writes. Writing first (nothing) takes the lock before the read: a
    concurrent fold then waits for it (the busy timeout) and reads what it committed.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        ids = audience_sql(audience, using, distinct=False)
        if ids is None:  # no one: nothing to lock
            return
        source, params = ids
        bucket = f"audience.{quote(AUDIENCE_USER_ID)} %% {GROUP_LOCK_BUCKETS}"
        sql = (
            "SELECT pg_advisory_xact_lock(%s, buckets.bucket) FROM ("
            f"SELECT DISTINCT {bucket} AS bucket FROM ({source}) AS audience ORDER BY bucket"
            ") AS buckets"
        )
        key = hashlib.blake2b(group_key.encode(), digest_size=4, person=b"notif-fold")
        params = (int.from_bytes(key.digest(), "big", signed=True), *params)
    elif connection.vendor == "sqlite":
        sql, params = f"DELETE FROM {quote(Notification._meta.db_table)} WHERE 0", ()
    else:  # no lock: concurrent folds of one key may leave two unread rows
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


async def anotify(recipients: Any, title: str, body: str = "", **options: Any) -> NotificationBatch:
    """:func:`notify` for async code: runs it in Django's sync thread (and its transaction)."""
    return await sync_to_async(notify, thread_sensitive=True)(recipients, title, body, **options)


def validate_content(
    title: Any,
    body: Any = "",
    *,
    level: Any = Level.INFO,
    category: Any = "",
    url: Any = "",
    actor: Any = None,
    target: Any = None,
    data: Any = None,
    group_key: Any = None,
    expires_at: Any = None,
    email: Any = None,
) -> Notification:
    """Check a notification's content exactly as :func:`notify` does, writing nothing.

    Returns an unsaved ``Notification`` holding the content (no recipient, no id): what each
    recipient would get. Raises ``ValueError`` whose message starts with the argument's name
    (``"url: ..."``), so that a form can put the error on the right field.
    """
    if not isinstance(title, str) or not title.strip():
        raise ValueError("title: a non-empty string is required")
    _check_text("title", title)
    max_title = cast(int, Notification._meta.get_field("title").max_length)
    if len(title) > max_title:
        raise ValueError(f"title: at most {max_title} characters (got {len(title)})")
    if not isinstance(body, str):
        raise ValueError("body: must be a string")
    if len(body) > app_settings.MAX_BODY_CHARS:
        raise ValueError(
            f"body: at most {app_settings.MAX_BODY_CHARS} characters (got {len(body)})"
        )
    _check_text("body", body)
    if level not in Level.values:
        raise ValueError(f"level: must be one of {', '.join(Level.values)} (got {level!r:.40})")
    if isinstance(category, str):
        _check_text("category", category)
    if not is_category(category):
        raise ValueError(
            "category: a slug of at most 64 letters, digits, hyphens and underscores is required"
        )
    validate_url(url)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("data: must be a dict")
    try:
        encoded = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"data: must be JSON-serialisable ({error})") from None
    except RecursionError:
        raise ValueError("data: nested too deeply to be stored as JSON") from None
    if len(encoded.encode()) > app_settings.MAX_DATA_BYTES:
        raise ValueError(f"data: at most {app_settings.MAX_DATA_BYTES} bytes as JSON")
    # A copy (later changes to the caller's dict do not leak in), whose strings are all str.
    data = json.loads(encoded)
    _check_data_text(data)

    if expires_at is not None:
        if not isinstance(expires_at, datetime):
            raise ValueError("expires_at: must be a datetime")
        if timezone.is_naive(expires_at) and settings.USE_TZ:
            raise ValueError("expires_at: must be timezone-aware")
        if expires_at <= timezone.now():
            raise ValueError("expires_at: must be in the future")

    if group_key is not None and (
        not isinstance(group_key, str) or not group_key.strip() or len(group_key) > 200
    ):
        raise ValueError("group_key: a non-empty string of at most 200 characters is required")
    if group_key is not None:
        _check_text("group_key", group_key)

    email_mode, email_due_at = _email_plan(email, level, category)
    prototype = Notification(
        email=email_mode,
        email_due_at=email_due_at,
        expires_at=expires_at,
        group_key=group_key or "",
        title=title,
        body=body,
        level=level,
        category=category,
        url=url,
        data=data,
        created_at=timezone.now(),
    )
    for role, obj in (("actor", actor), ("target", target)):
        if obj is None:
            continue
        if not isinstance(obj, models.Model) or obj.pk is None:
            raise ValueError(f"{role}: must be a saved model instance (got {obj!r})")
        setattr(prototype, role, obj)
    if prototype.group_key and actor is not None:
        # The actor as the JSON shows it, kept with the row: "alice and 4 others" needs no query.
        content_type = ContentType.objects.get_for_model(actor, for_concrete_model=False)
        prototype.actors = [object_ref(content_type.pk, str(actor.pk), actor)]
    return prototype


EMAIL_CHOICES = ("none", "digest", "now")


def _email_plan(email: Any, level: str, category: str) -> tuple[str, datetime | None]:
    """How a notification goes out by email, and from when."""
    if email is not None and email not in EMAIL_CHOICES:
        raise ValueError(f"email: must be None or one of {', '.join(EMAIL_CHOICES)}")
    if not app_settings.EMAIL_DIGESTS or email == "none":
        return Email.NONE, None
    now = timezone.now()
    if email is None:
        at_once = (
            level in app_settings.EMAIL_NOW_LEVELS
            or bool(category)
            and category in app_settings.EMAIL_NOW_CATEGORIES
        )
        email = "now" if at_once else "digest"
    if email == "now":
        return Email.NOW, now
    return Email.DIGEST, now + app_settings.EMAIL_AFTER


# What no database stores as text (PostgreSQL refuses NUL, and UTF-8 has no encoding for half a
# UTF-16 pair), so what notify() refuses everywhere rather than per database.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _check_text(name: str, value: str, where: str = "") -> None:
    found = _UNSTORABLE.search(value)
    if found is None:
        return
    what = "NUL bytes" if found.group() == "\x00" else "lone surrogates (half a UTF-16 pair)"
    raise ValueError(f"{name}: must not contain {what}{where}")


def _check_data_text(data: dict[str, Any]) -> None:
    """Every string in ``data`` (a dict as json.loads() makes it), keys included, is storable."""
    pending: list[tuple[Any, str]] = [(data, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            _check_text("data", value, f" (at {path or 'the top'})")
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text("data", key, f" (in a key at {path or 'the top'})")
                pending.append((item, f"{path}[{key!r:.40}]"))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]") for index, item in enumerate(value))


def validate_url(url: Any) -> None:
    """Raise ``ValueError`` unless ``url`` is one ``notify()`` accepts ("" included)."""
    if not isinstance(url, str):
        raise ValueError("url: must be a string")
    if not url:
        return
    _check_text("url", url)
    max_url = cast(int, Notification._meta.get_field("url").max_length)
    if len(url) > max_url:
        raise ValueError(f"url: at most {max_url} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError("url: must not contain whitespace or control characters")
    scheme = _SCHEME.match(url)
    if scheme:
        if scheme.group(1).lower() not in ("http", "https") or not url.split(":", 1)[1].startswith(
            "//"
        ):
            raise ValueError("url: only http(s) URLs or site-relative paths are allowed")
        return
    # "//host" and "/\host" are taken by browsers as another site: an open redirect.
    if not url.startswith("/") or url.startswith(("//", "/\\")):
        raise ValueError(
            "url: only http(s) URLs or site-relative paths starting with / are allowed"
        )


def audience(
    recipients: Any,
    *,
    category: str = "",
    level: str = Level.INFO,
    target: models.Model | None = None,
    exclude: Any = None,
) -> models.QuerySet:
    """The users a notify() with these arguments would write to: the recipients without those
    who muted the category, the level or the target, and without ``exclude``. Raises
    ``ValueError`` as notify() does."""
    users, _ = _audience(recipients)
    users = without_muted(users, category=category, level=level, target=target)
    return users if exclude is None else users.exclude(pk__in=_excluded(exclude))


def recipient_users(recipients: Any) -> models.QuerySet:
    """What notify() takes as ``recipients`` (a user, ids, a QuerySet, a ``Group``...) as a
    QuerySet of users; ``ValueError`` as notify() raises it."""
    return _audience(recipients)[0]


def without_muted(
    users: models.QuerySet,
    *,
    category: str,
    level: str,
    target: models.Model | None = None,
) -> models.QuerySet:
    """``users`` less those who muted ``category`` or ``level`` in-app, or the ``target``
    object: a NOT IN on the mutes' index (and the follows' one), inside the same query, so a
    send stays one statement however large the audience.

    A category in ``UNMUTABLE_CATEGORIES`` reaches everyone: neither a mute of that category
    (recorded before it became unmutable), nor of the level, nor of the object silences it."""
    if _unmutable(category):
        return users
    target_key = None
    if target is not None and target.pk is not None:
        content_type, object_id = object_key(target)
        target_key = (content_type.pk, object_id)
    return _without_mutes(users, category=category, level=level, target_key=target_key)


def _unmutable(category: str) -> bool:
    return bool(category) and category in app_settings.UNMUTABLE_CATEGORIES


def _without_mutes(
    users: models.QuerySet, *, category: str, level: str, target_key: tuple[int, str] | None
) -> models.QuerySet:
    muted = Q(kind=Mute.Kind.LEVEL, value=level)
    if category:
        muted |= Q(kind=Mute.Kind.CATEGORY, value=category)
    in_app = Mute.objects.filter(muted, channel=Channel.IN_APP)
    users = users.exclude(pk__in=in_app.values("user_id"))
    if target_key is not None:
        muting = Follow.objects.of_key(*target_key).muted()
        users = users.exclude(pk__in=muting.values("user_id"))
    return users


def _excluded(exclude: Any) -> models.QuerySet:
    """``exclude`` as a subquery of user ids; ids of no user exclude no one."""
    try:
        return _audience(exclude)[0].values("pk")
    except ValueError as error:
        raise ValueError(str(error).replace("recipients:", "exclude:", 1)) from None


def _audience(recipients: Any) -> tuple[models.QuerySet, list[int] | None]:
    """The recipients as a QuerySet of user ids to insert from, and the ids that must all exist
    (None when the caller gave a QuerySet or a Group, whose members are whoever matches)."""
    ids = _recipient_ids(recipients)
    if ids is not None:
        return _users(ids), ids
    user_model = get_user_model()
    if isinstance(recipients, Group):
        if recipients.pk is None:
            raise ValueError("recipients: the group is not saved")
        return active_users(user_model._default_manager.filter(groups=recipients)), None
    if recipients.model is not user_model:
        raise ValueError(
            f"recipients: a QuerySet of {user_model._meta.label} is required "
            f"(got one of {recipients.model._meta.label})"
        )
    return recipients, None


def _recipient_ids(recipients: Any) -> list[int] | None:
    """The ids of the users named one by one; None for a Group or a QuerySet."""
    if isinstance(recipients, Group | models.QuerySet):
        return None
    user_model = get_user_model()
    if isinstance(recipients, user_model | int | str) or not isinstance(recipients, Iterable):
        recipients = [recipients]
    return list(dict.fromkeys(user_id_of(item, user_model) for item in recipients))


def user_id_of(item: Any, user_model: type[models.Model], name: str = "recipients") -> int:
    """The id of a user given as a saved user or a positive id; ``ValueError`` naming the
    argument ``name`` otherwise."""
    if isinstance(item, user_model):
        if item.pk is None:
            raise ValueError(f"{name}: a user that is not saved has no id")
        return item.pk
    if isinstance(item, int) and not isinstance(item, bool) and item > 0:
        return item
    raise ValueError(f"{name}: expected users or positive user ids, got {item!r:.60}")


_COLUMNS = (
    "title",
    "body",
    "level",
    "category",
    "url",
    "actor_content_type",
    "actor_object_id",
    "target_content_type",
    "target_object_id",
    "data",
    "created_at",
    "expires_at",
    "group_key",
    "group_count",
    "actors",
    "email",
    "email_due_at",
)


def _insert(
    prototype: Notification, source: tuple[str, Sequence[Any]] | None, using: str
) -> list[tuple[int, int]]:
    """Write one row per user the ``source`` SQL selects (``audience_sql``'s), in one
    statement; return (id, recipient id) pairs."""
    if source is None:  # no one, by construction
        return []
    for role in ("actor", "target"):
        obj = getattr(prototype, role)
        if obj is not None:
            content_type = ContentType.objects.db_manager(using).get_for_model(
                obj, for_concrete_model=False
            )
            setattr(prototype, f"{role}_content_type_id", content_type.pk)
            setattr(prototype, f"{role}_object_id", str(obj.pk))
    values = {name: getattr(prototype, attname) for name, attname in _attnames()}
    rows = insert_from(
        Notification, "recipient", values, source, using, returning=("id", "recipient_id")
    )
    return [(row[0], row[1]) for row in rows]


@functools.cache
def _attnames() -> list[tuple[str, str]]:
    fields = cast(
        "list[models.Field[Any, Any]]", [Notification._meta.get_field(n) for n in _COLUMNS]
    )
    return [(field.name, field.attname) for field in fields]
