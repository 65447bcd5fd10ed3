"""Following: who follows which object, and who muted it.

A project records who cares about an object (``follow``: its author, whoever comments on it)
and sends to them with ``notify(followers(obj), ..., target=obj, exclude=actor)``, which stays
one ``INSERT ... SELECT`` however many follow it. Whoever muted the object is left out of every
send whose target it is (``without_muted``), so a mute needs no help from the sender.

Every function here is idempotent: following twice, or unmuting what is not muted, changes
nothing and raises nothing.
"""

from __future__ import annotations

from typing import Any, cast

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models.functions import Cast
from django.utils import timezone

from ..models import Follow, is_category, object_key
from ..users import active_users
from .per_user import insert_per_user
from .sending import recipient_users, user_id_of


def follow(user: Any, obj: models.Model, *, reason: str = "manual") -> Follow:
    """Make ``user`` (a user or a user id) follow ``obj``; return the row.

    Following again keeps the first reason (the author stays the author when they comment
    later) and leaves a mute alone: a project that auto-follows on its users' events never
    undoes a mute they chose. Raises ``ValueError`` on bad input.
    """
    user_id = _user_id(user)
    _check_reason(reason)
    content_type, object_id = _object_key(obj)
    # get_or_create() makes the insert safe from a concurrent one; the update is one statement.
    row, created = Follow.objects.get_or_create(
        user_id=user_id,
        content_type=content_type,
        object_id=object_id,
        defaults={"reason": reason},
    )
    if not created and not row.reason:
        Follow.objects.filter(pk=row.pk, reason="").update(reason=reason)
        row.reason = reason
    return row


def follow_all(users: Any, obj: models.Model, *, reason: str) -> None:
    """:func:`follow` for many users at once (users, ids, a QuerySet or a ``Group``; ids of no
    user are skipped), in two statements however many: what a project calls on its own events
    ("everyone mentioned follows the issue")."""
    _check_reason(reason)
    content_type, object_id = _object_key(obj)
    audience = recipient_users(users)
    with transaction.atomic():
        # Who muted it without following it: now following, still muted.
        Follow.objects.filter(
            content_type=content_type,
            object_id=object_id,
            reason="",
            user_id__in=audience.order_by().values("pk"),
        ).update(reason=reason)
        values = {
            "content_type": content_type.pk,
            "object_id": object_id,
            "reason": reason,
            "created_at": timezone.now(),
        }
        insert_per_user(Follow, "user", values, audience, DEFAULT_DB_ALIAS, skip_existing=True)


def unfollow(user: Any, obj: models.Model) -> bool:
    """Stop ``user`` following ``obj`` (a mute stays); False when they did not follow it."""
    row = _row(user, obj)
    if row is None or not row.is_following:
        return False
    change_follow(row, following=False)
    return True


def mute_object(user: Any, obj: models.Model) -> Follow:
    """Keep every notification whose target is ``obj`` from ``user``, whatever its category
    (but those of ``UNMUTABLE_CATEGORIES``), until :func:`unmute_object`; return the row."""
    user_id = _user_id(user)
    content_type, object_id = _object_key(obj)
    now = timezone.now()
    row, created = Follow.objects.get_or_create(
        user_id=user_id,
        content_type=content_type,
        object_id=object_id,
        defaults={"muted_at": now},
    )
    if not created and row.muted_at is None:
        row = cast(Follow, change_follow(row, muted=True))
    return row


def unmute_object(user: Any, obj: models.Model) -> bool:
    """Undo :func:`mute_object` (following, if any, resumes); False when it was not muted."""
    row = _row(user, obj)
    if row is None or not row.is_muted:
        return False
    change_follow(row, muted=False)
    return True


def followers(obj: models.Model) -> models.QuerySet:
    """The active users who follow ``obj`` and have not muted it, as a lazy QuerySet: given to
    ``notify()`` it becomes a subquery of its one INSERT, whatever their number."""
    following = Follow.objects.of(_saved(obj)).following().values("user_id")
    return active_users(get_user_model()._default_manager.filter(pk__in=following))


async def afollow(user: Any, obj: models.Model, *, reason: str = "manual") -> Follow:
    return await sync_to_async(follow, thread_sensitive=True)(user, obj, reason=reason)


async def afollow_all(users: Any, obj: models.Model, *, reason: str) -> None:
    await sync_to_async(follow_all, thread_sensitive=True)(users, obj, reason=reason)


async def aunfollow(user: Any, obj: models.Model) -> bool:
    return await sync_to_async(unfollow, thread_sensitive=True)(user, obj)


async def amute_object(user: Any, obj: models.Model) -> Follow:
    return await sync_to_async(mute_object, thread_sensitive=True)(user, obj)


async def aunmute_object(user: Any, obj: models.Model) -> bool:
    return await sync_to_async(unmute_object, thread_sensitive=True)(user, obj)


def _user_id(user: Any) -> Any:
    return user_id_of(user, get_user_model(), "user")


def _row(user: Any, obj: models.Model) -> Follow | None:
    return Follow.objects.of(_saved(obj)).filter(user_id=_user_id(user)).first()


def _saved(obj: Any) -> models.Model:
    if not isinstance(obj, models.Model) or obj.pk is None:
        raise ValueError(f"obj: a saved model instance is required (got {obj!r:.60})")
    return obj


def _object_key(obj: Any) -> tuple[ContentType, str]:
    content_type, object_id = object_key(_saved(obj))
    if len(object_id) > 255:
        raise ValueError("obj: its primary key is longer than 255 characters as text")
    return content_type, object_id


def _check_reason(reason: Any) -> None:
    if not reason or not is_category(reason):
        raise ValueError(
            "reason: a slug of at most 64 letters, digits, hyphens and underscores is required"
        )


def change_follow(
    row: Follow, *, following: bool | None = None, muted: bool | None = None
) -> Follow | None:
    """Stop following (``following=False``), mute or unmute through one of a user's rows, as
    the REST API does by id; None when the row is left with nothing to say (it is deleted).
    Following again needs the object: :func:`follow`."""
    if following is True:
        raise ValueError("following: only False; follow() starts following an object")
    reason = "" if following is False else row.reason
    muted_at = row.muted_at
    if muted is True and muted_at is None:
        muted_at = timezone.now()
    elif muted is False:
        muted_at = None
    rows = Follow.objects.filter(pk=row.pk)
    if not reason and muted_at is None:
        rows.delete()
        return None
    if (reason, muted_at) != (row.reason, row.muted_at):
        rows.update(reason=reason, muted_at=muted_at)
        row.reason, row.muted_at = reason, muted_at
    return row


def orphaned_follows() -> models.QuerySet:
    """The rows whose object is gone (a generic relation does not cascade): what
    ``prune_notifications`` deletes. One query per followed model, and one for the models."""
    orphans = Follow.objects.none()
    type_ids = Follow.objects.order_by().values_list("content_type_id", flat=True).distinct()
    for content_type in ContentType.objects.filter(pk__in=list(type_ids)):
        model = content_type.model_class()
        rows = Follow.objects.filter(content_type=content_type)
        if model is not None:
            keys = model._base_manager.annotate(key=Cast("pk", models.CharField())).values("key")
            rows = rows.exclude(object_id__in=keys)
        orphans |= rows
    return orphans
