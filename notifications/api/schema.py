"""The OpenAPI schema of the notifications API: drf-spectacular's, plus the ``429`` of the
rate-limited operations (``throttling.py``), which no serializer of theirs describes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from . import throttling


class ThrottledSerializer(serializers.Serializer):
    detail = serializers.CharField(
        help_text='"Request was throttled. Expected available in N seconds."'
    )


class NotificationsAutoSchema(AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        operation = super().get_operation(*args, **kwargs)
        action = getattr(self.view, "action", None)
        if operation is not None and throttling.scope_of(action, self.method) is not None:
            throttled = self._get_response_for_code(ThrottledSerializer, "429")
            throttled["description"] = "Too many requests: wait Retry-After seconds"
            throttled["headers"] = {
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "seconds until the next request is allowed",
                }
            }
            operation["responses"].setdefault("429", throttled)
        return operation
