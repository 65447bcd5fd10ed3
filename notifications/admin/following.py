"""Who follows (or muted) which object: the follows' list, and ``FollowersInline`` for a project's
own ModelAdmin.

Both are read-only: users follow through the REST API and the widget, a project through
``services.follow()``. Staff may delete a row (the user then neither follows nor mutes the
object), and send a notification to an object's followers from the send page.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.forms import BaseGenericInlineFormSet
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import Follow, FollowQuerySet, is_primary_key
from .changelist import CheckedChangelistAdmin, LargeTablePaginator, RecentValuesFilter
from .forms import (
    can_send,
    followed_object,
    followed_types,
    object_label,
    type_label,
)

OBJECT_TYPE = "content_type__id__exact"
OBJECT_ID = "object_id"


def admin_url(site: admin.AdminSite, name: str, *args: Any) -> str | None:
    """The URL of one of ``site``'s pages, else of the default site's (a project's own site
    showing ``FollowersInline`` need not register the follows or the send page), else None."""
    for current_app in (site.name, None):
        try:
            return reverse(f"admin:{name}", args=args, current_app=current_app)
        except NoReverseMatch:
            continue
    return None


def object_admin_url(site: admin.AdminSite, obj: models.Model) -> str | None:
    """The change page of ``obj`` on ``site``, if the site registers its model."""
    if not site.is_registered(type(obj)):
        return None
    opts = obj._meta
    return admin_url(site, f"{opts.app_label}_{opts.model_name}_change", quote(obj.pk))


def followers_links(
    site: admin.AdminSite, request: HttpRequest, obj: models.Model
) -> dict[str, str | None]:
    """The follows' list filtered to ``obj`` (``followers_url``) and the send page with its
    followers chosen (``send_url``, to those who may send)."""
    content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
    key = {OBJECT_TYPE: content_type.pk, OBJECT_ID: str(obj.pk)}
    follows = admin_url(site, "notifications_follow_changelist")
    send = admin_url(site, "notifications_notification_send") if can_send(request) else None
    query = urlencode({"followers_of": f"{content_type.pk}:{obj.pk}"})
    return {
        "followers_url": follows and f"{follows}?{urlencode(key)}",
        "send_url": send and f"{send}?{query}",
    }


class ObjectTypeFilter(admin.SimpleListFilter):
    """The types of object that have follows (one query, an index probe a type). Its parameter
    is the one a link to one object's followers names, beside ``object_id``."""

    title = _("object type")
    parameter_name = OBJECT_TYPE

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(str(ct.pk), type_label(ct)) for ct in followed_types(followable=False)]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        value = self.value()
        if not value:
            return queryset
        if not is_primary_key(ContentType, value):
            raise IncorrectLookupParameters(f"{OBJECT_TYPE}: not an id")
        return queryset.filter(content_type_id=value)


class ReasonFilter(RecentValuesFilter):
    title = _("reason")
    parameter_name = field = "reason"


class StateFilter(admin.SimpleListFilter):
    """Yes or no on one state of ``FollowQuerySet.in_state()``: its parameter's name."""

    no_label = _("No")

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("yes", _("Yes")), ("no", self.no_label)]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        if self.value() not in ("yes", "no"):
            return queryset
        state = {cast(str, self.parameter_name): self.value() == "yes"}
        return cast(FollowQuerySet, queryset).in_state(**state)


class FollowingFilter(StateFilter):
    title = _("following")
    parameter_name = "following"
    no_label = _("No (muted only)")


class MutedFilter(StateFilter):
    title = _("muted")
    parameter_name = "muted"


class FollowColumns:
    """The columns the list and the inline share."""

    @admin.display(boolean=True, description=_("following"))
    def following(self, follow: Follow) -> bool:
        return follow.is_following

    @admin.display(boolean=True, description=_("muted"))
    def muted(self, follow: Follow) -> bool:
        return follow.is_muted


@admin.register(Follow)
class FollowAdmin(FollowColumns, CheckedChangelistAdmin):
    """Who follows or muted which object. Read-only: users and the project's code write follows;
    staff may delete one. One object's followers: ``?content_type__id__exact=<type id>&object_id=
    <id>`` (``FollowersInline`` links there)."""

    list_display = ["user", "followed_object", "reason", "following", "muted", "created_at"]
    list_filter = [ObjectTypeFilter, ReasonFilter, FollowingFilter, MutedFilter]
    list_select_related = ["user", "content_type"]
    link_lookups = {"user__id__exact": get_user_model}
    search_fields = ["=user__username"]
    search_help_text = _("The follows of the user with exactly this username.")
    fields = readonly_fields = ("user", "followed_object", "content_type", "object_id", "reason",
                                "following", "muted", "created_at", "muted_at")  # fmt: skip
    ordering = ["-pk"]
    sortable_by = ()  # only the primary key orders cheaply
    paginator = LargeTablePaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        # The page's objects in one query per type among its rows, not one per row.
        return super().get_queryset(request).prefetch_related("target")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # One object's followers: beside the type's filter, along the unique index.
        return lookup == OBJECT_ID or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("object"))
    def followed_object(self, follow: Follow) -> Any:
        target = follow.target
        if target is None:  # deleted, or its model uninstalled
            return _("%(type)s %(id)s (gone)") % {
                "type": f"{follow.content_type.app_label}.{follow.content_type.model}",
                "id": follow.object_id,
            }
        url = object_admin_url(self.admin_site, target)
        return format_html('<a href="{}">{}</a>', url, target) if url else str(target)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        extra_context = {**(extra_context or {}), **self._one_object(request)}
        return super().changelist_view(request, extra_context)

    def _one_object(self, request: HttpRequest) -> dict[str, Any]:
        """Filtered to one object: its name as the list's subtitle, and the way to send to its
        followers. Two queries (the type, among those followed; the object)."""
        type_id, object_id = request.GET.get(OBJECT_TYPE), request.GET.get(OBJECT_ID)
        if not type_id or not object_id or "\x00" in type_id + object_id:
            return {}
        try:
            obj = followed_object(type_id, object_id)
        except ValidationError:
            return {}
        return {
            "subtitle": _("Followers of %(object)s") % {"object": object_label(obj)},
            "followed_object_url": object_admin_url(self.admin_site, obj),
            **followers_links(self.admin_site, request, obj),
        }

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FollowersFormSet(BaseGenericInlineFormSet):
    """An object's newest follows, at most ``FollowersInline.max_rows``: an object may have
    thousands, which the follows' list pages through."""

    max_rows = 100

    def get_queryset(self) -> models.QuerySet:
        if not hasattr(self, "_newest"):
            self._newest = super().get_queryset()[: self.max_rows]
        return self._newest


class FollowersInline(FollowColumns, GenericTabularInline):
    """An object's followers (and who muted it) on a project's own ModelAdmin, read-only::

        @admin.register(Document)
        class DocumentAdmin(admin.ModelAdmin):
            inlines = [FollowersInline]

    It shows the newest ``max_rows`` follows, with links to all of them in the follows' list and
    to the send page with the object's followers chosen. Staff see it with the
    ``notifications.view_follow`` permission.
    """

    model = Follow
    ct_field = "content_type"
    ct_fk_field = "object_id"
    # The object's own type, a proxy's too, as services.follow() records it.
    for_concrete_model = False
    # The stubs type an inline's formset as a foreign key's, which a generic one is not.
    formset = FollowersFormSet  # type: ignore[assignment]
    fields = readonly_fields = ("user", "reason", "following", "muted", "created_at")
    extra = 0
    max_rows = 100
    verbose_name = _("follower")
    verbose_name_plural = _("followers")
    template = "admin/notifications/follow/followers_inline.html"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        # Each row's text (its "original" line) names its user and type.
        return super().get_queryset(request).select_related("user", "content_type").order_by("-pk")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset: Any = super().get_formset(request, obj, **kwargs)
        formset.max_rows = self.max_rows
        links = followers_links(self.admin_site, request, obj) if obj is not None else {}
        formset.followers_url = links.get("followers_url")
        formset.send_url = links.get("send_url")
        return formset

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
