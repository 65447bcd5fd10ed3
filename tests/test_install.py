"""A stranger's install: docs/install.md, followed block by block in a fresh virtualenv.

The page is the single source of the steps. Its fenced code blocks are read in order and applied
as they stand; the info string after the fence says how:

- ``python title="PATH" append`` (or ``django``...): add the block to the end of PATH;
- ``... title="PATH" replace``: write the block as PATH, replacing what was there;
- ``sh``: run each line in the project's folder, in the new virtualenv;
- ``sh checkout``: the same in the checkout of the repository beside it
  (``../django-live-notifications``: a copy of this one's files, as ``git ls-files`` lists them);
- ``sh server``: start the command in the background, stopping the previous one;
- ``sh send``: run it, then check the notification reached the user (stored, counted, and
  resumed over the WebSocket);
- ``sh send live``: the same, and it must also arrive on an open WebSocket as it is sent.

A block with any other info string fails the test, so that nothing on the page goes untried.
Only one thing differs from what a person types, and unavoidably: the server listens on a free
port instead of 8000. The wheel is built and installed as the page says, from the checkout. The
rest happens as a person signing in would do it: ``createsuperuser``, the admin's login form, a
browser-like WebSocket (session cookie, Origin header). The Redis keys the new project writes
(under its ``KEY_PREFIX``, ``mysite``) are deleted afterwards, those that were there before kept.

Slow (a virtualenv, a build, and an install from the package index), so marked ``install`` and
left out of ``make test``: ``make install-test`` runs it, and so does CI (``.ci/run``), where it
must pass. The two fast checks of the docs below run with every ``make test``.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.conftest import REDIS_URL, redis_reachable, service_missing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC = DOCS / "install.md"
CHECKOUT = "django-live-notifications"  # the checkout's folder, beside the project's
DOC_PORT = "8000"
USERNAME = "admin"
PASSWORD = "install-test-password-0123"
SEND_TITLE = "Hello from the shell"
TIMEOUT = 10  # seconds for any one wait on the server
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass
class Block:
    language: str
    code: str
    title: str = ""
    flags: set[str] = field(default_factory=set)
    line: int = 0

    def __str__(self) -> str:
        return f"docs/install.md:{self.line} ({self.language} {self.title} {sorted(self.flags)})"


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        words = shlex.split(match["info"])
        block = Block(
            language=words[0] if words else "",
            code=match["code"],
            line=text.count("\n", 0, match.start()) + 1,
        )
        for word in words[1:]:
            if word.startswith("title="):
                block.title = word.removeprefix("title=")
            else:
                block.flags.add(word)
        found.append(block)
    return found


def kind(block: Block) -> str:
    """What the test does with a block; fails on a block it would not know how to follow."""
    if block.title and block.flags in ({"append"}, {"replace"}):
        return next(iter(block.flags))
    if block.language == "sh" and not block.title:
        if not block.flags:
            return "run"
        if block.flags == {"checkout"}:
            return "checkout"
        if block.flags == {"server"}:
            return "server"
        if block.flags in ({"send"}, {"send", "live"}):
            return "send"
    pytest.fail(f"{block}: an info string the install test does not know")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stranger:
    """A new virtualenv and a new project, and the commands run in them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.project = root / "site"
        self.project.mkdir()
        self.checkout = root / CHECKOUT
        self.port = free_port()
        self.server: subprocess.Popen | None = None
        self.server_log = root / "server.log"
        self.transcript: list[str] = []
        self.session = ""
        self.live = False  # whether the server's settings share a channel layer with the shell
        environ = {
            name: value
            for name, value in os.environ.items()
            # Nothing of the test suite's own Django, Python path or coverage may leak in.
            if not name.startswith(("DJANGO_", "COVERAGE_", "PYTHON", "VIRTUAL_ENV"))
            and name not in {"DATABASE_URL", "NOTIFICATIONS_REQUIRE_SERVICES"}
        }
        self.env = {
            **environ,
            "VIRTUAL_ENV": str(self.venv),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{environ.get('PATH', '')}",
            "REDIS_URL": REDIS_URL,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }

    # --- commands ------------------------------------------------------------------------------

    def run(
        self,
        command: str,
        *,
        timeout: float = 120,
        env: dict | None = None,
        cwd: Path | None = None,
    ) -> str:
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=cwd or self.project,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = result.stdout + result.stderr
        self.transcript.append(
            f"$ {command}  ({time.monotonic() - started:.1f} s, exit {result.returncode})\n"
            f"{output[-4000:]}"
        )
        assert result.returncode == 0, f"`{command}` failed:\n{self.log()}"
        return output

    def log(self) -> str:
        server = (
            self.server_log.read_text(errors="replace")[-6000:] if self.server_log.exists() else ""
        )
        return "\n".join(self.transcript[-8:]) + f"\n--- server log ---\n{server}"

    def make_venv(self) -> None:
        self.run(f"{shlex.quote(sys.executable)} -m venv {shlex.quote(str(self.venv))}")

    def copy_checkout(self) -> None:
        """The repository's files as a clone would have them: tracked, and new ones not ignored
        (so that a change not yet committed is tested too), without .venv, dist/ or databases."""
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = ROOT / name
            if source.is_file():  # a file deleted but not yet committed is listed too
                target = self.checkout / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        self.transcript.append(f"copied the checkout to ../{CHECKOUT}")

    def apply(self, block: Block) -> None:
        action = kind(block)
        if action in {"append", "replace"}:
            path = self.project / block.title
            if action == "append":
                assert path.exists(), f"{block}: {path} does not exist to append to"
                path.write_text(path.read_text().rstrip("\n") + "\n\n\n" + block.code)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.code)
            self.transcript.append(f"{action} {block.title}")
            if block.title.endswith("settings.py") and "channels_redis" in block.code:
                if not redis_reachable():
                    service_missing(f"Redis is not reachable at {REDIS_URL}")
                self.live = True
        elif action in {"run", "checkout"}:
            for line in block.code.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    self.run_line(line, cwd=self.checkout if action == "checkout" else None)
        elif action == "server":
            (line,) = [line for line in block.code.splitlines() if line.strip()]
            self.start_server(line, block)
        elif action == "send":
            (line,) = [line for line in block.code.splitlines() if line.strip()]
            self.send(line, live="live" in block.flags)

    def run_line(self, line: str, cwd: Path | None = None) -> None:
        words = shlex.split(line)
        installs = words[:4] == ["python", "-m", "pip", "install"] or "build" in words[:3]
        output = self.run(line, timeout=600 if installs else 120, cwd=cwd)
        if words[-1:] == ["check"]:
            assert "System check identified no issues" in output, output

    # --- the server ----------------------------------------------------------------------------

    def start_server(self, line: str, block: Block) -> None:
        assert f"-p {DOC_PORT}" in line, f"{block}: the server should listen on {DOC_PORT}"
        self.stop_server()
        command = line.replace(f"-p {DOC_PORT}", f"-p {self.port}")
        self.transcript.append(f"$ {command} &")
        with open(self.server_log, "ab") as log:
            self.server = subprocess.Popen(
                shlex.split(command),
                cwd=self.project,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.server.poll() is None, f"the server exited:\n{self.log()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the server did not listen within 30 s:\n{self.log()}")
        if not self.session:
            self.sign_in()

    def stop_server(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(timeout=5)

    # --- a person in a browser -----------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sign_in(self) -> None:
        """``createsuperuser``, then the admin's login form, as a person would."""
        self.run(
            f"python manage.py createsuperuser --noinput --username {USERNAME}"
            " --email admin@example.com",
            env={"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        )
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login = f"{self.base}/admin/login/?next=/admin/"
        with opener.open(login, timeout=TIMEOUT) as response:
            page = response.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[:2000]
        form = {
            "csrfmiddlewaretoken": token[1],
            "username": USERNAME,
            "password": PASSWORD,
            "next": "/admin/",
        }
        with opener.open(login, urllib.parse.urlencode(form).encode(), timeout=TIMEOUT) as response:
            admin_page = response.read().decode()
        cookies = {cookie.name: cookie.value for cookie in jar}
        assert "sessionid" in cookies, f"no session after signing in:\n{admin_page[:2000]}"
        self.session = cookies["sessionid"]
        # The bell is on the admin's pages, and its script is served from the wheel's static files.
        assert "data-notifications-widget" in admin_page, admin_page[:4000]
        script = re.search(r'src="([^"]*notifications/widget\.js)"', admin_page)
        assert script, admin_page[:4000]
        assert "import " in self.get(script[1])  # the ES module, not an error page

    def get(self, path: str) -> str:
        request = urllib.request.Request(
            f"{self.base}{path}", headers={"Cookie": f"sessionid={self.session}"}
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert response.status == 200, response.status
            return response.read().decode()

    def unread_count(self) -> int:
        return json.loads(self.get("/api/notifications/unread-count/"))["unread_count"]

    def socket(self):
        return connect(
            f"ws://127.0.0.1:{self.port}/ws/notifications/",
            additional_headers={"Cookie": f"sessionid={self.session}"},
            origin=f"http://127.0.0.1:{self.port}",
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=2,
        )

    def send(self, line: str, *, live: bool) -> None:
        assert self.server is not None, "a send block before any server block"
        assert not live or self.live, "`send live` needs a shared channel layer (Redis) first"
        asyncio.run(self._send(line, live=live))

    async def _send(self, line: str, *, live: bool) -> None:
        async with self.socket() as ws:
            hello = await receive(ws, "hello")
            before = hello["last_id"] or 0
            await asyncio.to_thread(self.run, line)
            if live:
                message = await receive(ws, "notification")
                assert message["notification"]["title"] == SEND_TITLE, message
                assert message["unread_count"] == hello["unread_count"] + 1, message
        # Stored and counted whatever the channel layer: a new socket's hello, its resume, and
        # the REST count (what the bell shows after a reload) all have it.
        async with self.socket() as ws:
            again = await receive(ws, "hello")
            assert again["unread_count"] == hello["unread_count"] + 1, (hello, again)
            await ws.send(json.dumps({"type": "resume", "after": before}))
            backlog = await receive(ws, "backlog")
            assert [n["title"] for n in backlog["notifications"]] == [SEND_TITLE], backlog
            assert backlog["notifications"][0]["id"] == again["last_id"]
        assert await asyncio.to_thread(self.unread_count) == again["unread_count"]


async def receive(ws, expected_type: str) -> dict:
    """The next message of ``expected_type`` (skipping none: anything else is a failure)."""
    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert message["type"] == expected_type, message
    return message


def test_the_doc_blocks_are_all_known():
    """Every block of docs/install.md is one the install test follows (fast; runs with it)."""
    found = blocks(DOC.read_text())
    kinds = [kind(block) for block in found]
    assert kinds.count("server") >= 1 and kinds.count("send") >= 1, kinds
    assert any("live" in block.flags for block in found)


def test_the_install_step_works_before_a_release():
    """Step 1 builds a wheel from a checkout and installs it: nothing asks an index for the app."""
    found = blocks(DOC.read_text())
    commands = [
        (kind(block), line.split())
        for block in found
        if kind(block) in {"run", "checkout"}
        for line in block.code.splitlines()
        if line.strip()
    ]
    assert ("checkout", ["python", "-m", "build", "--wheel"]) in commands
    installs = [words for _, words in commands if words[:4] == ["python", "-m", "pip", "install"]]
    assert installs[1] == [
        "python", "-m", "pip", "install",
        f"../{CHECKOUT}/dist/django_live_notifications-*.whl",
    ]  # fmt: skip
    assert not any("django-live-notifications" in words for words in installs)


@pytest.fixture
def new_project_keys_removed():
    """The Redis keys the new project writes (its KEY_PREFIX is mysite) go when the test ends;
    keys that were there before it stay."""
    if not redis_reachable():
        yield
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    before = set(client.scan_iter(match="mysite:*"))
    yield
    written = set(client.scan_iter(match="mysite:*")) - before
    if written:
        client.delete(*written)
    client.close()


@pytest.mark.install
def test_a_stranger_follows_docs_install_md(tmp_path, new_project_keys_removed):
    stranger = Stranger(tmp_path)
    started = time.monotonic()
    try:
        stranger.make_venv()
        stranger.copy_checkout()
        for block in blocks(DOC.read_text()):
            stranger.apply(block)
    finally:
        stranger.stop_server()
    steps = "\n".join(entry.splitlines()[0] for entry in stranger.transcript)
    print(f"\ninstall test, {time.monotonic() - started:.0f} s:\n{steps}")
