"""What a user muted, per channel: categories and levels in-app; categories, levels or
everything by email and by Web Push."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from ..conf import app_settings
from ..models import Channel, Level, Mute, is_category
from .state import owner_id

# The channels besides in-app, each with the same shape in preferences().
OTHER_CHANNELS = (Channel.EMAIL, Channel.PUSH)


def preferences(user: Any) -> dict[str, Any]:
    """What ``user`` muted: in-app ``muted_categories`` and ``muted_levels`` (sorted), and per
    other channel ``{"enabled", "muted_categories", "muted_levels"}`` under ``channels``."""
    rows = Mute.objects.filter(user_id=owner_id(user)).order_by("channel", "kind", "value")
    result: dict[str, Any] = {
        "muted_categories": [],
        "muted_levels": [],
        "channels": {
            str(channel): {"enabled": True, "muted_categories": [], "muted_levels": []}
            for channel in OTHER_CHANNELS
        },
    }
    for channel, kind, value in rows.values_list("channel", "kind", "value"):
        place = result if channel == Channel.IN_APP else result["channels"].get(channel)
        if place is None:
            continue
        if kind == Mute.Kind.ALL:
            place["enabled"] = False
        else:
            place["muted_categories" if kind == Mute.Kind.CATEGORY else "muted_levels"].append(
                value
            )
    return result


def set_preferences(
    user: Any,
    *,
    muted_categories: Iterable[str] | None = None,
    muted_levels: Iterable[str] | None = None,
    channels: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Replace what ``user`` muted, for what is given (None leaves it as it is): in-app
    categories and levels, and per channel of ``channels`` its ``enabled``, ``muted_categories``
    and ``muted_levels`` (each optional too). Raises ``ValueError`` (naming the field) for a
    category that is no slug, an in-app mute of a category the project declared unmutable, an
    unknown level or channel."""
    user_id = owner_id(user)
    replace: dict[tuple[str, str], list[str]] = {}  # (channel, kind) -> values
    if muted_categories is not None:
        replace[Channel.IN_APP, Mute.Kind.CATEGORY] = _categories(
            muted_categories, "muted_categories", unmutable=app_settings.UNMUTABLE_CATEGORIES
        )
    if muted_levels is not None:
        replace[Channel.IN_APP, Mute.Kind.LEVEL] = _levels(muted_levels, "muted_levels")
    for name, wanted in (channels or {}).items():
        if name not in OTHER_CHANNELS or not isinstance(wanted, Mapping):
            raise ValueError(f"channels: {name!r:.40} is not a channel")
        field = f"channels.{name}"
        if "muted_categories" in wanted:
            replace[name, Mute.Kind.CATEGORY] = _categories(
                wanted["muted_categories"], f"{field}.muted_categories", unmutable=()
            )
        if "muted_levels" in wanted:
            replace[name, Mute.Kind.LEVEL] = _levels(
                wanted["muted_levels"], f"{field}.muted_levels"
            )
        if "enabled" in wanted:
            if not isinstance(wanted["enabled"], bool):
                raise ValueError(f"{field}.enabled: must be true or false")
            replace[name, Mute.Kind.ALL] = [] if wanted["enabled"] else [""]
    with transaction.atomic():
        for (channel, kind), values in replace.items():
            Mute.objects.filter(user_id=user_id, channel=channel, kind=kind).delete()
            Mute.objects.bulk_create(
                [Mute(user_id=user_id, channel=channel, kind=kind, value=v) for v in values]
            )
    return preferences(user_id)


def mute_email(user: Any, category: str) -> None:
    """Turn off email for ``category`` ("" for every email). Doing it twice changes nothing."""
    kind = Mute.Kind.CATEGORY if category else Mute.Kind.ALL
    Mute.objects.get_or_create(
        user_id=owner_id(user), channel=Channel.EMAIL, kind=kind, value=category
    )


def _categories(values: Any, name: str, *, unmutable: Iterable[str]) -> list[str]:
    categories = _clean_list(values, name)
    for category in categories:
        if not category or not is_category(category):
            raise ValueError(f"{name}: {category!r} is not a category slug")
        if category in unmutable:
            raise ValueError(f"{name}: {category!r} cannot be muted")
    return categories


def _levels(values: Any, name: str) -> list[str]:
    levels = _clean_list(values, name)
    for level in levels:
        if level not in Level.values:
            raise ValueError(f"{name}: must be among {', '.join(Level.values)}")
    return levels


def _clean_list(values: Any, name: str) -> list[str]:
    if isinstance(values, str | bytes | dict) or not isinstance(values, Iterable):
        raise ValueError(f"{name}: must be a list of strings")
    values = list(values)
    if len(values) > 100 or not all(isinstance(value, str) for value in values):
        raise ValueError(f"{name}: must be a list of at most 100 strings")
    return sorted(set(values))
