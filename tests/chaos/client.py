"""The chaos test's WebSocket client: one browser tab that follows the contract to the letter
(docs/websocket.md), and keeps the books the test checks.

Each (re)connect goes to a server chosen at random, as behind a load balancer. After ``hello``
it sends ``resume`` from the newest id it holds (0 when it holds none) and pages the backlog:
with a ``cursor`` in an incomplete ``backlog`` it asks for the next page of the same ``after``;
without one it resumes from the newest id it holds. It drops what it already holds by id, and
after any close it reconnects with jittered backoff (4401 alone ends it). Now and then it
reloads (closes and reconnects), marks what it holds as seen, and, if it is a hostile one, sends
a hostile frame followed by a ``ping`` whose ``pong`` ends the frame's answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.chaos.processes import stamp

SIGNED_OUT = 4401
TOO_MANY_SOCKETS = 4409
RATE_LIMITED = 4429
HELLO_TIMEOUT = 10

# What a hostile client sends: (name, frame, sent as a text frame). Each is bad input (or an odd
# but valid ping) that the server must answer with an `error`, a `pong` or a documented close.
HOSTILE_FRAMES: list[tuple[str, str | bytes, bool]] = [
    ("nested_brackets_4k", "[" * 2040 + "]" * 2040, True),
    ("nested_brackets_10k", "[" * 5000 + "]" * 5000, True),
    ("nested_in_ping_id", '{"type": "ping", "id": ' + "[" * 1900 + "]" * 1900 + "}", True),
    ("nested_in_mark_read", '{"type": "mark_read", "ids": ' + "[" * 1900 + "]" * 1900 + "}", True),
    ("nested_objects_600", '{"type": "ping", "id": ' + '{"a":' * 600 + "1" + "}" * 600 + "}", True),
    ("nested_400", '{"type": "ping", "x": ' + "[" * 400 + "]" * 400 + "}", True),
    ("huge_integer_after", '{"type": "resume", "after": ' + "9" * 4000 + "}", True),
    ("huge_float_after", '{"type": "resume", "after": 1e999}', True),
    ("nan_after", '{"type": "resume", "after": NaN}', True),
    ("negative_after", '{"type": "resume", "after": -1}', True),
    ("boolean_after", '{"type": "resume", "after": true}', True),
    ("string_after", '{"type": "resume", "after": "1"}', True),
    ("object_after", '{"type": "resume", "after": {}}', True),
    ("huge_integer_ids", '{"type": "mark_read", "ids": [' + "9" * 3000 + "]}", True),
    ("float_ids", '{"type": "mark_read", "ids": [1e308, -0.0]}', True),
    ("string_ids", '{"type": "mark_read", "ids": "1,2"}', True),
    ("too_many_ids", '{"type": "mark_read", "ids": [' + ",".join(["1"] * 600) + "]}", True),
    ("missing_up_to", '{"type": "mark_seen"}', True),
    ("huge_ping_id", '{"type": "ping", "id": ' + "7" * 1000 + "}", True),
    ("object_ping_id", '{"type": "ping", "id": {"x": 1}}', True),
    ("nul_bytes", "\x00\x00\x00", True),
    ("nul_in_json", '{"type": "ping\\u0000", "id": "a\\u0000b"}', True),
    ("lone_surrogate_escaped", '{"type": "\\ud800", "id": "\\udfff"}', True),
    ("lone_surrogate_ping_id", '{"type": "ping", "id": "\\ud800"}', True),
    ("lone_surrogate_raw", b'{"type": "ping", "id": "\xed\xa0\x80"}', True),
    ("binary_frame", b"\x00\x01\x02\xff", False),
    ("binary_json", b'{"type": "ping"}', False),
    ("empty_frame", "", True),
    ("not_an_object", '["resume", 0]', True),
    ("number_type", '{"type": 42}', True),
    ("list_type", '{"type": ["resume"]}', True),
    ("unknown_type", '{"type": "' + "x" * 3000 + '"}', True),
]


@dataclass
class Probe:
    kind: str
    marker: str
    errors: list[str] = field(default_factory=list)


class ContractClient:
    def __init__(
        self,
        name: str,
        user_id: int,
        session: str,
        ports: Sequence[int],
        rng: random.Random,
        *,
        reloads: bool = False,
        hostile: bool = False,
    ) -> None:
        self.name = name
        self.user_id = user_id
        self.session = session
        self.ports = ports
        self.random = rng
        self.reloads = reloads
        self.hostile = hostile
        self.hostile_active = False  # the test turns hostile frames on and off
        self.stopping = asyncio.Event()
        self.greeted = asyncio.Event()  # set at the first hello
        # The books.
        self.held: dict[int, str] = {}  # id -> title, of every notification shown
        self.first_via: dict[int, str] = {}  # id -> live | resume | gap
        self.shown: list[int] = []  # every id shown, in order: a correct client shows each once
        self.content_changed: list[int] = []  # ids that came again with another title
        self.redelivered: Counter[str] = Counter()  # frames for ids already held, by path
        self.closes: Counter[str] = Counter()  # server closes and failed connects, by code
        self.probes: Counter[tuple[str, str]] = Counter()  # (hostile kind, outcome)
        self.protocol_errors: list[str] = []
        self.connects = 0
        self.hellos = 0
        self.resumes = 0
        self.pages_without_progress = 0
        self.late = 0  # shown after a higher id was: a transaction that committed late
        self.signed_out = False
        self.connected = False
        self.connected_at_stop = False
        self.history: collections.deque[str] = collections.deque(maxlen=300)
        # The socket's state.
        self.attempt = 0
        self.resume_after = 0
        self.probe: Probe | None = None
        self.probe_count = 0
        self.kinds: list[tuple[str, str | bytes, bool]] = []

    # --- running -------------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.history.append(f"{stamp()} {text}")

    async def run(self) -> None:
        while not self.stopping.is_set():
            port = self.random.choice(self.ports)
            outcome = await self.session_once(port)
            if self.stopping.is_set():
                break
            if outcome == SIGNED_OUT:
                self.signed_out = True
                self.note("signed out (4401): stops, as the contract says")
                break
            delay = self.backoff(outcome)
            self.attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)

    def backoff(self, outcome: int | str | None) -> float:
        if outcome == "reload":
            return self.random.uniform(0, 0.3)
        if outcome in (TOO_MANY_SOCKETS, RATE_LIMITED):  # "a long backoff", "backoff"
            return self.random.uniform(1.0, 3.0)
        return self.random.uniform(0, min(3.0, 0.25 * 2**self.attempt))  # full jitter

    def stop(self) -> None:
        self.connected_at_stop = self.connected
        self.stopping.set()

    async def session_once(self, port: int) -> int | str | None:
        """One connection, from connect to close; returns the close code (or why it ended)."""
        self.connects += 1
        self.note(f"connect :{port}")
        try:
            async with connect(
                f"ws://127.0.0.1:{port}/ws/notifications/",
                additional_headers={"Cookie": f"sessionid={self.session}"},
                origin=f"http://127.0.0.1:{port}",
                proxy=None,
                open_timeout=5,
                close_timeout=1,
            ) as ws:
                return await self.converse(ws)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
            self.closed_by_server(code)
            return code
        except (OSError, InvalidHandshake, TimeoutError) as error:
            reason = f"connect failed: {type(error).__name__}"
            self.closes[reason] += 1
            self.note(f"{reason} {error}")
            self.finish_probe("connect failed")
            return reason
        finally:
            self.connected = False

    def closed_by_server(self, code: int) -> None:
        self.closes[str(code)] += 1
        self.note(f"closed {code}")
        self.finish_probe(f"close:{code}")

    async def converse(self, ws: Any) -> int | str | None:
        deadline = time.monotonic() + HELLO_TIMEOUT
        while True:
            raw = await asyncio.wait_for(ws.recv(), max(0.0, deadline - time.monotonic()))
            hello = json.loads(raw)
            if hello.get("type") == "hello":
                break
            # docs/websocket.md: hello comes first. Flag it, and keep the books right anyway.
            self.protocol_errors.append(f"before hello: {str(hello)[:300]}")
            self.note(f"before hello: {hello.get('type')}")
            await self.receive(ws, raw)
        self.hellos += 1
        self.greeted.set()
        self.attempt = 0
        self.connected = True
        self.note(f"hello last_id={hello.get('last_id')}")
        await self.resume(ws)
        now = time.monotonic()
        reload_at = now + self.random.uniform(5, 15) if self.reloads else float("inf")
        seen_at = now + self.random.uniform(5, 12)
        probe_at = now + self.random.uniform(0.5, 2.0)
        while True:
            wait = max(0.0, min(reload_at, seen_at, probe_at) - time.monotonic())
            try:
                raw = await asyncio.wait_for(ws.recv(), min(wait, 0.5))
            except TimeoutError:
                raw = None
            if raw is not None:
                await self.receive(ws, raw)
            now = time.monotonic()
            if self.stopping.is_set():
                await ws.close()
                return "stopped"
            if now >= reload_at and self.probe is None:
                self.note("reload")
                await ws.close()
                return "reload"
            if now >= seen_at:
                seen_at = now + self.random.uniform(5, 12)
                if self.held:
                    await ws.send(json.dumps({"type": "mark_seen", "up_to": max(self.held)}))
            if now >= probe_at:
                probe_at = now + self.random.uniform(1.5, 3.0)
                if self.hostile and self.hostile_active and self.probe is None:
                    await self.send_probe(ws)

    async def resume(self, ws: Any, cursor: Any = None) -> None:
        message: dict[str, Any] = {"type": "resume"}
        if cursor is None:
            self.resume_after = max(self.held, default=0)
            message["after"] = self.resume_after
        else:
            message.update(after=self.resume_after, cursor=cursor)
        self.resumes += 1
        await ws.send(json.dumps(message))

    async def receive(self, ws: Any, raw: str | bytes) -> None:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "notification":
            self.accept(message["notification"], "gap" if message.get("recovered") else "live")
        elif kind == "backlog":
            new = sum(self.accept(n, "resume") for n in message["notifications"])
            complete = message["complete"]
            cursor = message.get("cursor")
            self.note(
                f"backlog after={self.resume_after} rows={len(message['notifications'])} "
                f"new={new} complete={complete} cursor={cursor}"
            )
            if not complete:
                if not new and cursor is None:
                    self.pages_without_progress += 1
                await self.resume(ws, cursor)
        elif kind == "error":
            if self.probe is not None:
                self.probe.errors.append(message.get("code", "?"))
            else:
                self.protocol_errors.append(f"unexpected error: {message}")
                self.note(f"error {message}")
        elif kind == "pong":
            if self.probe is not None and message.get("id") == self.probe.marker:
                errors = self.probe.errors
                self.finish_probe(f"error:{errors[0]}" if errors else "answered")
        elif kind == "changed":
            pass
        else:
            self.protocol_errors.append(f"unexpected message: {str(message)[:200]}")

    def accept(self, notification: dict[str, Any], via: str) -> bool:
        """Show a notification unless it is held already; True if it was new."""
        nid, title = notification["id"], notification["title"]
        if nid in self.held:
            self.redelivered[via] += 1
            if self.held[nid] != title:
                self.content_changed.append(nid)
            return False
        if self.held and nid < max(self.held):
            self.late += 1
        self.held[nid] = title
        self.first_via[nid] = via
        self.shown.append(nid)
        return True

    # --- hostile frames ------------------------------------------------------------------

    async def send_probe(self, ws: Any) -> None:
        if not self.kinds:
            self.kinds = list(HOSTILE_FRAMES)
            self.random.shuffle(self.kinds)
        kind, frame, text = self.kinds.pop()
        self.probe_count += 1
        self.probe = Probe(kind, f"probe-{self.probe_count}")
        self.note(f"hostile {kind}")
        await ws.send(frame, text=text)
        await ws.send(json.dumps({"type": "ping", "id": self.probe.marker}))

    def finish_probe(self, outcome: str) -> None:
        if self.probe is not None:
            self.probes[(self.probe.kind, outcome)] += 1
            self.note(f"hostile {self.probe.kind}: {outcome}")
            self.probe = None
