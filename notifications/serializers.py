"""The one shape of a notification, for the REST API and the WebSocket alike.

The declared fields document the shape (and feed the OpenAPI schema); ``to_representation`` builds
the same dict directly, because the push path shapes every row of a large fan-out and DRF's
field-by-field machinery would dominate it. Everything it returns is JSON-native.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.contrib.contenttypes.models import ContentType
from rest_framework import serializers

from .models import Notification


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def object_ref(content_type_id: int | None, object_id: str, obj: Any) -> dict[str, str] | None:
    if content_type_id is None:
        return None
    try:
        content_type = ContentType.objects.get_for_id(content_type_id)  # cached after the first
    except ContentType.DoesNotExist:  # deleted behind the ORM's back: nothing left to name
        return None
    return {
        "type": f"{content_type.app_label}.{content_type.model}",
        "id": str(object_id),
        "display": "" if obj is None else str(obj),
    }


class ObjectRefSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="app_label.model of the object")
    id = serializers.CharField(help_text="its primary key, as text")
    display = serializers.CharField(help_text="str() of the object, empty if it is gone")


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True)
    body = serializers.CharField(read_only=True)
    level = serializers.ChoiceField(
        choices=cast(Any, Notification._meta.get_field("level").choices)
    )
    category = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True)
    actor = ObjectRefSerializer(read_only=True, allow_null=True)
    target = ObjectRefSerializer(read_only=True, allow_null=True)
    # The serializer's metaclass moves declared fields aside: .data stays DRF's property.
    data = serializers.DictField(read_only=True)  # type: ignore[assignment]
    created_at = serializers.DateTimeField(read_only=True)
    read_at = serializers.DateTimeField(read_only=True, allow_null=True)
    seen_at = serializers.DateTimeField(read_only=True, allow_null=True)
    archived_at = serializers.DateTimeField(read_only=True, allow_null=True)
    group_key = serializers.CharField(read_only=True, help_text="empty unless grouped")
    group_count = serializers.IntegerField(
        read_only=True, help_text="how many notifications this one stands for (1 unless grouped)"
    )
    actors = ObjectRefSerializer(
        many=True, read_only=True, help_text="grouped: the latest five actors, newest first"
    )

    def to_representation(self, instance: Notification) -> dict[str, Any]:
        return serialize(instance)


def serialize(notification: Notification) -> dict[str, Any]:
    """A notification as the contract's JSON object (a plain dict of JSON-native values)."""
    return {
        "id": notification.pk,
        "title": notification.title,
        "body": notification.body,
        "level": notification.level,
        "category": notification.category,
        "url": notification.url,
        "actor": object_ref(
            notification.actor_content_type_id, notification.actor_object_id, notification.actor
        ),
        "target": object_ref(
            notification.target_content_type_id, notification.target_object_id, notification.target
        ),
        "data": notification.data,
        "created_at": _timestamp(notification.created_at),
        "read_at": _timestamp(notification.read_at),
        "seen_at": _timestamp(notification.seen_at),
        "archived_at": _timestamp(notification.archived_at),
        "group_key": notification.group_key,
        "group_count": notification.group_count,
        "actors": notification.actors,
    }
