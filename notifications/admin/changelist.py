"""The admin's changelists, checked: their query string and their selection reach a query only
when a query can take them.

Django's changelist runs what a URL or a posted form says, as it says it: any lookup on a local
field (``?title__regex=(``), a date hierarchy year past 9999, a NUL byte (which PostgreSQL refuses
in any text), an action's selection of "²". Each of those was a 500 here. This module answers
them as Django answers a bad filter (the unfiltered list, with a message), a lookup it does not
allow (a 400), or an action without a selection (the list again, with a message).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections, models
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from ..models import is_primary_key
from .forms import shortened


class CheckedChangeList(ChangeList):
    """Django's changelist, with filter values that no query can take refused like any other bad
    filter (Django then shows the unfiltered list), rather than failing in the database: a NUL
    byte (PostgreSQL refuses it in any text), a year past 9999 or an out-of-range month in the
    date hierarchy (Django's own check lets OverflowError through), a link's id that is no id."""

    model_admin: CheckedChangelistAdmin

    def get_filters(self, request: HttpRequest) -> Any:
        params = self.get_filters_params()
        for name, values in params.items():
            if any("\x00" in value for value in values):
                raise IncorrectLookupParameters(f"{name}: a NUL byte")
        for name, related in self.model_admin.link_lookups.items():
            if any(not is_primary_key(related(), value) for value in params.get(name, [])):
                raise IncorrectLookupParameters(f"{name}: not an id")
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as error:
            raise IncorrectLookupParameters(error) from error


class CheckedChangelistAdmin(admin.ModelAdmin):
    """A changelist whose query string and selection are checked before they reach a query.

    The query string: only the lookups its filters, its date hierarchy and ``link_lookups`` make.

    Django lets a URL name any lookup on a local field (``?title__regex=(``) and runs it: an
    invalid pattern, a JSON lookup SQLite lacks, a range of one value or an id past 2**63 on
    SQLite were 500s, and a regex or a scan of the whole table costs what the URL wants. Other
    lookups are refused as Django refuses a lookup it does not allow: a 400.
    """

    #: Lookups a link may name besides the filters' own, with the model their value is an id of.
    link_lookups: dict[str, Callable[[], type[models.Model]]] = {}

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup in self.link_lookups:
            return True
        return request is not None and lookup in self.filter_parameters(request)

    def filter_parameters(self, request: HttpRequest) -> set[str]:
        """The query-string parameters of the list filters and the date hierarchy."""
        names = set()
        if self.date_hierarchy:
            names |= {f"{self.date_hierarchy}__{part}" for part in ("year", "month", "day")}
        item: Any
        for item in self.get_list_filter(request):
            if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                names.add(cast(str, item.parameter_name))  # its lookups() would cost a query
                continue
            if isinstance(item, type):  # another ListFilter
                spec = item(request, {}, self.model, self)
            else:
                field_path, create = item if isinstance(item, list | tuple) else (item, None)
                field = get_fields_from_path(self.model, field_path)[-1]
                create = create or admin.FieldListFilter.create
                spec = create(field, request, {}, self.model, self, field_path=field_path)
            names.update(name for name in spec.expected_parameters() or () if name)
        return names

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CheckedChangeList

    def response_action(
        self, request: HttpRequest, queryset: models.QuerySet, *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        # Django filters by the selected ids as they were posted: "²" raised ValueError.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        malformed = [value for value in selected if not is_primary_key(self.model, value)]
        if malformed:
            self.message_user(
                request,
                _("Not ids of %(name)s: %(values)s.")
                % {
                    "name": self.opts.verbose_name_plural,
                    "values": ", ".join(f"“{shortened(value)}”" for value in malformed[:5]),
                },
                messages.WARNING,
            )
            return None  # Django then shows the list again
        return super().response_action(request, queryset, *args, **kwargs)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters:
            # Django answers with the unfiltered list; say why it is unfiltered.
            names = sorted({name for name in request.GET if name != "e"})
            self.message_user(
                request,
                _("The list could not be filtered by %(names)s, so it shows everything.")
                % {"names": ", ".join(f"“{shortened(name)}”" for name in names[:5])},
                messages.ERROR,
            )
            raise


class LargeTablePaginator(Paginator):
    """A paginator that never counts a whole large table.

    Unfiltered on PostgreSQL, the count is the planner's estimate (``pg_class.reltuples``, kept
    fresh by autovacuum); otherwise it counts at most ``exact_count_limit + 1`` rows, so a filter
    that matches millions costs a bounded scan and shows as "limit + 1".
    """

    exact_count_limit = 10_000

    @cached_property
    def count(self) -> int:
        queryset = cast(models.QuerySet, self.object_list)
        if not queryset.query.where:
            estimate = _estimated_rows(queryset)
            if estimate is not None and estimate > self.exact_count_limit:
                return estimate
        return queryset.order_by().values("pk")[: self.exact_count_limit + 1].count()


def _estimated_rows(queryset: models.QuerySet) -> int | None:
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1 (PostgreSQL 14+) or 0 until the table is first vacuumed or analysed: no estimate yet.
    return int(row[0]) if row and row[0] > 0 else None


class RecentValuesFilter(admin.SimpleListFilter):
    """A filter by the values of ``field`` seen among the newest rows.

    The admin's default (``SELECT DISTINCT``) reads the whole table; the newest rows, walked
    backwards along the primary key, name the values in use at a bounded cost.
    """

    field = ""
    sample_size = 5_000

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        recent = model_admin.get_queryset(request).order_by("-pk").values_list(self.field)
        values = {value for (value,) in recent[: self.sample_size] if value}
        if self.value():
            values.add(self.value())
        return [(value, value) for value in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset
