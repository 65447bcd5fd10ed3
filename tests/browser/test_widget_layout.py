"""The widget on a phone and on any screen: the open panel stays inside the viewport (a sheet
across the width under 30em), its preferences view works there, and toasts never cover it.

NOTIFICATIONS_SCREENSHOTS=docs/screenshots saves the phone screenshots of docs/widget.md.
"""

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from playwright.async_api import expect

from notifications import services
from tests.browser import test_widget
from tests.browser.test_widget import connected, create, notify, switch

pytestmark = test_widget.pytestmark
open_widget = test_widget.open_widget  # the fixtures
screenshots = test_widget.screenshots

PHONES = {"360x740": (360, 740), "390x844": (390, 844)}

# Every element of the open panel that shows, whose box leaves the viewport or the panel.
OUTSIDE = """(panel) => {
  const width = document.documentElement.clientWidth;
  const height = window.innerHeight;
  const box = panel.getBoundingClientRect();
  const outside = [];
  if (box.left < 0 || box.top < 0 || box.right > width || box.bottom > height) {
    outside.push(["panel", box.left, box.top, box.right, box.bottom]);
  }
  for (const node of panel.querySelectorAll("*")) {
    const part = node.getBoundingClientRect();
    if (!part.width || !part.height || node.closest(".nw-sr-only")) continue;
    if (part.left < box.left - 0.5 || part.right > box.right + 0.5) {
      outside.push([node.className.baseVal ?? node.className, part.left, part.right]);
    }
  }
  for (const scroller of panel.querySelectorAll(".nw-scroll, .nw-prefs")) {
    if (scroller.scrollWidth > scroller.clientWidth) {
      outside.push(["scrolls sideways", scroller.className]);
    }
  }
  return outside;
}"""


async def an_inbox(user):
    now = timezone.now()
    await create(
        user,
        "Weekly report is ready",
        body="Your numbers for last week are in: visits, sign-ups and revenue.",
        url="/",
        category="digest",
        created_at=now - timedelta(days=2),
    )
    await create(
        user,
        "bob commented on your post “Moving to PostgreSQL 17”",
        body="Nice work! One question about the migration plan.",
        read_at=now,
        category="comments",
        created_at=now - timedelta(hours=3),
    )
    await create(
        user,
        "Disk almost full",
        body="The shared drive is at 92%.",
        level="warning",
        category="ops",
        created_at=now - timedelta(minutes=12),
    )
    await create(
        user,
        "Payment failed",
        body="The card ending in 4242 was declined.",
        level="error",
        url="/",
        category="billing",
        created_at=now - timedelta(minutes=3),
    )


def phone(size):
    width, height = PHONES[size]
    return {
        "viewport": {"width": width, "height": height},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    }


@pytest.mark.parametrize("size", list(PHONES))
async def test_on_a_phone_the_panel_fits_the_screen_and_its_preferences_save(
    open_widget, alice, size, screenshots
):
    await an_inbox(alice)
    page = await open_widget(alice, **phone(size), reduced_motion="reduce")
    await connected(page)
    await notify(alice, "Invoice paid", body="Invoice #7 was paid.", level="success", url="/")
    await expect(page.locator(".nw-toast")).to_be_visible()
    await page.locator(".nw-bell").click()
    panel = page.locator(".nw-panel")
    await expect(page.locator(".nw-item")).to_have_count(5)
    assert await panel.evaluate(OUTSIDE) == []
    box = await panel.bounding_box()
    width = PHONES[size][0]
    assert (round(box["x"]), round(box["width"])) == (8, width - 16)  # a sheet across the screen
    await expect(page.locator(".nw-toast")).to_have_count(0)  # the panel lists it
    await page.screenshot(path=screenshots / f"phone-{width}.png")

    await page.get_by_role("button", name="Preferences").click()
    billing = switch(page, "billing")
    await expect(billing).to_be_visible()
    assert await panel.evaluate(OUTSIDE) == []
    await billing.uncheck()
    await switch(page, "Warning").uncheck()
    await page.screenshot(path=screenshots / f"phone-{width}-preferences.png")
    save = page.get_by_role("button", name="Save")
    await save.click()  # a real click: Playwright fails it if anything covers the button
    await expect(page.locator(".nw-prefs-status")).to_have_text("Your preferences were saved.")
    saved = await database_sync_to_async(services.preferences)(alice)
    assert (saved["muted_categories"], saved["muted_levels"]) == (["billing"], ["warning"])


async def test_from_320_to_430_px_wide_the_open_panel_stays_on_the_screen(open_widget, alice):
    await an_inbox(alice)
    page = await open_widget(alice, viewport={"width": 430, "height": 800}, is_mobile=True)
    await connected(page)
    await page.locator(".nw-bell").click()
    panel = page.locator(".nw-panel")
    for width in (430, 414, 400, 390, 375, 360, 340, 320):
        await page.set_viewport_size({"width": width, "height": 800})  # the panel follows
        await expect(panel).to_be_visible()
        assert await outside_once_placed(panel) == [], width
    await page.get_by_role("button", name="Preferences").click()
    await expect(switch(page, "billing")).to_be_visible()
    assert await panel.evaluate(OUTSIDE) == []


async def outside_once_placed(panel, attempts=40):
    """What sticks out of the screen once the widget has placed the panel: it does so on the
    window's resize event, which may come after set_viewport_size() returns."""
    for _ in range(attempts):
        outside = await panel.evaluate(OUTSIDE)
        if not outside:
            break
        await asyncio.sleep(0.05)
    return outside


def overlap(a, b):
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


async def toasts_on(page, panel_box):
    """The boxes of the toasts on screen that meet the open panel."""
    covering = []
    for toast in await page.locator(".nw-toast").all():
        box = await toast.bounding_box()
        if box and overlap(box, panel_box):
            covering.append(box)
    return covering


@pytest.mark.parametrize(
    "viewport",
    [(360, 740), (390, 844), (430, 932), (768, 1024), (1280, 720), (1000, 600)],
    ids=lambda size: "x".join(map(str, size)),
)
async def test_toasts_never_cover_the_open_panel(open_widget, alice, viewport):
    width, height = viewport
    await create(alice, *[f"Older notification {n}" for n in range(1, 13)], body="Some words.")
    page = await open_widget(
        alice, viewport={"width": width, "height": height}, reduced_motion="reduce"
    )
    await connected(page)
    await notify(alice, "Shown before the panel opens")
    await expect(page.locator(".nw-toast")).to_have_count(1)
    await page.locator(".nw-bell").click()  # a tall panel: twelve and more
    panel = page.locator(".nw-panel")
    await expect(page.locator(".nw-item")).to_have_count(13)
    assert await toasts_on(page, await panel.bounding_box()) == []

    for batch in (["One more"], ["Three", "at", "once"]):
        for title in batch:
            await notify(alice, title)
        await expect(page.locator(".nw-item").first).to_contain_text(batch[-1])  # listed
        assert await toasts_on(page, await panel.bounding_box()) == [], batch
        if width >= 1280:  # room beside the panel
            await expect(page.locator(".nw-toast").last).to_contain_text(batch[-1])
    if width <= 480:  # no room beside a sheet across the screen: the panel lists them at its
        # top, and says so
        await expect(page.locator(".nw-toast")).to_have_count(0)
        await expect(page.locator(".nw-announcer")).to_have_text("1 new notification")

    await page.get_by_role("button", name="Preferences").click()  # the panel changes size
    assert await toasts_on(page, await panel.bounding_box()) == []
    await page.keyboard.press("Escape")
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await notify(alice, "With the panel closed")
    await expect(page.locator(".nw-toast").last).to_contain_text("With the panel closed")
