"""A server that accepts TCP connections and never answers: a Redis that hangs."""

from __future__ import annotations

import contextlib
import socket
import threading


class HungServer:
    """Listens on a free port of 127.0.0.1, accepts every connection, reads nothing, answers
    nothing. ``close()`` drops the connections, which frees whoever still waits on one."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, name="hung-server", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self.listener.close()
        self.thread.join(5)
        for connection in self.connections:
            connection.close()
