"""The Notification admin: a changelist that stays fast on millions of rows, and a send page.

An adapter like the API and the consumer: every write goes through ``notifications.services``, so
that users' sockets hear of it. The admin therefore adds no rows itself (the send page calls
``notify()``), shows existing rows read-only, and turns "mark read/unread" and "delete" into
service calls. The follows' list and ``FollowersInline`` are in ``following``; the send form,
which also sends to an object's followers, in ``forms``.
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode, urlsplit

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from .. import services
from ..conf import app_settings
from ..models import Digest, Mute, Notification, NotificationQuerySet, PushSubscription
from . import forms
from .changelist import CheckedChangelistAdmin, LargeTablePaginator, RecentValuesFilter
from .following import FollowAdmin, FollowersInline
from .forms import CONTENT_FIELDS, SEND_PERMISSION, SendNotificationForm, can_send

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

__all__ = [
    "SEND_PERMISSION",
    "DigestAdmin",
    "FollowAdmin",
    "FollowersInline",
    "LargeTablePaginator",
    "MuteAdmin",
    "NotificationAdmin",
    "PushSubscriptionAdmin",
    "add_send_action",
    "can_send",
    "send_to_selected_users",
]

logger = logging.getLogger("notifications.admin")

# --- the changelist at scale ----------------------------------------------------------------


class ReadStateFilter(admin.SimpleListFilter):
    title = _("read state")
    parameter_name = "read"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("no", _("Unread")), ("yes", _("Read"))]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        notifications = cast(NotificationQuerySet, queryset)
        if self.value() == "no":
            return notifications.not_read()
        if self.value() == "yes":
            return notifications.read()
        return queryset


class CategoryFilter(RecentValuesFilter):
    title = _("category")
    parameter_name = field = "category"


class EmailedFilter(admin.SimpleListFilter):
    """Emailed (a digest carrying it was sent), waiting (a digest is being sent, or one will carry
    it once due if it stays unseen) or not (never meant for email, seen first, or not sent)."""

    title = _("emailed")
    parameter_name = "emailed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [
            ("yes", pgettext_lazy("emailed", "Yes")),
            ("waiting", pgettext_lazy("emailed", "Waiting")),
            ("no", pgettext_lazy("emailed", "No")),
        ]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        notifications = cast(NotificationQuerySet, queryset)
        # The rows a digest will carry, through the notif_email_due index.
        awaiting = Notification.objects.awaiting_email().values("pk")
        if self.value() == "yes":
            return notifications.filter(digest__status=Digest.Status.SENT)
        if self.value() == "waiting":
            return notifications.filter(
                models.Q(digest__status=Digest.Status.PENDING) | models.Q(pk__in=awaiting)
            )
        if self.value() == "no":
            return notifications.exclude(
                digest__status__in=[Digest.Status.SENT, Digest.Status.PENDING]
            ).exclude(pk__in=awaiting)
        return queryset


def date_levels(cl: ChangeList) -> dict[str, Any]:
    """The date hierarchy's links, as Django's ``{% date_hierarchy %}`` gives them, in at most two
    index lookups.

    Django's tag reads every row in view twice (``MIN``/``MAX``, then a ``DISTINCT`` of their
    dates): seconds on millions of rows, since ``created_at`` has no index of its own. Rows are
    created in id order, so the table's first and last rows by primary key give its range, and
    the choices are the calendar within it: a day or month without notifications (in view) may
    be offered, and then leads to an empty list.
    """
    field = cl.date_hierarchy
    names = {part: f"{field}__{part}" for part in ("year", "month", "day")}
    year, month, day = (cl.params.get(names[part]) for part in ("year", "month", "day"))

    def link(**parts: Any) -> str:
        return cl.get_query_string(
            {names[part]: value for part, value in parts.items()}, [f"{field}__"]
        )

    def day_choice(value: date, linked: bool = True) -> dict[str, str]:
        title = capfirst(formats.date_format(value, "MONTH_DAY_FORMAT"))
        if not linked:
            return {"title": title}
        return {"link": link(year=value.year, month=value.month, day=value.day), "title": title}

    try:
        chosen = date(int(year or 1), int(month or 1), int(day or 1))
    except (ValueError, OverflowError):  # a month or day alone, which Django filters by as is
        return {"show": False}
    if year and month and day:
        back = capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT"))
        return {
            "show": True,
            "back": {"link": link(year=year, month=month), "title": back},
            "choices": [day_choice(chosen, linked=False)],
        }
    # The whole table's range, not the filtered rows': two index lookups whatever the filters.
    rows = cl.root_queryset.order_by("pk").values_list(field, flat=True)
    first, last = rows.first(), rows.reverse().first()
    if first is None or last is None:
        return {"show": True, "back": None, "choices": []}
    start, end = (timezone.localtime(value).date() for value in (first, last))
    if year:
        start, end = max(start, date(int(year), 1, 1)), min(end, date(int(year), 12, 31))
    elif start.year != end.year:
        years = range(start.year, end.year + 1)
        return {
            "show": True,
            "back": None,
            "choices": [{"link": link(year=number), "title": str(number)} for number in years],
        }
    else:
        year = start.year
        if start.month == end.month:
            month = start.month
    if month:
        length = calendar.monthrange(int(year), int(month))[1]
        days = [date(int(year), int(month), number) for number in range(1, length + 1)]
        return {
            "show": True,
            "back": {"link": link(year=year), "title": str(year)},
            "choices": [day_choice(value) for value in days if start <= value <= end],
        }
    months = [date(int(year), number, 1) for number in range(1, 13)]
    return {
        "show": True,
        "back": {"link": cl.get_query_string({}, [f"{field}__"]), "title": _("All dates")},
        "choices": [
            {
                "link": link(year=year, month=value.month),
                "title": capfirst(formats.date_format(value, "YEAR_MONTH_FORMAT")),
            }
            for value in months
            if (start.year, start.month) <= (value.year, value.month) <= (end.year, end.month)
        ],
    }


# --- the Notification admin -----------------------------------------------------------------


@admin.register(Notification)
class NotificationAdmin(CheckedChangelistAdmin):
    list_display = ["title", "recipient", "level", "category", "is_read", "sent", "emailed"]
    # The digest in the same query: the "emailed" column reads its status and sent_at.
    list_select_related = ["recipient", "digest"]
    list_filter = ["level", CategoryFilter, ReadStateFilter, EmailedFilter, "created_at"]
    date_hierarchy = "created_at"
    # One user's notifications, along the recipient index (docs/admin.md); what one digest
    # carried, along the digest's (the digest admin links there).
    link_lookups = {"recipient__id__exact": get_user_model, "digest__id__exact": lambda: Digest}
    search_fields = ["title", "=recipient__username"]
    search_help_text = _(
        "Titles containing the text, or the notifications of the user with exactly this "
        "username. On a large table a search reads every row: filter first where you can."
    )
    autocomplete_fields = ["recipient"]
    fieldsets = [
        (None, {"fields": ["recipient", "title", "body", "level", "category", "url", "data"]}),
        (
            _("Actor and target"),
            {
                "fields": [
                    ("actor_content_type", "actor_object_id"),
                    ("target_content_type", "target_object_id"),
                ]
            },
        ),
        (_("State"), {"fields": ["created_at", "read_at", "seen_at", "archived_at", "expires_at"]}),
        (_("Grouping"), {"fields": ["group_key", "group_count", "actors"]}),
        (_("Email"), {"fields": ["email", "email_due_at", "digest_status", "digest_sent_at"]}),
    ]
    readonly_fields = ["digest_status", "digest_sent_at"]
    actions = ["mark_read", "mark_unread"]
    # Only the primary key orders cheaply on a large table.
    sortable_by = ["sent"]
    paginator = LargeTablePaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice: a scan per choice
    # Actions changing more rows than this are refused: each recipient costs queries and a push.
    max_action_rows = 10_000

    @admin.display(boolean=True, description=_("read"))
    def is_read(self, notification: Notification) -> bool:
        return notification.is_read

    @admin.display(description=_("sent"), ordering="pk")
    def sent(self, notification: Notification) -> Any:
        return notification.created_at

    @admin.display(description=_("emailed"), empty_value="—")
    def emailed(self, notification: Notification) -> Any:
        """When the digest carrying it was sent, or why not (a value of the row and its
        select_related digest: no query)."""
        digest = notification.digest
        if digest is None:
            return _WAITING if notification.awaits_email else None
        if digest.status == Digest.Status.SENT:
            return digest.sent_at
        return _EMAILED.get(Digest.Status(digest.status))

    @admin.display(description=_("digest status"))
    def digest_status(self, notification: Notification) -> Any:
        digest = notification.digest
        if digest is None:
            return _WAITING if notification.awaits_email else None
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:notifications_digest_change", args=[digest.pk]),
            digest.get_status_display(),
        )

    @admin.display(description=_("email sent at"))
    def digest_sent_at(self, notification: Notification) -> Any:
        sent_at = notification.digest.sent_at if notification.digest else None
        if sent_at is None:
            return None
        # A read-only field computed here is shown as str() would: format it as a column is.
        return formats.localize(timezone.localtime(sent_at))

    # Rows are written only through services, which push what changed: the send page replaces
    # "add", and an edited title or recipient would never reach the sockets, so the form is
    # read-only. Changing *state* stays allowed (the actions check the change permission).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def get_urls(self) -> list[URLPattern]:
        send = path(
            "send/",
            self.admin_site.admin_view(self.send_view),
            name="notifications_notification_send",
        )
        users = path(
            "send/users/",
            self.admin_site.admin_view(self.user_search_view),
            name="notifications_notification_send_users",
        )
        return [send, users, *super().get_urls()]

    def user_search_view(self, request: HttpRequest) -> HttpResponseBase:
        """The send page's user search: the admin's autocomplete, which passes the typed text to
        the database as it is (a NUL byte, which PostgreSQL refuses, was a 500)."""
        if "\x00" in request.GET.get("term", ""):
            return JsonResponse({"error": str(_("Null characters are not allowed."))}, status=400)
        return AutocompleteJsonView.as_view(admin_site=self.admin_site)(request)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        extra_context = {**(extra_context or {}), "can_send_notifications": can_send(request)}
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        if "cl" in context:  # not a redirect, nor an action's own page
            context["date_levels"] = date_levels(context["cl"])
        return response

    # --- state changes, through services ---

    @admin.action(description=_("Mark selected notifications as read"), permissions=["change"])
    def mark_read(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        self._change_state(request, queryset, services.mark_read, _("Marked %(count)s as read."))

    @admin.action(description=_("Mark selected notifications as unread"), permissions=["change"])
    def mark_unread(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        self._change_state(
            request, queryset, services.mark_unread, _("Marked %(count)s as unread.")
        )

    # Expired notifications too: users no longer see them, the admin does.
    def delete_model(self, request: HttpRequest, obj: Notification) -> None:
        services.delete(obj.recipient_id, [obj.pk], expired_too=True)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        with transaction.atomic():
            for user_id, ids in _ids_by_recipient(queryset.values_list("pk", "recipient_id")):
                services.delete(user_id, ids, expired_too=True)

    def _change_state(
        self,
        request: HttpRequest,
        queryset: models.QuerySet,
        change: Callable[[int, list[int]], list[int]],
        done: StrOrPromise,
    ) -> None:
        limit = self.max_action_rows
        rows = list(queryset.order_by().values_list("pk", "recipient_id")[: limit + 1])
        if len(rows) > limit:
            self.message_user(
                request,
                _("Select at most %(limit)s notifications at a time.") % {"limit": limit},
                messages.ERROR,
            )
            return
        changed = 0
        # Per recipient, as services scope every change to one user's inbox: one UPDATE, and one
        # `changed` event carrying that user's new counts to that user's sockets. A single UPDATE
        # across users would change the rows and leave every open inbox showing the old state.
        with transaction.atomic():
            for user_id, ids in _ids_by_recipient(rows):
                changed += len(change(user_id, ids))
        self.message_user(request, done % {"count": changed}, messages.SUCCESS)

    # --- the send page ---

    def send_view(self, request: HttpRequest) -> HttpResponse:
        if not can_send(request):
            raise PermissionDenied
        if request.method != "POST":
            form = SendNotificationForm(
                admin_site=self.admin_site,
                users_query=request.GET.get("users"),
                followers_query=request.GET.get("followers_of"),
            )
            return self._render_send(request, form)
        form = SendNotificationForm(request.POST, admin_site=self.admin_site)
        if not form.is_valid() or "_edit" in request.POST:
            return self._render_send(request, form)
        if "_preview" in request.POST:
            return self._render_send(request, form, preview=True)
        if form.needs_confirmation:
            return self._render_send(request, form, confirm=True)
        try:
            batch = services.notify(form.recipients(), **form.content, target=form.target)
        except ValueError as error:  # validated already; a user deleted meanwhile, say
            form.add_error(None, str(error))
            return self._render_send(request, form)
        logger.info(
            "%s sent %r to %d users from the admin", request.user, form.content["title"], len(batch)
        )
        self.message_user(
            request,
            ngettext(
                "Sent the notification to %(count)d user.",
                "Sent the notification to %(count)d users.",
                len(batch),
            )
            % {"count": len(batch)},
            messages.SUCCESS,
        )
        if self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:notifications_notification_changelist"))
        return HttpResponseRedirect(request.path)

    def _render_send(
        self,
        request: HttpRequest,
        form: SendNotificationForm,
        *,
        preview: bool = False,
        confirm: bool = False,
    ) -> TemplateResponse:
        fieldsets = [
            (
                _("Recipients"),
                {"fields": ["audience", "users", "groups", "object_type", "object_id"]},
            ),
            (_("Notification"), {"fields": list(CONTENT_FIELDS)}),
        ]
        if "email" in form.fields:  # EMAIL_DIGESTS is on
            fieldsets.append((_("Delivery"), {"fields": ["email"]}))
        errors = helpers.AdminErrorList(form, [])  # type: ignore[arg-type]
        if not form.is_bound:  # the errors of a link's ?users= or ?followers_of=
            errors.extend(form.errors.values())  # type: ignore[arg-type]  # as Django does
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send notification"),
            "opts": self.opts,
            "form": form,
            # The helpers want a ModelForm in the stubs; any form does at run time.
            "adminform": helpers.AdminForm(form, fieldsets, {}, model_admin=self),  # type: ignore[arg-type]
            "media": form.media,
            "errors": errors,
            "has_view_permission": self.has_view_permission(request),
            "show_preview": preview or confirm,
            "confirm": confirm,
            "confirm_above": app_settings.SEND_CONFIRM_ABOVE,
        }
        if confirm:
            context["confirmation_token"] = form.confirmation_token()
        return TemplateResponse(request, "admin/notifications/notification/send.html", context)


# The "emailed" column's words for a digest that was not sent (yet); "sent" shows when.
_EMAILED = {
    Digest.Status.PENDING: pgettext_lazy("emailed", "pending"),
    Digest.Status.NO_ADDRESS: pgettext_lazy("emailed", "not sent: no address"),
    Digest.Status.FAILED: pgettext_lazy("emailed", "failed"),
}
_WAITING = pgettext_lazy("emailed", "waiting")


def _ids_by_recipient(rows: Iterable[tuple[int, int]]) -> Iterable[tuple[int, list[int]]]:
    """(recipient id, notification ids) pairs, in chunks the services accept at once."""
    by_recipient: dict[int, list[int]] = defaultdict(list)
    for pk, recipient_id in rows:
        by_recipient[recipient_id].append(pk)
    size = app_settings.MAX_IDS_PER_MESSAGE
    for recipient_id, ids in by_recipient.items():
        for start in range(0, len(ids), size):
            yield recipient_id, ids[start : start + size]


# --- the user admin's action ----------------------------------------------------------------


@admin.action(
    description=_("Send notification to selected users"), permissions=["send_notification"]
)
def send_to_selected_users(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: models.QuerySet
) -> HttpResponse | None:
    limit = forms.MAX_USERS_IN_URL
    ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: limit + 1])
    if len(ids) > limit:
        model_admin.message_user(
            request,
            _("Select at most %(limit)s users, or send to a group or to all active users.")
            % {"limit": limit},
            messages.ERROR,
        )
        return None
    query = urlencode({"users": ",".join(map(str, ids))})
    return HttpResponseRedirect(f"{reverse('admin:notifications_notification_send')}?{query}")


def add_send_action(model_admin: admin.ModelAdmin) -> None:
    """Offer "Send notification to selected users" on a user ModelAdmin, to those allowed to send.

    Called below for whatever admin the default site has for the user model when this module is
    imported; call it yourself for a user admin registered later or on another site.
    """
    if model_admin.actions is None:  # actions switched off on purpose
        return
    # A new list on the instance: the class's list may be shared with other admins.
    model_admin.actions = [*model_admin.actions, send_to_selected_users]
    # permissions=["send_notification"] makes Django ask the admin for this method.
    model_admin.has_send_notification_permission = can_send  # type: ignore[attr-defined]


if admin.site.is_registered(get_user_model()):
    add_send_action(admin.site.get_model_admin(get_user_model()))


@admin.register(Mute)
class MuteAdmin(CheckedChangelistAdmin):
    """What users muted: one row per muted category or level (they choose, through the API and
    the widget; staff can see and correct it here)."""

    list_display = ["user", "channel", "kind", "value"]
    list_filter = ["channel", "kind"]
    link_lookups = {"user__id__exact": get_user_model}
    search_fields = ["value", "user__username"]
    autocomplete_fields = ["user"]
    list_select_related = ["user"]


@admin.register(Digest)
class DigestAdmin(CheckedChangelistAdmin):
    """What was emailed to whom, and what was not (and why): a log, read-only for everyone.
    Digests are written by the workers that send them (notifications/email/)."""

    list_display = ["user", "kind", "status", "created_at", "sent_at", "attempts",
                    "notification_count"]  # fmt: skip
    list_filter = ["status", "kind"]
    list_select_related = ["user"]
    link_lookups = {"user__id__exact": get_user_model}
    search_fields = ["=user__username"]
    search_help_text = _("The digests of the user with exactly this username.")
    fields = readonly_fields = ("user", "kind", "status", "created_at", "lease_until",
                                "attempts", "sent_at", "notification_count")  # fmt: skip
    actions = None
    ordering = ["-pk"]
    sortable_by = ()  # only the primary key orders cheaply
    paginator = LargeTablePaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        # A correlated subquery, run for the page's rows only (a join and GROUP BY would count
        # every digest's rows before the page is cut), along the digest_id index.
        carried = (
            Notification.objects.filter(digest=OuterRef("pk"))
            .order_by()
            .values("digest")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return super().get_queryset(request).annotate(carried=Coalesce(Subquery(carried), 0))

    @admin.display(description=_("notifications"))
    def notification_count(self, digest: Digest) -> Any:
        url = reverse("admin:notifications_notification_changelist")
        count = getattr(digest, "carried", None)
        if count is None:  # a digest not read through get_queryset()
            count = digest.notifications.count()
        return format_html('<a href="{}?digest__id__exact={}">{}</a>', url, digest.pk, count)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PushSubscription)
class PushSubscriptionAdmin(CheckedChangelistAdmin):
    """The browsers users subscribed to Web Push. Read-only: the browsers write them (and the
    push services, by answering that one is gone); staff may delete one, which stops its
    pushes until that browser subscribes again."""

    list_display = ["user", "service", "user_agent", "created_at", "seen_at", "pushed_at"]
    list_select_related = ["user"]
    link_lookups = {"user__id__exact": get_user_model}
    search_fields = ["=user__username"]
    search_help_text = _("The browsers of the user with exactly this username.")
    fields = readonly_fields = ("user", "endpoint", "user_agent", "created_at", "seen_at",
                                "expires_at", "pushed_at")  # fmt: skip
    ordering = ["-pk"]
    sortable_by = ()
    paginator = LargeTablePaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=_("push service"))
    def service(self, subscription: PushSubscription) -> str:
        return urlsplit(subscription.endpoint).hostname or "?"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
