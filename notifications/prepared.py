"""Statements the ORM builds once per database and shape, then runs with each call's values.

Building a QuerySet and compiling it to SQL costs a tenth of a millisecond or more per filter;
``notify()`` to one user built its insert and the pushed counts anew on every call, about half a
send's time for statements whose text never changes. A :class:`Prepared` statement is built once
with a marker standing for each value (a value of the right type that nothing else in the
statement holds) and remembers where the markers came out among the parameters; each call then
puts its own values there. The QuerySet stays the one definition of the query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections

# What a Slot's prepare is given: the call's value and the database connection.
Prepare = Callable[[Any, Any], Any]


def _as_is(value: Any, connection: Any) -> Any:
    return value


@dataclass(frozen=True)
class Slot:
    """One value of the statement: the ``marker`` the build is given in its place (or a
    function making it, called at the build: a datetime naive or not as ``USE_TZ`` says), and
    how a call's value becomes the parameter (as the ORM would have prepared it for that
    field)."""

    marker: Any
    prepare: Prepare = _as_is


class Prepared:
    """``build(using, **markers)`` returns the SQL and parameters of the statement, built with a
    marker for each value given; which values a call gives is the statement's shape (a call
    without ``category`` builds a statement without that filter). Each marker must come out as
    parameters equal to ``slot.prepare(marker)``, as often as the statement uses it; any other
    parameter is a constant of that shape."""

    def __init__(self, build: Callable[..., tuple[str, Sequence[Any]]], **slots: Slot) -> None:
        self._build = build
        self._slots = slots
        self._built: dict[tuple[str, ...], tuple[str, tuple[Any, ...], tuple[str | None, ...]]]
        self._built = {}

    def sql(self, using: str, **values: Any) -> tuple[str, tuple[Any, ...]]:
        """The statement's SQL for the shape of ``values``, and their parameters."""
        connection = connections[using]
        key = (using, connection.vendor, *values)
        built = self._built.get(key)
        if built is None:  # two threads may both build it: the same, whichever is kept
            built = self._built[key] = self._compile(using, list(values), connection)
        sql, constants, where = built
        given = {
            name: self._slots[name].prepare(value, connection) for name, value in values.items()
        }
        return sql, tuple(
            constants[n] if name is None else given[name] for n, name in enumerate(where)
        )

    def _compile(
        self, using: str, names: list[str], connection: Any
    ) -> tuple[str, tuple[Any, ...], tuple[str | None, ...]]:
        given = {name: self._slots[name].marker for name in names}
        given = {name: marker() if callable(marker) else marker for name, marker in given.items()}
        sql, params = self._build(using, **given)
        markers = {name: self._slots[name].prepare(given[name], connection) for name in names}
        where = tuple(
            next((name for name, marker in markers.items() if _same(param, marker)), None)
            for param in params
        )
        if missing := [name for name in names if name not in where]:
            raise ValueError(f"prepared statement: no parameter holds the marker of {missing}")
        return sql, tuple(params), where


def _same(param: Any, marker: Any) -> bool:
    return type(param) is type(marker) and param == marker
