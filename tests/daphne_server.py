"""A real daphne process for the end-to-end tests: started on a free port, stopped for sure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database a connection's settings point at (the test database once
    pytest-django has set it up)."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if settings_dict["ENGINE"] == "django.db.backends.postgresql":
        user = settings_dict.get("USER") or ""
        if settings_dict.get("PASSWORD"):
            user += f":{settings_dict['PASSWORD']}"
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"
    raise NotImplementedError(f"no e2e support for {settings_dict['ENGINE']}")


class DaphneServer:
    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.args = args
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            str(DAPHNE),
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            *self.args,
            "project.asgi:application",
        ]

    def start(self, timeout: float = 20) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"daphne exited with {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"daphne did not listen on port {self.port} within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self, limit: int = 20_000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


class ShowLogOnFailure:
    """A plugin that appends daphne's output to the report of every failing test of a module."""

    def __init__(self, server: DaphneServer, module: str) -> None:
        self.server = server
        self.module = module

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.failed and item.module.__name__ == self.module:
            report.sections.append(("daphne output", self.server.log()))
