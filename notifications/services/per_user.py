"""One row per user of an audience, in one ``INSERT ... SELECT``: how ``notify()`` writes a
notification and ``follow_all()`` a follow, whatever the number of users, with no user id in
Python."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from django.core.exceptions import EmptyResultSet
from django.db import connections, models

AUDIENCE_USER_ID = "audience_user_id"


def audience_sql(
    audience: models.QuerySet, using: str, *, distinct: bool = True
) -> tuple[str, tuple[Any, ...]] | None:
    """The audience's user ids (as ``audience_user_id``) as a subquery's SQL and parameters;
    None when it is empty by construction (``none()``, ``pk__in=[]``), which has no SQL."""
    ids = audience.order_by().values(**{AUDIENCE_USER_ID: models.F("pk")})
    try:
        return (ids.distinct() if distinct else ids).query.get_compiler(using).as_sql()
    except EmptyResultSet:
        return None


def insert_per_user(
    model: type[models.Model],
    user_field: str,
    values: dict[str, Any],
    audience: models.QuerySet,
    using: str,
    *,
    returning: tuple[str, ...] = (),
    skip_existing: bool = False,
) -> list[tuple[Any, ...]]:
    """Write a row of ``model`` for each user of ``audience`` (in ``user_field``), the other
    columns from ``values`` (field name to the value of its attribute, ``content_type_id``'s for
    a foreign key). ``skip_existing``: a row a unique constraint already holds is left as it
    is (``ON CONFLICT DO NOTHING``; SQLite and PostgreSQL). Returns the ``returning`` columns of
    the rows written."""
    source = audience_sql(audience, using)
    if source is None:
        return []
    return insert_from(
        model, user_field, values, source, using, returning=returning, skip_existing=skip_existing
    )


def insert_from(
    model: type[models.Model],
    user_field: str,
    values: dict[str, Any],
    source: tuple[str, Sequence[Any]],
    using: str,
    *,
    returning: tuple[str, ...] = (),
    skip_existing: bool = False,
) -> list[tuple[Any, ...]]:
    """:func:`insert_per_user` from an audience's SQL and parameters (``audience_sql``'s)."""
    connection = connections[using]
    (before, after), fields = _insert_head(
        model, user_field, tuple(values), using, connection.vendor, returning, skip_existing
    )
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    source_sql, source_params = source
    with connection.cursor() as cursor:
        cursor.execute(before + source_sql + after, (*params, *source_params))
        return [tuple(row) for row in cursor.fetchall()] if returning else []


@functools.cache
def _insert_head(
    model: type[models.Model],
    user_field: str,
    names: tuple[str, ...],
    using: str,
    vendor: str,
    returning: tuple[str, ...],
    skip_existing: bool,
) -> tuple[tuple[str, str], list[models.Field[Any, Any]]]:
    """The statement before and after the audience's SQL, the same for every send."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = cast("list[models.Field[Any, Any]]", [meta.get_field(name) for name in names])
    columns = ", ".join(quote(cast(str, field.column)) for field in fields)
    if vendor == "postgresql":
        # In a SELECT list PostgreSQL types a bare parameter as text, which an integer or JSON
        # column then refuses: say what each one is.
        placeholders = ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in fields)
    else:
        placeholders = ", ".join("%s" for _ in fields)
    user_column = quote(cast(str, cast(models.Field, meta.get_field(user_field)).column))
    before = (
        f"INSERT INTO {quote(meta.db_table)} ({user_column}, {columns}) "
        f"SELECT audience.{quote(AUDIENCE_USER_ID)}, {placeholders} FROM ("
    )
    after = ") AS audience"
    if skip_existing:
        # "WHERE 1 = 1": SQLite would otherwise read ON CONFLICT as part of the SELECT's join.
        after += " WHERE 1 = 1 ON CONFLICT DO NOTHING"
    if returning:
        after += " RETURNING " + ", ".join(quote(column) for column in returning)
    return (before, after), fields
