"""A real SMTP server of the run (aiosmtpd), in a process of its own: it accepts every message
and counts them, with the times the first and the last were accepted (``time.monotonic()``,
the same clock in every process of the machine).

Commands (JSON lines, ``bench.lib.processes``): ``count``, ``reset``. Ready: ``{"port": ...}``.
"""

import asyncio
import time
from typing import Any

from aiosmtpd.smtp import SMTP

from bench.lib.processes import HOST, free_port, serve_commands


class Counter:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> dict[str, Any]:
        self.messages, self.bytes, self.first, self.last = 0, 0, 0.0, 0.0
        return {"reset": True}

    # aiosmtpd's handler hook, once per message.
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.monotonic()
        self.first = self.first or now
        self.messages, self.bytes, self.last = (
            self.messages + 1,
            self.bytes + len(envelope.content),
            now,
        )
        return "250 Message accepted for delivery"

    def count(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
        }


async def main() -> None:
    counter, port = Counter(), free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(counter, hostname="bench.invalid"), HOST, port
    )

    async def handle(command: dict[str, Any]) -> dict[str, Any]:
        return counter.count() if command["cmd"] == "count" else counter.reset()

    async with server:
        await serve_commands(handle, {"port": port})


if __name__ == "__main__":
    asyncio.run(main())
