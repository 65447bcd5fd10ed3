"""``push-subscriptions/``: the browsers a user subscribed to Web Push (docs/push.md).

``POST`` takes what ``PushSubscription.toJSON()`` gives; ``DELETE`` on the collection takes
``{"endpoint"}`` (what the browser knows), on an item its id. Each user sees and removes only
their own. With ``WEB_PUSH`` off every request is a 404 saying so.
"""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from ..conf import app_settings
from ..models import PushSubscription
from ..protocol import IdField
from ..push import subscriptions
from .parsers import JSONParser
from .views import Conventions, credential_of

OFF = "Web Push is not enabled on this site."


class PushSubscriptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PushSubscription
        fields = [
            "id",
            "endpoint",
            "user_agent",
            "created_at",
            "seen_at",
            "expires_at",
            "pushed_at",
        ]
        read_only_fields = fields


class PushKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(help_text="the browser's P-256 public key, base64url")
    auth = serializers.CharField(help_text="the 16-byte authentication secret, base64url")


class SubscribeSerializer(serializers.Serializer):
    """For the schema only: push/subscriptions.py checks the body (one set of rules)."""

    endpoint = serializers.URLField(help_text="https, on a push service this site sends to")
    expirationTime = serializers.IntegerField(  # noqa: N815  (the browser's own name)
        allow_null=True, required=False, help_text="milliseconds since 1970, or null"
    )
    keys = PushKeysSerializer()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


OFF_RESPONSE = OpenApiResponse(DetailSerializer, description="Web Push is off on this site")
NOT_FOUND = OpenApiResponse(
    DetailSerializer, description="no such subscription of the user, or Web Push is off"
)


class Enabled(Conventions):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and throttles first
        # A method the view has not is a 405 either way (dispatch answers it after this).
        if not app_settings.WEB_PUSH and hasattr(self, cast(str, request.method).lower()):
            raise NotFound(OFF)


class PushSubscriptionsView(Enabled):
    parser_classes = [JSONParser]  # what toJSON() gives; a form cannot carry the nested keys

    @extend_schema(responses={200: PushSubscriptionSerializer(many=True), 404: OFF_RESPONSE})
    def get(self, request: Request) -> Response:
        """The user's subscribed browsers, the most recently seen first."""
        mine = PushSubscription.objects.filter(user_id=cast(int, request.user.pk))
        rows = mine.order_by("-seen_at", "-id")
        return Response(PushSubscriptionSerializer(rows, many=True).data)

    @extend_schema(
        request=SubscribeSerializer,
        responses={
            201: PushSubscriptionSerializer,
            200: OpenApiResponse(PushSubscriptionSerializer, description="already subscribed"),
            404: OFF_RESPONSE,
        },
    )
    def post(self, request: Request) -> Response:
        """Subscribe this browser (201), or refresh it (200). Past ``WEB_PUSH_MAX_SUBSCRIPTIONS``
        the user's least recently seen browser makes room."""
        try:
            subscription = subscriptions.clean(request.data)
        except ValueError as error:
            raise _invalid(error) from None
        user_agent = request.META.get("HTTP_USER_AGENT", "")
        credential = credential_of(request)
        pk, created = subscriptions.save(
            request.user,
            subscription,
            _printable(user_agent),
            credential.digest if credential and credential.kind == "session" else "",
        )
        row = PushSubscription.objects.get(pk=pk)
        return Response(
            PushSubscriptionSerializer(row).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "endpoint",
                OpenApiTypes.STR,
                required=True,
                description="the subscription's endpoint; or, instead, a JSON body "
                '`{"endpoint": ...}` (what the widget sends)',
            )
        ],
        responses={204: None, 400: OpenApiResponse(description="no endpoint"), 404: NOT_FOUND},
    )
    def delete(self, request: Request) -> Response:
        """Unsubscribe the browser with this endpoint; 404 if the user has none."""
        endpoint = request.query_params.get("endpoint")
        if endpoint is None and isinstance(request.data, dict):
            endpoint = request.data.get("endpoint")
        if not isinstance(endpoint, str):
            raise ValidationError({"endpoint": ["This field is required."]})
        if not subscriptions.remove(request.user, endpoint=endpoint):
            raise NotFound("No such push subscription.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class PushSubscriptionView(Enabled):
    @extend_schema(responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, pk: str) -> Response:
        """Unsubscribe one of the user's browsers by id."""
        try:
            subscription_id = IdField().run_validation(pk)
        except ValidationError:
            raise NotFound("No such push subscription.") from None
        if not subscriptions.remove(request.user, pk=subscription_id):
            raise NotFound("No such push subscription.")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _invalid(error: ValueError) -> ValidationError:
    field, _, message = str(error).partition(": ")
    return ValidationError({field: [message]})


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())
