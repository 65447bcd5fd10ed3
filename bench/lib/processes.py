"""Processes: the servers and helpers a benchmark starts, waits for, and always stops.

Helpers speak JSON lines: one command per line on their stdin, one answer per line on stdout
(the first, unasked, says they are ready); an exception is answered ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
_running: set[Process] = set()  # main() stops what is left of them
_readers = ThreadPoolExecutor(thread_name_prefix="bench-reader")


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why (with a log where one helps)."""


def main(run: Callable[[], int]) -> None:
    """Run a benchmark, and exit with its status: SIGTERM and SIGHUP end it as Ctrl-C does,
    whatever it started is stopped, and a BenchError is printed rather than raised."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: sys.exit(128 + signum))
    try:
        sys.exit(run())
    except BenchError as error:
        print(f"\nBENCHMARK FAILED: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        stop_all()
        _readers.shutdown(wait=False, cancel_futures=True)


def stop_all() -> None:
    """Stop every process started and still running."""
    for process in list(_running):
        process.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.partition("VmRSS:")[2].split()[0]) * 1024


def raise_nofile() -> int:
    """The open-file limit raised to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def django_env(database_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of the run's Django processes: this checkout's ``bench.settings`` (the
    demo's), DEBUG off, the run's database and Redis, the pub/sub layer unless ``extra`` says."""
    env = {k: v for k, v in os.environ.items() if k not in ("CHANNEL_LAYER", "REDIS_URL")}
    env.update(PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="bench.settings", DJANGO_DEBUG="0")
    env.update(ALLOWED_HOSTS=f"{HOST},localhost", DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    return {**env, **({"REDIS_URL": redis_url} if redis_url else {}), **extra}


def become_django(database_url: str, redis_url: str | None = None, **extra: str) -> None:
    """Make this process one of the run's Django processes, set up."""
    import django

    for key in ("CHANNEL_LAYER", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update(django_env(database_url, redis_url, **extra))
    django.setup()


def run_checked(args: list[str], env: dict[str, str]) -> str:
    """Run a command to its end (ten minutes at most); its output, or a BenchError."""
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise BenchError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Process:
    """A process of the run, its output in ``log``: a server, waited for until it listens on
    ``port``, or (no port) a helper answering JSON lines."""

    def __init__(self, args: list, env: dict, log: Path, port: int = 0, cwd: Path = ROOT) -> None:
        self.args, self.env, self.log_path, self.port, self.cwd = args, env, log, port, cwd
        self.lock = threading.Lock()

    def start(self, seconds: float = 60) -> Process:
        """Start it, and wait until the server listens, or for the helper's ready line."""
        with self.log_path.open("w") as log:
            pipes = {"stdout": log, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}
            if not self.port:
                pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": log}
            pipes |= {"cwd": self.cwd, "env": self.env, "text": True}
            self.process = subprocess.Popen(self.args, **pipes)
        self.pid = self.process.pid
        _running.add(self)
        deadline = time.monotonic() + seconds
        while self.port and time.monotonic() < deadline:
            self.check("at start")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return self
            time.sleep(0.1)
        if self.port:
            raise BenchError(f"nothing listens on port {self.port}\n{self.log()}")
        self.ready = self.answer(seconds)
        return self

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def call(self, command: dict[str, Any], seconds: float = 600) -> dict[str, Any]:
        assert self.process.stdin is not None
        with self.lock:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            return self.answer(seconds)

    def answer(self, seconds: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            line = _readers.submit(self.process.stdout.readline).result(seconds)
        except TimeoutError:
            raise BenchError(f"no answer in {seconds:g} s\n{self.log()}") from None
        answer = json.loads(line or '{"error": "it exited"}')
        if "error" in answer:
            raise BenchError(f"{answer['error']}\n{self.log()}")
        return answer

    def check(self, when: str = "during the run") -> None:
        if self.process.poll() is not None:
            raise BenchError(f"{self.args[:3]} exited ({self.process.poll()}) {when}\n{self.log()}")

    def stop(self) -> None:
        """End a helper's input (it quits), then terminate, then kill, while it runs; a server
        (no input) is terminated at once."""
        if self in _running:
            asks = [self.process.terminate, self.process.kill]
            if self.process.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    self.process.stdin.close()
                asks.insert(0, lambda: None)
            for ask in asks:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    ask()
                    self.process.wait(10)
                    break
            _running.discard(self)

    def log(self, limit: int = 5000) -> str:
        text = self.log_path.read_text(errors="replace")[-limit:] or "(empty)"
        return f"--- {self.log_path.name} ---\n{text}\n--- end of {self.log_path.name} ---"


def daphne(
    env: dict, log: Path, app: str = "project.asgi:application", seconds: float = 60, **where: Path
) -> Process:
    """A daphne of the run, started (listening within ``seconds``): ours, or hq's (``where``:
    its ``executable``, ``cwd``)."""
    port = free_port()
    command = [str(where.get("executable", BIN / "daphne")), "-b", HOST, "-p", str(port), app]
    return Process(command, env, log, port, where.get("cwd", ROOT)).start(seconds)


ASGI_SERVERS = ("daphne", "uvicorn")


def asgi_server(
    kind: str, env: dict, log: Path, app: str = "project.asgi:application", seconds: float = 60
) -> Process:
    """A server of the run, started (listening within ``seconds``): daphne, or uvicorn with
    wsproto (its legacy `websockets` mode waits on each slow client; wsproto does not)."""
    if kind == "daphne":
        return daphne(env, log, app, seconds)
    if not (BIN / "uvicorn").exists() or not _importable("wsproto"):
        raise BenchError(f"uvicorn or wsproto is missing: {BIN / 'pip'} install uvicorn wsproto")
    port = free_port()
    command = [str(BIN / "uvicorn"), "--host", HOST, "--port", str(port), "--ws", "wsproto"]
    return Process([*command, "--lifespan", "off", app], env, log, port).start(seconds)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --- the helper's side ------------------------------------------------------------------------


async def serve_commands(handle: Callable[[dict], Awaitable[dict]], ready: dict) -> None:
    """Answer commands from stdin until its end, one at a time."""
    reader = asyncio.StreamReader(limit=2**26)
    protocol = asyncio.StreamReaderProtocol(reader)
    await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, sys.stdin)
    print(json.dumps(ready), flush=True)
    while line := await reader.readline():
        try:
            answer = await handle(json.loads(line))
        except Exception as error:
            answer = {"error": f"{error!r}\n{traceback.format_exc()}"}
        print(json.dumps(answer), flush=True)
