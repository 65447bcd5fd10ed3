"""What one or more ``notify()`` calls wrote: shared content and the (id, recipient) of each row."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..models import Notification


@dataclass(frozen=True)
class _Part:
    prototype: Notification  # the content every row of this part shares; no id, no recipient
    rows: tuple[tuple[int, int], ...]  # (notification id, recipient id)


class NotificationBatch(Sequence[Notification]):
    """The notifications written, without holding a model instance per row.

    A send to 100,000 users holds 100,000 pairs of integers; iterating builds each
    ``Notification`` from the shared content on demand, with no query.
    """

    def __init__(self, parts: Sequence[_Part] = ()) -> None:
        self._parts = tuple(part for part in parts if part.rows)

    @classmethod
    def of(cls, prototype: Notification, rows: Sequence[tuple[int, int]]) -> NotificationBatch:
        return cls([_Part(prototype, tuple(rows))])

    @classmethod
    def merge(cls, batches: Sequence[NotificationBatch]) -> NotificationBatch:
        return cls([part for batch in batches for part in batch._parts])

    @property
    def ids(self) -> list[int]:
        return [nid for part in self._parts for nid, _ in part.rows]

    @property
    def recipient_ids(self) -> list[int]:
        """Every recipient once, in order of first appearance."""
        return list(dict.fromkeys(rid for part in self._parts for _, rid in part.rows))

    def parts(self) -> Iterator[tuple[Notification, tuple[tuple[int, int], ...]]]:
        """(shared content, rows) for each notify() call: lets a consumer of the batch do its
        per-content work once instead of once per row."""
        for part in self._parts:
            yield part.prototype, part.rows

    def __len__(self) -> int:
        return sum(len(part.rows) for part in self._parts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
            if index < 0:
                raise IndexError("NotificationBatch index out of range")
        for part in self._parts:
            if index < len(part.rows):
                return _materialize(part.prototype, *part.rows[index])
            index -= len(part.rows)
        raise IndexError("NotificationBatch index out of range")

    def __iter__(self) -> Iterator[Notification]:
        for part in self._parts:
            for nid, rid in part.rows:
                yield _materialize(part.prototype, nid, rid)

    def __repr__(self) -> str:
        return f"<NotificationBatch: {len(self)} notifications>"


def _materialize(prototype: Notification, nid: int, recipient_id: int) -> Notification:
    notification = copy.copy(prototype)
    notification._state = copy.copy(prototype._state)
    notification._state.adding = False
    notification._state.fields_cache = dict(prototype._state.fields_cache)
    notification.pk = nid
    notification.recipient_id = recipient_id
    return notification
