"""Browser tests: Debian's Chromium, headless, driven by Playwright, against a real daphne.

The tests are async (Playwright's sync API runs an event loop in the test's thread, where Django
refuses database calls and async_to_sync refuses to run). ``open_page(user)`` opens a page
signed in as ``user`` in a browser context of its own: two contexts share no cookies, like two
browsers. CI installs Chromium (`.ci/run`); elsewhere the tests skip when it is missing, unless
NOTIFICATIONS_REQUIRE_SERVICES=1.
"""

import os
from pathlib import Path

import pytest
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


@database_sync_to_async
def session_key(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
async def chromium():
    if not Path(CHROMIUM).exists():
        service_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        service_missing("playwright is not installed")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
def base_url(server) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def open_page(chromium, base_url, same_redis_as_server, close_sync_thread_connection):
    """``await open_page(user, path="/")``: a page of the live server, signed in as ``user``
    (anonymous for None), in a browser context of its own."""

    async def open_(user=None, path="/", **context_options):
        context = await chromium.new_context(base_url=base_url, **context_options)
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
