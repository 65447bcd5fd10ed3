"""The chaos test's processes: sender processes it commands over a pipe, and a pytest plugin that
shows every process's log (and the fault log) in the report of a failing run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, Server


def stamp(moment: float | None = None) -> str:
    """A wall-clock time as the processes' log lines show it."""
    moment = time.time() if moment is None else moment
    return time.strftime("%H:%M:%S", time.localtime(moment)) + f".{int(moment * 1000) % 1000:03d}"


class FaultLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, text: str) -> None:
        line = f"{stamp()} {text}"
        with self.lock:
            self.lines.append(line)
            with open(self.path, "a") as log:
                log.write(line + "\n")


class SenderProcess:
    """``python -m tests.chaos.sender``, restarted (as a new incarnation) when told to."""

    def __init__(
        self,
        index: int,
        seed: int,
        users: list[int],
        groups: list[int],
        env: dict[str, str],
        log_path: Path,
    ) -> None:
        self.index = index
        self.seed = seed
        self.users = users
        self.groups = groups
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log_path = log_path
        self.incarnation = -1
        self.events: list[dict[str, Any]] = []  # every report of every incarnation
        self.process: subprocess.Popen | None = None
        self.ready = threading.Event()
        self.expected_exit = False  # set when told to die or stop

    def start(self, timeout: float = 30) -> None:
        self.incarnation += 1
        self.ready.clear()
        self.expected_exit = False
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.sender", "--index", str(self.index),
                 "--incarnation", str(self.incarnation), "--seed", str(self.seed),
                 "--users", ",".join(map(str, self.users)),
                 "--groups", ",".join(map(str, self.groups))],
                cwd=ROOT, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log, text=True, bufsize=1,
            )  # fmt: skip
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self.ready.wait(timeout):
            self.kill()
            pytest.fail(f"sender {self.index} was not ready within {timeout} s:\n{self.log()}")

    def _read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with open(self.log_path, "a") as log:
                log.write(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.events.append(event)
            if event.get("event") == "ready":
                self.ready.set()

    def command(self, **command: Any) -> bool:
        """Send a command; False if the process is gone."""
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.expected_exit = True
        self.command(cmd="stop")
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log(self, limit: int = 5000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


# What is worth reading in a server's log when a run fails (the rest is one line per event).
INTERESTING = re.compile(
    r"Traceback|Error|Exception|WARNING|ERROR|chaos: injected|event=drop|complete=False|"
    r"^\s+File |^\S*Error"
)


class ShowChaosLogsOnFailure:
    """Appends the fault log, the servers' notable lines and the senders' logs to the report of
    a failing test of ``module``; the full logs stay in pytest's tmp directory."""

    def __init__(
        self,
        module: str,
        faults: FaultLog,
        servers: list[Server],
        senders: list[SenderProcess],
    ) -> None:
        self.module = module
        self.faults = faults
        self.servers = servers
        self.senders = senders

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if not (report.failed and item.module.__name__ == self.module):
            return
        report.sections.append(("chaos: fault log", "\n".join(self.faults.lines)))
        for index, server in enumerate(self.servers):
            lines = [line for line in server.log(10**9).splitlines() if INTERESTING.search(line)]
            report.sections.append(
                (
                    f"chaos: {server.name} {index} (port {server.port}), notable lines of "
                    f"{server.log_path}",
                    "\n".join(lines[-200:]),
                )
            )
        for sender in self.senders:
            errors = [
                line
                for line in sender.log(10**9).splitlines()
                if not re.search(r'"event": "(commit|rollback)"', line)
            ]
            report.sections.append(
                (f"chaos: sender {sender.index}, {sender.log_path}", "\n".join(errors[-100:]))
            )
