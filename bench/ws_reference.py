"""The bare reference: a plain ``websockets`` server sending the app's notification JSON.

``python -m bench.ws_reference --port P --database-url URL``; driven over stdin by
``bench.websocket`` (JSON lines, see ``bench.ws_common``). Clients connect to ``/ws?u=<index>``
and get a ``hello``; then, on command:

- ``burst``: ``rounds`` times, one message to each of ``users`` (``per_user``: its own id and
  ``json.dumps`` per socket, as one notification per user must be) or one frame to all of them
  (``broadcast``: ``websockets.broadcast``, serialised once);
- ``paced``: ``count`` single notifications, one every ``interval`` s, each first committed as one
  row to PostgreSQL (autocommit ``INSERT ... RETURNING id``) and then sent to one client: the least
  a "store, then push" design can do. ``data.t`` holds the clock when the insert started, so the
  client measures store-to-receipt as it measures ``notify()``-to-receipt for the app.

No compression (daphne negotiates none) and keepalive pings as daphne's (20 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.ws_common import notification_message, raise_nofile, reply, serve_commands

HELLO = json.dumps({"type": "hello", "unread_count": 0, "unseen_count": 0, "last_id": None})
TABLE = "wsbench_reference"


class Reference:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.sockets: dict[int, ServerConnection] = {}
        self.next_id = 0
        self.database: Any = None

    async def handler(self, websocket: ServerConnection) -> None:
        query = parse_qs(urlsplit(websocket.request.path).query)
        index = int(query["u"][0])
        self.sockets[index] = websocket
        try:
            await websocket.send(HELLO)
            async for _ in websocket:  # the benchmark's clients send nothing
                pass
        finally:
            if self.sockets.get(index) is websocket:
                del self.sockets[index]

    def _message(self, data: dict[str, Any], created_at: str) -> str:
        self.next_id += 1
        return json.dumps(notification_message(self.next_id, data, created_at, self.next_id))

    async def command(self, command: dict[str, Any]) -> dict[str, Any] | None:
        name = command["cmd"]
        if name == "quit":
            return None
        if name == "burst":
            return await self.burst(
                command["mode"], command["users"], command["rounds"], command["tag"]
            )
        if name == "paced":
            return await self.paced(
                command["users"], command["count"], command["interval"], command["tag"]
            )
        if name == "sockets":
            return {"sockets": len(self.sockets)}
        raise ValueError(f"unknown command {name!r}")

    def _connections(self, users: list[int]) -> list[ServerConnection]:
        missing = [u for u in users if u not in self.sockets]
        if missing:
            raise RuntimeError(f"{len(missing)} of the users are not connected, e.g. {missing[:5]}")
        return [self.sockets[u] for u in users]

    async def burst(self, mode: str, users: list[int], rounds: int, tag: str) -> dict[str, Any]:
        connections = self._connections(users)
        t0 = time.monotonic()
        created_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        for round_ in range(rounds):
            data = {"t": time.monotonic(), "b": tag, "round": round_}
            if mode == "broadcast":
                broadcast(connections, self._message(data, created_at))
            elif mode == "per_user":
                for websocket in connections:
                    await websocket.send(self._message(data, created_at))
            else:
                raise ValueError(f"unknown mode {mode!r}")
        return {"t0": t0, "t_end": time.monotonic()}

    async def paced(
        self, users: list[int], count: int, interval: float, tag: str
    ) -> dict[str, Any]:
        connections = self._connections(users)
        durations = []
        start = time.monotonic()
        for k in range(count):
            delay = start + k * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t0 = time.monotonic()
            data = {"t": t0, "b": tag, "seq": k}
            async with self.database.cursor() as cursor:
                await cursor.execute(
                    f"INSERT INTO {TABLE} (recipient, data) VALUES (%s, %s) RETURNING id,"
                    " created_at",
                    (users[k % len(users)], json.dumps(data)),
                )
                nid, created = await cursor.fetchone()
            message = notification_message(
                nid, data, created.isoformat().replace("+00:00", "Z"), nid
            )
            await connections[k % len(connections)].send(json.dumps(message))
            durations.append(time.monotonic() - t0)
        return {"t0": start, "t_end": time.monotonic(), "durations": durations}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    raise_nofile()
    import psycopg

    reference = Reference(args.database_url)
    reference.database = await psycopg.AsyncConnection.connect(
        args.database_url, autocommit=True, connect_timeout=10
    )
    await reference.database.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, recipient integer NOT NULL,"
        " title text NOT NULL DEFAULT '', data jsonb NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    try:
        async with serve(
            reference.handler,
            args.host,
            args.port,
            compression=None,
            ping_interval=20,
            ping_timeout=30,
            max_size=2**20,
        ):
            reply({"ready": True, "port": args.port})
            commands = asyncio.ensure_future(serve_commands(reference.command))
            await asyncio.wait([commands, stop], return_when=asyncio.FIRST_COMPLETED)
            commands.cancel()
    finally:
        await reference.database.close()


if __name__ == "__main__":
    asyncio.run(main())
