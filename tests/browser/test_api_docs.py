"""The API's documentation page works without the internet: Swagger UI (/api/docs/) comes from
our static files (drf-spectacular-sidecar, pinned in pyproject.toml), not from a CDN.

Every request to another host than the test server's is blocked and recorded: the page must
render the schema's operations all the same, and ask for nothing outside. (ReDoc is left out:
its page loads Google Fonts and its bundle a logo from its own CDN.)
"""

from urllib.parse import urlsplit

import pytest
from django.test import Client
from playwright.async_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture
def operations():
    """(METHOD, path) of every operation in the served schema."""
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


@pytest.fixture
async def offline_page(chromium, base_url):
    """A page whose requests to any host but the test server's are aborted, and the list of
    those requests."""
    context = await chromium.new_context(base_url=base_url)
    outside: list[str] = []

    async def only_local(route):
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_local)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    yield page, outside
    await context.close()


async def test_swagger_ui_lists_every_operation_offline(offline_page, operations):
    page, outside = offline_page
    response = await page.goto("/api/docs/")
    assert response.ok
    blocks = page.locator(".opblock")
    await expect(blocks).to_have_count(len(operations))
    shown = set()
    for index in range(len(operations)):
        block = blocks.nth(index)
        method = await block.locator(".opblock-summary-method").inner_text()
        path = await block.locator(".opblock-summary-path").get_attribute("data-path")
        shown.add((method.strip().upper(), path))
    assert shown == operations
    assert outside == []


async def test_the_docs_assets_are_served_from_our_static_files(offline_page):
    page, _ = offline_page
    await page.goto("/api/docs/")
    sources = await page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
    assert sources and all(urlsplit(src).path.startswith("/static/") for src in sources)
