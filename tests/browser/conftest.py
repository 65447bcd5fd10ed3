"""Browser tests: Debian's Chromium, headless, driven by Playwright, against a real daphne.

The tests are async (Playwright's sync API runs an event loop in the test's thread, where Django
refuses database calls and async_to_sync refuses to run). ``open_page(user)`` opens a page
signed in as ``user`` in a browser context of its own: two contexts share no cookies, like two
browsers. CI installs Chromium (`.ci/run`); elsewhere the tests skip when it is missing, unless
NOTIFICATIONS_REQUIRE_SERVICES=1.

A module with many browser tests can share one Chromium (``module_chromium``, ~1 s saved a test):
its tests then run in the module's event loop (``pytest.mark.asyncio(loop_scope="module")``) and
open their pages with ``page_opener``.
"""

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from django.test import Client

from tests.conftest import service_missing

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As root, in a closed network: no sandbox, and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# axe-core, the accessibility audit, from the npm registry into a cache outside the repository.
AXE_DIR = Path(os.environ.get("AXE_DIR", Path.home() / ".cache" / "notifications-axe"))
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_INSTALL = ["npm", "install", "--prefix", str(AXE_DIR), "--no-audit", "--no-fund", "axe-core@4"]


@database_sync_to_async
def session_key(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        service_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@contextlib.asynccontextmanager
async def launched_chromium():
    require_chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        service_missing("playwright is not installed")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def chromium():
    async with launched_chromium() as browser:
        yield browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_chromium():
    async with launched_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def server(daphne):
    """The browser tests run on daphne alone (tests.live's ``server`` runs on each server)."""
    return daphne


@pytest.fixture
def base_url(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def page_opener(browser, base_url, contexts=None):
    """``await open_(user, path="/", **context_options)``: a page of the live server, signed in
    as ``user`` (anonymous for None), in a browser context of its own (added to ``contexts``)."""

    async def open_(user=None, path="/", **context_options):
        context = await browser.new_context(base_url=base_url, **context_options)
        if contexts is not None:
            contexts.append(context)
        if user is not None:
            await context.add_cookies(
                [{"name": "sessionid", "value": await session_key(user), "url": base_url}]
            )
        page = await context.new_page()
        page.set_default_timeout(5_000)
        if path is not None:
            await page.goto(path)
        return page

    return open_


@pytest.fixture
async def open_page(chromium, base_url, same_redis_as_server, close_sync_thread_connection):
    """``await open_page(user, path="/")``: a page of the live server, signed in as ``user``
    (anonymous for None), in a browser context of its own."""
    return page_opener(chromium, base_url)


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """The path of axe.min.js, installed with npm on first use (``AXE_INSTALL``)."""
    if not AXE_SCRIPT.exists():
        if shutil.which("npm") is None:
            service_missing(f"npm is missing: cannot install axe-core ({' '.join(AXE_INSTALL)})")
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(AXE_INSTALL, capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or not AXE_SCRIPT.exists():
            service_missing(f"npm could not install axe-core: {result.stderr[-2000:]}")
    return AXE_SCRIPT
