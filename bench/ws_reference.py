"""The bare reference of ``bench.websocket`` (``python -m bench.ws_reference PORT DATABASE_URL``):
``websockets`` serving the app's JSON to ``/ws?u=<index>``. ``burst``: ``rounds`` messages to each
socket of ``span`` (``json.dumps`` per socket, or ``broadcast``); ``paced``: ``count`` times a
row committed to PostgreSQL, then sent: the least a "store, then push" design can do.
"""

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.lib.processes import serve_commands

# The content of every notification of the benchmark, in the app (notify()) and here.
CONTENT = {"title": "Bench notification", "category": "bench", "url": "/bench/"}
CONTENT["body"] = "Something happened, and you should know about it."
HELLO = json.dumps({"type": "hello", "unread_count": 0, "unseen_count": 0, "last_id": None})
TABLE = "wsbench_reference"


def message(nid: int, data: dict[str, Any], created_at: str) -> str:
    """The consumer's ``notification`` message (docs/websocket.md), as the app would send it."""
    notification = {"id": nid, **CONTENT, "level": "info", "data": data, "created_at": created_at}
    notification |= dict.fromkeys(("actor", "target", "read_at", "seen_at", "archived_at"))
    frame = {"type": "notification", "notification": notification}
    return json.dumps(frame | {"unread_count": nid, "unseen_count": nid})


class Reference:
    def __init__(self, database: psycopg.AsyncConnection) -> None:
        self.database = database
        self.sockets: dict[int, ServerConnection] = {}
        self.next_id = 0

    async def handler(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        index = int(parse_qs(urlsplit(websocket.request.path).query)["u"][0])
        self.sockets[index] = websocket
        try:
            await websocket.send(HELLO)
            async for _ in websocket:  # the clients send nothing
                pass
        finally:
            if self.sockets.get(index) is websocket:
                del self.sockets[index]

    async def command(self, command: dict[str, Any]) -> dict[str, Any]:
        sockets = [self.sockets[index] for index in range(*command["span"])]  # all connected
        tag, t0 = command["tag"], time.monotonic()
        if command["cmd"] == "burst":
            created_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            for round_ in range(command["rounds"]):
                data = {"t": time.monotonic(), "b": tag, "round": round_}
                if command["broadcast"]:
                    self.next_id += 1
                    broadcast(sockets, message(self.next_id, data, created_at))
                    continue
                for websocket in sockets:
                    self.next_id += 1
                    await websocket.send(message(self.next_id, data, created_at))
            return {"t0": t0, "t_end": time.monotonic()}
        durations = []
        for k in range(command["count"]):
            await asyncio.sleep(t0 + k * command["interval"] - time.monotonic())
            start = time.monotonic()
            data = {"t": start, "b": tag, "seq": k}
            cursor = await self.database.execute(
                f"INSERT INTO {TABLE} (recipient, data) VALUES (%s, %s) RETURNING id, created_at",
                (k % len(sockets), json.dumps(data)),
            )
            nid, created = await cursor.fetchone()  # type: ignore[misc]
            created_at = created.isoformat().replace("+00:00", "Z")
            await sockets[k % len(sockets)].send(message(nid, data, created_at))
            durations.append(time.monotonic() - start)
        return {"t0": t0, "t_end": time.monotonic(), "durations": durations}


async def main(port: int, database_url: str) -> None:
    database = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    await database.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, recipient integer NOT NULL,"
        " title text NOT NULL DEFAULT '', data jsonb NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    reference = Reference(database)
    options = {"compression": None, "ping_interval": 20, "ping_timeout": 30, "max_size": 2**20}
    async with serve(reference.handler, "127.0.0.1", port, **options):
        await serve_commands(reference.command, {"ready": True, "port": port})
    await database.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
