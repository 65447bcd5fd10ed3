"""The REST API: an adapter from HTTP to the services and QuerySets, and the polling fallback
(whose 304 is answered before DRF runs: polling.py).

Every view sees only the requesting user's notifications (``get_queryset``), so another user's id
is a 404 by construction. State changes go through ``notifications.services``, the same code the
WebSocket uses, so every open socket of the user hears of them.
"""

from __future__ import annotations

from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from .. import services
from ..conf import app_settings
from ..models import Notification, NotificationQuerySet
from ..protocol import NotificationSerializer
from ..realtime import tickets
from ..realtime.credentials import Credential
from . import polling, throttling
from .pagination import NotificationCursorPagination
from .parsers import JSONParser, api_exception, parser_classes
from .schema import NotificationsAutoSchema
from .serializers import (
    BulkChangeSerializer,
    CountsSerializer,
    ListFiltersSerializer,
    PreferencesSerializer,
    RequiredUpToSerializer,
    TicketSerializer,
    UpToSerializer,
)


def authentication_classes() -> list[type]:
    """DRF's own setting when the project sets one; otherwise tokens (when
    ``rest_framework.authtoken`` is installed) and sessions (with CSRF). Tokens come first so
    that a missing or bad credential is a 401 with ``WWW-Authenticate``."""
    if "DEFAULT_AUTHENTICATION_CLASSES" in getattr(settings, "REST_FRAMEWORK", {}):
        return list(cast("list[type]", api_settings.DEFAULT_AUTHENTICATION_CLASSES))
    classes: list[type] = []
    if apps.is_installed("rest_framework.authtoken"):
        classes.append(TokenAuthentication)
    classes.append(SessionAuthentication)
    return classes


class Conventions(APIView):
    """What every view of the API shares: who may call it, how it is rate-limited, how bodies
    are parsed, and that every error is JSON."""

    permission_classes = [IsAuthenticated]
    schema = NotificationsAutoSchema()  # documents the 429 of tickets and writes
    parser_classes = parser_classes()

    def get_authenticators(self) -> list[Any]:
        return [auth() for auth in authentication_classes()]

    def get_throttles(self) -> list[Any]:
        # The project's own DEFAULT_THROTTLE_CLASSES, and ours on tickets and writes.
        throttles = super().get_throttles()
        scope = throttling.scope_of(getattr(self, "action", None), self.request.method)
        if scope is not None:
            throttles.append(throttling.NotificationsThrottle(scope))
        return throttles

    def handle_exception(self, exc: Exception) -> Response:
        return super().handle_exception(api_exception(exc))


class NotificationViewSet(
    Conventions,
    polling.FastPath,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = NotificationSerializer
    pagination_class = NotificationCursorPagination
    # Any id reaches get_object(), so that "0.5" is a JSON 404 like every other unknown id,
    # rather than Django's HTML page for a URL that matches no route.
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Notification:
        # OPTIONS on a list-level action that accepts PUT (preferences) makes DRF's metadata
        # probe get_object() with no id: that is "no such object", not a server error.
        if self.lookup_field not in self.kwargs:
            raise Http404
        return super().get_object()

    def get_queryset(self) -> NotificationQuerySet:
        return Notification.objects.for_user(self.request.user).with_related()

    # --- reading ---------------------------------------------------------------------------

    @extend_schema(parameters=[ListFiltersSerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        filters = ListFiltersSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = cast(NotificationQuerySet, self.filter_queryset(self.get_queryset()))
        options = filters.validated_data
        if options.get("after") is not None:
            queryset = queryset.since(options["after"])
        queryset = queryset.archived() if options["archived"] else queryset.unarchived()
        if options["unread"] is True:
            queryset = queryset.not_read()
        elif options["unread"] is False:
            queryset = queryset.read()
        if "category" in options:
            queryset = queryset.filter(category=options["category"])
        if "level" in options:
            queryset = queryset.filter(level=options["level"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    # --- state changes ------------------------------------------------------------------------

    def _change_one(self, change: Any) -> Response:
        notification = self.get_object()
        change(self.request.user, [notification.pk])
        notification.refresh_from_db()
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        return self._change_one(services.mark_read)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def unread(self, request: Request, pk: str | None = None) -> Response:
        return self._change_one(services.mark_unread)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        return self._change_one(services.archive)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, pk: str | None = None) -> Response:
        return self._change_one(services.unarchive)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        notification = self.get_object()
        services.delete(request.user, [notification.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _bulk_answer(self, change: services.Change) -> Response:
        counts = Notification.objects.for_user(self.request.user).counts()
        return Response(
            {
                "ids": change.ids,
                "up_to": change.up_to,
                "count": change.count,
                "unread_count": counts["unread_count"],
                "unseen_count": counts["unseen_count"],
            }
        )

    @extend_schema(request=UpToSerializer, responses=BulkChangeSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark read everything unread, or only what existed up to ``up_to`` (race-safe: what
        arrived after the user clicked stays unread)."""
        body = UpToSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._bulk_answer(
            services.mark_all_read(request.user, up_to=body.validated_data.get("up_to"))
        )

    @extend_schema(request=RequiredUpToSerializer, responses=BulkChangeSerializer)
    @action(detail=False, methods=["post"])
    def seen(self, request: Request) -> Response:
        """Mark seen everything up to ``up_to``: the badge's unseen count drops."""
        body = RequiredUpToSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._bulk_answer(
            services.mark_seen(request.user, up_to=body.validated_data["up_to"])
        )

    # --- preferences ---------------------------------------------------------------------------

    @extend_schema(methods=["GET"], responses=PreferencesSerializer)
    @extend_schema(methods=["PUT"], request=PreferencesSerializer, responses=PreferencesSerializer)
    # JSON only: a form cannot say "an empty list", which is how one unmutes everything.
    @action(detail=False, methods=["get", "put"], parser_classes=[JSONParser])
    def preferences(self, request: Request) -> Response:
        """What the user muted, in-app and per channel (email, push). ``PUT`` replaces it (a channel
        left out is left as it is); muting in-app a category the project declares unmutable is
        a 400."""
        if request.method == "PUT":
            body = PreferencesSerializer(data=request.data)
            if not body.is_valid():
                raise ValidationError(_dotted(body.errors))
            try:
                services.set_preferences(request.user, **body.validated_data)
            except ValueError as error:
                field, _, message = str(error).partition(": ")
                raise ValidationError({field: [message]}) from None
        return Response(
            {
                **services.preferences(request.user),
                "unmutable_categories": app_settings.UNMUTABLE_CATEGORIES,
                "email_available": app_settings.EMAIL_DIGESTS,
                "push_available": app_settings.WEB_PUSH,
            }
        )

    # --- polling (its 304 never gets here: polling.FastPath) ----------------------------------

    @extend_schema(
        responses={200: CountsSerializer, 304: OpenApiResponse(description="Not modified")},
        parameters=[
            OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER),
        ],
    )
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request: Request) -> Response:
        """The badge's counts and the newest id. Send the ``ETag`` back as ``If-None-Match``:
        a 304 means nothing changed. Wait ``X-Poll-Interval`` seconds between requests."""
        etag = polling.fresh_etag(request)
        counts = Notification.objects.for_user(request.user).counts()
        return polling.with_headers(Response(counts), etag)

    # --- WebSocket tickets --------------------------------------------------------------------

    @extend_schema(request=None, responses=TicketSerializer)
    @action(detail=False, methods=["post"], url_path="ws-ticket")
    def ws_ticket(self, request: Request) -> Response:
        """A single-use ticket for ``/ws/notifications/?ticket=...``, for clients that cannot
        send the session cookie (it needs no ``Origin`` header). The socket it opens is bound to
        the session or token that asked for it, and closes with it."""
        return Response(
            {
                "ticket": tickets.issue(cast(int, request.user.pk), credential_of(request)),
                "expires_in": app_settings.TICKET_TTL_SECONDS,
            }
        )


def _dotted(errors: Any, prefix: str = "") -> dict[str, Any]:
    """A nested serializer's errors with dotted keys (``channels.email.enabled``): the error
    shape the schema declares is one level deep."""
    if not isinstance(errors, dict):
        return {prefix: errors}
    if errors and all(isinstance(key, int) for key in errors):  # a list's items, by index
        return {prefix: [f"item {i}: {m}" for i, ms in sorted(errors.items()) for m in ms]}
    flat: dict[str, Any] = {}
    for key, value in errors.items():
        flat.update(_dotted(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def credential_of(request: Request) -> Credential | None:
    """The session or DRF token that authenticated ``request`` (None: another authenticator)."""
    authenticator = request.successful_authenticator
    if isinstance(authenticator, TokenAuthentication) and request.auth is not None:
        return Credential("token", request.auth.key)
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if isinstance(authenticator, SessionAuthentication) and session_key:
        return Credential("session", session_key)
    return None
