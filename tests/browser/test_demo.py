"""The demo page in a real browser: a notification sent from another process appears live."""

import pytest
from channels.db import database_sync_to_async
from playwright.async_api import expect

from notifications import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

notify = database_sync_to_async(services.notify)


async def test_demo_page_shows_a_notification_live_as_text(open_page, alice):
    page = await open_page(alice)
    await expect(page.locator("#state")).to_have_text("connected")
    await notify(alice, "<img src=x onerror=alert(1)> hello")
    await expect(page.locator("#live li").first).to_have_text("<img src=x onerror=alert(1)> hello")
    await expect(page.locator("#unread")).to_have_text("1")
    assert await page.locator("#live img").count() == 0


async def test_anonymous_visitor_is_sent_to_sign_in(open_page):
    page = await open_page(None)
    assert "/login/" in page.url
