"""Gap detection: a notification that reached the table by any path (a push the layer lost, a
sender that died right after COMMIT, a row written by another program) reaches every connected
socket of its user within ``GAP_CHECK_SECONDS``, without a reconnect.

Once per half period, per process (not per socket), the node asks the database, by the database's
clock, for the rows of its connected users written since the previous check began, less the late-
commit margin (``RESUME_MARGIN_SECONDS``); a socket that was not sent one of them gets it now, as a
``notification`` frame marked ``"recovered": true``. Each socket remembers the ids it was sent
lately (pushes, backlogs, recoveries) to tell. docs/realtime.md has the argument that no row can
be missed; in short: a row that commits after a socket was greeted (``hello``) commits after
the previous check began (or after the greeting, for a socket newer than that check), and was
written at most one margin before it committed, so it falls in the next check's window. What
committed before the greeting, the client's resume brings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from channels.db import database_sync_to_async
from django.db import DatabaseError

from ..conf import app_settings
from ..models import Notification, database_now, id_list
from ..protocol import encode, notification_frame, serialize
from .presence import PROCESS

if TYPE_CHECKING:
    from .node import Node, Socket

logger = logging.getLogger("notifications")
events = logging.getLogger("notifications.events")

# Clocks: the database's and this process's may run at slightly different rates, and a greeting
# is timed here while windows are measured there. This much slack covers both.
_SLACK_SECONDS = 2.0


class RecentIds:
    """The ids one socket was sent lately, with when (monotonic), and which of them it was sent
    in a ``notification`` frame: a push or a recovery, which carry the user's counts. A backlog
    carries none."""

    __slots__ = ("sent", "framed")

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.framed: set[int] | None = None  # made on the first push: an idle socket has none

    def add(self, ids: Iterable[int], *, framed: bool = False) -> None:
        now = time.monotonic()
        if not framed:
            for nid in ids:
                self.sent[nid] = now
            return
        if self.framed is None:
            self.framed = set()
        in_frames = self.framed
        for nid in ids:
            self.sent[nid] = now
            in_frames.add(nid)

    def __contains__(self, nid: object) -> bool:
        return nid in self.sent

    def unsent(self, frames: list[str], ids: list[int]) -> list[str]:
        """Of a push's frames (one per id; a frame without ids, ``changed``, always goes), those
        whose notification the socket was not sent in a frame yet, all of them remembered as
        sent from now on. A push can arrive after gap detection recovered its row. One a
        backlog brought is sent all the same: the client drops it by id, and takes its counts,
        which the backlog did not carry."""
        if not ids:
            return frames
        framed = self.framed or ()
        fresh = frames
        if any(nid in framed for nid in ids):
            fresh = [frame for frame, nid in zip(frames, ids, strict=True) if nid not in framed]
        self.add(ids, framed=True)
        return fresh

    def forget(self, ids: Iterable[int]) -> None:
        for nid in ids:
            self.sent.pop(nid, None)
            if self.framed is not None:
                self.framed.discard(nid)

    def forget_before(self, moment: float) -> None:
        if any(at < moment for at in self.sent.values()):
            self.sent = {nid: at for nid, at in self.sent.items() if at >= moment}
            if self.framed is not None:
                self.framed = {nid for nid in self.framed if nid in self.sent} or None


class GapDetector:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.task: asyncio.Task[None] | None = None
        self.checked_at: datetime | None = None  # the database's clock when the last check began

    def ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.checked_at = None  # a new run: its first window reaches back to the first hello
            self.task = self.node.spawn(self._run())

    async def _run(self) -> None:
        while self.node.sockets:
            await asyncio.sleep(app_settings.GAP_CHECK_SECONDS / 2)
            if not self.node.sockets:
                break
            try:
                await self.check()
            except DatabaseError as error:
                # The next check reaches back to the last one that worked.
                logger.warning("notifications: gap detection cannot reach the database: %r", error)
            except Exception:
                logger.exception("notifications: a gap detection check failed")

    async def check(self) -> int:
        """One check; returns how many frames were sent."""
        began = await database_sync_to_async(database_now)()
        began_here = time.monotonic()
        # Which sockets to look after is read after the clock: one greeted later was greeted
        # after `began`, and the next check's window covers everything it can have missed. A
        # socket not greeted yet is left alone: nothing may come before its hello, and what
        # commits before that, its resume brings.
        sockets = {
            user_id: ready
            for user_id, mine in self.node.users.items()
            if (ready := [socket for socket in mine.values() if socket.greeted_at is not None])
        }
        if not sockets:
            return 0
        margin = app_settings.RESUME_MARGIN
        if self.checked_at is not None:
            since = self.checked_at
        else:
            first = min(cast(float, s.greeted_at) for mine in sockets.values() for s in mine)
            since = began - timedelta(seconds=began_here - first + _SLACK_SECONDS)
        rows = await database_sync_to_async(_written_since)(list(sockets), since - margin)
        missing: dict[Socket, list[int]] = {}
        # Every row of the window, every check: the membership test reads the dict directly.
        for nid, user_id in rows:
            for socket in sockets.get(user_id, ()):
                if socket.user_id is not None and nid not in socket.delivered.sent:
                    missing.setdefault(socket, []).append(nid)
        sent = await self._send(missing) if missing else 0
        self.checked_at = began
        horizon = time.monotonic() - _remember_seconds()
        for mine in sockets.values():
            for socket in mine:
                socket.delivered.forget_before(horizon)
        return sent

    async def _send(self, missing: dict[Socket, list[int]]) -> int:
        ids = sorted({nid for nids in missing.values() for nid in nids})
        users = list({socket.user_id for socket in missing if socket.user_id is not None})
        shapes, counts = await database_sync_to_async(_shapes_and_counts)(ids, users)
        sent = 0
        for socket, nids in missing.items():
            # The push may have come while the shapes were read: what it brought is not sent
            # again. What is sent now is remembered first: a push arriving while it is being
            # written is not sent either.
            nids = [nid for nid in sorted(nids) if nid not in socket.delivered]
            socket.delivered.add(nids, framed=True)
            unread, unseen = counts.get(socket.user_id or 0, (0, 0))
            frames = [
                (nid, encode(notification_frame(shapes[nid], unread, unseen, recovered=True)))
                for nid in nids
                if nid in shapes  # deleted or expired since
            ]
            for index, (_, frame) in enumerate(frames):
                try:
                    await socket.send(text_data=frame)
                except Exception as error:  # the socket went away meanwhile
                    # What it was not sent, the next check tries again.
                    socket.delivered.forget(nid for nid, _ in frames[index:])
                    logger.debug("notifications: a recovered notification was not sent: %r", error)
                    break
                sent += 1
        events.info(
            "event=gap process=%s sockets=%d notifications=%d", PROCESS, len(missing), len(ids)
        )
        return sent


def _remember_seconds() -> float:
    """How long a socket must remember an id it was sent: as long as the row can be in a window
    (one margin and two half periods past its writing), with slack."""
    return app_settings.RESUME_MARGIN.total_seconds() + app_settings.GAP_CHECK_SECONDS + 60


def _written_since(user_ids: list[int], moment: datetime) -> list[tuple[int, int]]:
    return list(
        Notification.objects.live()
        .filter(recipient_id__in=id_list(user_ids))
        .inserted_after(moment)
        .order_by()
        .values_list("id", "recipient_id")
    )


def _shapes_and_counts(
    ids: list[int], user_ids: list[int]
) -> tuple[dict[int, dict[str, Any]], dict[int, tuple[int, int]]]:
    rows = Notification.objects.live().filter(id__in=id_list(ids)).with_related()
    shapes = {row.pk: serialize(row) for row in rows}
    return shapes, Notification.objects.counts_by_recipient(user_ids)
