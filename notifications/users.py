"""Which users count as active, for any user model Django accepts as ``AUTH_USER_MODEL``.

Django's own ``User`` has an ``is_active`` field; a custom model built on ``AbstractBaseUser``
may have none (the base class then answers ``True`` from a class attribute), or a property. Every
place that means "active users" asks here, as Django's ``ModelBackend`` does
(``getattr(user, "is_active", True)``): a model without the field has only active users.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models


def has_active_field(model: type[models.Model]) -> bool:
    """Whether ``model`` stores ``is_active`` in a column (and so can filter on it in SQL)."""
    try:
        field = model._meta.get_field("is_active")
    except FieldDoesNotExist:
        return False
    return getattr(field, "concrete", False)


def active_users(users: models.QuerySet | None = None) -> models.QuerySet:
    """The active ones among ``users`` (default: every user of ``AUTH_USER_MODEL``); all of
    them when the model has no ``is_active`` field."""
    if users is None:
        users = get_user_model()._default_manager.all()
    return users.filter(is_active=True) if has_active_field(users.model) else users


def is_active(user: Any) -> bool:
    """Whether one user instance is active, as Django's ``ModelBackend`` decides it."""
    return bool(getattr(user, "is_active", True))
