"""What a user muted: categories and levels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from ..conf import app_settings
from ..models import Level, Mute, is_category
from .state import owner_id


def preferences(user: Any) -> dict[str, list[str]]:
    """What ``user`` muted: ``{"muted_categories": [...], "muted_levels": [...]}``, sorted."""
    rows = Mute.objects.filter(user_id=owner_id(user)).order_by("kind", "value")
    result: dict[str, list[str]] = {"muted_categories": [], "muted_levels": []}
    for kind, value in rows.values_list("kind", "value"):
        result["muted_categories" if kind == Mute.Kind.CATEGORY else "muted_levels"].append(value)
    return result


def set_preferences(
    user: Any, *, muted_categories: Iterable[str], muted_levels: Iterable[str]
) -> dict[str, list[str]]:
    """Replace what ``user`` muted. Raises ``ValueError`` (naming the field) for a category that
    is no slug or that the project declared unmutable, or for an unknown level."""
    user_id = owner_id(user)
    categories = _clean_list(muted_categories, "muted_categories")
    levels = _clean_list(muted_levels, "muted_levels")
    for category in categories:
        if not category or not is_category(category):
            raise ValueError(f"muted_categories: {category!r} is not a category slug")
        if category in app_settings.UNMUTABLE_CATEGORIES:
            raise ValueError(f"muted_categories: {category!r} cannot be muted")
    for level in levels:
        if level not in Level.values:
            raise ValueError(f"muted_levels: must be among {', '.join(Level.values)}")
    with transaction.atomic():
        Mute.objects.filter(user_id=user_id).delete()
        Mute.objects.bulk_create(
            [Mute(user_id=user_id, kind=Mute.Kind.CATEGORY, value=c) for c in categories]
            + [Mute(user_id=user_id, kind=Mute.Kind.LEVEL, value=v) for v in levels]
        )
    return preferences(user_id)


def _clean_list(values: Any, name: str) -> list[str]:
    if isinstance(values, str | bytes | dict) or not isinstance(values, Iterable):
        raise ValueError(f"{name}: must be a list of strings")
    values = list(values)
    if len(values) > 100 or not all(isinstance(value, str) for value in values):
        raise ValueError(f"{name}: must be a list of at most 100 strings")
    return sorted(set(values))
