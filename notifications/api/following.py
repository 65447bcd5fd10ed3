"""``subscriptions/``: the objects a user follows or muted (docs/following.md).

Following over REST is for the models of ``FOLLOWABLE_MODELS`` only, and only where
``FOLLOW_PERMISSION`` allows it: whoever follows an object hears of it, so following must not
reach what a user may not see. Muting is also allowed for the target of one of the user's own
notifications (they have heard of it already: the widget's "Mute this thread"). Unfollowing and
unmuting one's own rows is always allowed. Objects that do not exist and objects a user may not
follow get the same 404, so that the answer tells nothing of what exists.
"""

from __future__ import annotations

import re
from typing import Any, cast

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.core.validators import RegexValidator
from django.db import models
from django.http import Http404
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from .. import services
from ..conf import app_settings
from ..models import (
    REASON_MAX_LENGTH,
    Follow,
    FollowQuerySet,
    Notification,
    is_primary_key,
    object_key,
)
from ..protocol import ObjectRefSerializer, object_ref
from .pagination import NotificationCursorPagination
from .parsers import JSONParser
from .views import Conventions

NO_OBJECT = "No such object, or not one you may follow."
NO_ROW = "No such subscription."
_TYPE = re.compile(r"^[a-z0-9_]{1,100}\.[a-z0-9_]{1,100}\Z")


class TextField(serializers.CharField):
    """Text only: DRF's CharField would take the number 3 for "3", which the schema does not
    say."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ObjectKeySerializer(serializers.Serializer):
    type = TextField(
        max_length=201,
        trim_whitespace=False,
        validators=[RegexValidator(_TYPE, "An app_label.model in lower case is required.")],
        help_text="app_label.model of the object, in lower case",
    )
    id = TextField(
        min_length=1, max_length=255, trim_whitespace=False, help_text="its primary key, as text"
    )


class ObjectBodySerializer(serializers.Serializer):
    object = ObjectKeySerializer()


class FollowBodySerializer(ObjectBodySerializer):
    reason = serializers.SlugField(
        max_length=REASON_MAX_LENGTH,
        required=False,
        default="manual",
        help_text="why: manual (the default), author, mentioned, participated, or the site's own",
    )


class ChangeSerializer(serializers.Serializer):
    following = serializers.BooleanField(
        required=False, help_text="true: follow the object (if you may); false: stop following"
    )
    muted = serializers.BooleanField(required=False, help_text="mute or unmute the object")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise ValidationError("Give `following`, `muted` or both.")
        return attrs


class FiltersSerializer(serializers.Serializer):
    muted = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: only muted objects"
    )
    following = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: only followed objects"
    )
    # Blank is allowed: DRF would otherwise take "?type=" for no type at all.
    type = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=201,
        help_text="with `id`: the row of one object, if any",
    )
    id = serializers.CharField(required=False, allow_blank=True, max_length=255)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("type" in attrs) != ("id" in attrs):
            raise ValidationError("Give both `type` and `id`, or neither.")
        return attrs


class FollowSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    following = serializers.BooleanField(source="is_following", read_only=True)
    muted = serializers.BooleanField(source="is_muted", read_only=True)

    class Meta:
        model = Follow
        fields = ["id", "object", "following", "reason", "muted", "created_at", "muted_at"]
        read_only_fields = fields

    @extend_schema_field(ObjectRefSerializer(allow_null=True))
    def get_object(self, row: Follow) -> dict[str, str] | None:
        return object_ref(row.content_type_id, row.object_id, row.target)


class SubscriptionPagination(NotificationCursorPagination):
    """Newest first, by id, like the notifications list."""


def may_follow(user: Any, obj: models.Model) -> bool:
    """Whether ``user`` may follow ``obj`` over REST: its model is in ``FOLLOWABLE_MODELS`` and
    ``FOLLOW_PERMISSION`` (if set) says yes."""
    if obj._meta.label_lower not in app_settings.FOLLOWABLE_MODELS:
        return False
    hook = app_settings.FOLLOW_PERMISSION
    return bool(import_string(hook)(user, obj)) if hook else True


ITEM = OpenApiResponse(FollowSerializer)
GONE = OpenApiResponse(description="the row is gone: neither following nor muting is left (PATCH)")
NOT_FOUND = OpenApiResponse(description=NO_OBJECT)


class SubscriptionViewSet(
    Conventions,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = FollowSerializer
    pagination_class = SubscriptionPagination
    parser_classes = [JSONParser]  # a form cannot carry the nested object
    lookup_value_regex = "[^/]+"  # any id is a JSON 404, never Django's HTML one

    def get_queryset(self) -> FollowQuerySet:
        mine = Follow.objects.filter(user_id=_user_id(self.request))
        return mine.select_related("content_type").prefetch_related("target")

    def get_object(self) -> Follow:
        if self.lookup_field not in self.kwargs:  # OPTIONS on the list
            raise Http404
        if not is_primary_key(Follow, self.kwargs[self.lookup_field]):
            raise NotFound(NO_ROW)
        try:
            return self.get_queryset().get(pk=self.kwargs[self.lookup_field])
        except Follow.DoesNotExist:
            raise NotFound(NO_ROW) from None

    @extend_schema(parameters=[FiltersSerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The objects the user follows or muted, newest first."""
        filters = FiltersSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        options = filters.validated_data
        rows = self.get_queryset()
        rows = rows.in_state(following=options["following"], muted=options["muted"])
        if "type" in options:
            key = _key(options["type"], options["id"])
            rows = rows.filter(content_type=key[0], object_id=key[1]) if key else rows.none()
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(FollowSerializer(page, many=True).data)

    @extend_schema(
        request=FollowBodySerializer,
        responses={201: ITEM, 200: OpenApiResponse(FollowSerializer), 404: NOT_FOUND},
    )
    def create(self, request: Request) -> Response:
        """Follow an object (201; 200 if already followed). Following by hand also ends a
        mute of it."""
        body = FollowBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        obj = self._followable(body.validated_data["object"])
        existing = Follow.objects.of(obj).filter(user_id=_user_id(request)).first()
        row = services.follow(request.user, obj, reason=body.validated_data["reason"])
        if row.muted_at is not None:
            row = cast(Follow, services.change_follow(row, muted=False))
        created = existing is None or not existing.reason
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return self._answer(row, code, obj)

    @extend_schema(
        request=ChangeSerializer,
        responses={200: ITEM, 204: GONE, 404: OpenApiResponse(description=NO_ROW)},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Follow or stop following, mute or unmute, through one of the user's rows."""
        row = self.get_object()
        body = ChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        following, muted = body.validated_data.get("following"), body.validated_data.get("muted")
        if following is True:
            obj = row.target
            if obj is None or not may_follow(request.user, obj):
                raise NotFound(NO_OBJECT)
            row = services.follow(request.user, obj)
            row.target = obj
            following = None
        changed = services.change_follow(row, following=following, muted=muted)
        if changed is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._answer(changed, status.HTTP_200_OK)

    @extend_schema(responses={204: None, 404: OpenApiResponse(description=NO_ROW)})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Neither follow nor mute the object any more."""
        services.change_follow(self.get_object(), following=False, muted=False)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=ObjectBodySerializer,
        responses={201: ITEM, 200: OpenApiResponse(FollowSerializer), 404: NOT_FOUND},
    )
    @action(detail=False, methods=["post"])
    def mute(self, request: Request) -> Response:
        """Mute an object: no notification about it reaches the user (but those of
        ``UNMUTABLE_CATEGORIES``). 201 for a new row, 200 otherwise."""
        body = ObjectBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        obj, existing = self._mutable(body.validated_data["object"])
        row = services.mute_object(request.user, obj)
        code = status.HTTP_200_OK if existing else status.HTTP_201_CREATED
        return self._answer(row, code, obj)

    @extend_schema(request=ObjectBodySerializer, responses={204: None})
    @action(detail=False, methods=["post"])
    def unmute(self, request: Request) -> Response:
        """Unmute an object (following it, if the user did, resumes). Idempotent: 204 whether
        or not it was muted, or exists."""
        body = ObjectBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reference = body.validated_data["object"]
        key = _key(reference["type"], reference["id"])
        if key is not None:
            rows = Follow.objects.filter(
                user_id=_user_id(request), content_type=key[0], object_id=key[1]
            )
            row = rows.muted().first()
            if row is not None:
                services.change_follow(row, muted=False)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- helpers ----------------------------------------------------------------------------

    def _answer(self, row: Follow, code: int, obj: models.Model | None = None) -> Response:
        if obj is not None:
            row.target = obj  # shown as the list shows it, without reading it again
        return Response(FollowSerializer(row).data, status=code)

    def _followable(self, reference: dict[str, str]) -> models.Model:
        obj = _lookup(reference)
        if obj is None or not may_follow(self.request.user, obj):
            raise NotFound(NO_OBJECT)
        return obj

    def _mutable(self, reference: dict[str, str]) -> tuple[models.Model, bool]:
        """The object, and whether the user has a row for it already."""
        obj = _lookup(reference)
        if obj is None:
            raise NotFound(NO_OBJECT)
        user = self.request.user
        existing = Follow.objects.of(obj).filter(user_id=_user_id(self.request)).exists()
        if existing or may_follow(user, obj):
            return obj, existing
        content_type, object_id = object_key(obj)
        heard_of = Notification.objects.filter(
            recipient_id=_user_id(self.request),
            target_content_type=content_type,
            target_object_id=object_id,
        ).exists()
        if not heard_of:
            raise NotFound(NO_OBJECT)
        return obj, False


def _user_id(request: Request) -> int:
    return cast(int, request.user.pk)  # signed in: IsAuthenticated let the request through


def _key(type_label: str, object_id: str) -> tuple[ContentType, str] | None:
    """The content type and id of ``type`` and ``id`` as the wire names an object; None when no
    installed model has that name or the id cannot be one of its keys."""
    app_label, _, model_name = type_label.partition(".")
    try:
        content_type = ContentType.objects.get_by_natural_key(app_label, model_name)
    except ContentType.DoesNotExist:
        return None
    model = content_type.model_class()
    if model is None or not is_primary_key(model, object_id):
        return None
    # As a follow stores it (str(obj.pk)): "007" names the object 7 in every route alike.
    return content_type, str(model._meta.pk.to_python(object_id))


def _lookup(reference: dict[str, str]) -> models.Model | None:
    key = _key(reference["type"], reference["id"])
    if key is None:
        return None
    content_type, object_id = key
    model = cast(type[models.Model], content_type.model_class())
    try:
        return model._default_manager.get(pk=object_id)
    except (ObjectDoesNotExist, ValueError, TypeError):
        return None
