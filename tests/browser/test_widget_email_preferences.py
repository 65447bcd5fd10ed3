"""The preferences view of a site that sends email (EMAIL_DIGESTS on in the daphne process): an
in-app and an email switch for each level and category, "Never email me", the view opened by the
link in emails (#notifications-preferences), on a phone and in the Django admin.

NOTIFICATIONS_SCREENSHOTS=<directory> keeps the screenshots.
"""

import json

import pytest
from channels.db import database_sync_to_async
from playwright.async_api import expect

from notifications import services
from tests.browser import test_widget
from tests.browser.test_widget import connected, create, preferences_view, row_headers, switch
from tests.browser.test_widget_layout import OUTSIDE, phone
from tests.live import serving

pytestmark = test_widget.pytestmark
open_widget = test_widget.open_widget  # the fixtures
screenshots = test_widget.screenshots

EMAIL_SETTINGS = {
    "EMAIL_DIGESTS": True,
    "BASE_URL": "http://testserver",
    "UNMUTABLE_CATEGORIES": ["security"],
}
FRAGMENT = "#notifications-preferences"
LOCKED = "Always shown in the app: this site does not let you mute it."


@pytest.fixture(scope="module")
def server(request, django_db_setup, tmp_path_factory):
    """tests.live's daphne, with EMAIL_SETTINGS."""
    with serving(request, tmp_path_factory, EMAIL_SETTINGS) as daphne:
        yield daphne


async def an_inbox(user):
    await create(user, "Invoice paid", category="billing")
    await create(user, "Weekly digest", category="digest")
    await create(user, "New sign-in", category="security", level="warning")


async def open_preferences(page):
    await connected(page)
    await page.locator(".nw-bell").click()
    await page.get_by_role("button", name="Preferences").click()
    view = preferences_view(page)
    await expect(switch(view, "Info")).to_be_visible()
    return view


async def saved(page):
    view = preferences_view(page)
    await view.get_by_role("button", name="Save").click()
    await expect(view.get_by_role("status")).to_have_text("Your preferences were saved.")


async def stored_preferences(user):
    return await database_sync_to_async(services.preferences)(user)


def email_switches(view):
    return view.locator('input[data-channel="email"]')


async def test_each_level_and_category_has_an_in_app_and_an_email_switch(open_widget, alice):
    await an_inbox(alice)
    page = await open_widget(alice)
    view = await open_preferences(page)
    for name, rows in (
        ("Levels", ["Info", "Success", "Warning", "Error"]),
        ("Categories", ["billing", "digest", "security"]),
    ):
        table = view.get_by_role("table", name=name)
        header = "Level" if name == "Levels" else "Category"
        await expect(table.get_by_role("columnheader")).to_have_text([header, "In-app", "Email"])
        assert await row_headers(table) == rows
        for row in rows:  # everything is sent, in both channels
            await expect(switch(table, row, "In-app")).to_be_checked()
            await expect(switch(table, row, "Email")).to_be_checked()
    never = view.get_by_role("switch", name="Never email me")
    await expect(never).not_to_be_checked()
    await expect(email_switches(view)).to_have_count(7)


async def test_email_off_for_a_category_and_never_email_me_round_trip(open_widget, alice):
    await an_inbox(alice)
    page = await open_widget(alice)
    view = await open_preferences(page)
    sent = []
    page.on("request", lambda r: r.method == "PUT" and sent.append(r.post_data_json))

    await switch(view, "billing", "Email").uncheck()
    await switch(view, "Info", "Email").uncheck()
    await saved(page)
    email = {"enabled": True, "muted_categories": ["billing"], "muted_levels": ["info"]}
    whole = {"muted_categories": [], "muted_levels": [], "channels": {"email": email}}
    assert sent == [whole]
    push = {"enabled": True, "muted_categories": [], "muted_levels": []}  # untouched
    assert await stored_preferences(alice) == {
        **whole,
        "channels": {"email": email, "push": push},
    }

    await page.reload()
    view = await open_preferences(page)
    await expect(switch(view, "billing", "Email")).not_to_be_checked()
    await expect(switch(view, "billing", "In-app")).to_be_checked()
    await expect(switch(view, "Info", "Email")).not_to_be_checked()
    await expect(switch(view, "digest", "Email")).to_be_checked()

    never = view.get_by_role("switch", name="Never email me")
    await never.check()
    for box in await email_switches(view).all():  # what they would send, out of reach
        await expect(box).to_be_disabled()
    await expect(switch(view, "digest", "Email")).to_be_checked()
    await expect(switch(view, "digest", "In-app")).to_be_enabled()
    await saved(page)
    preferences = await stored_preferences(alice)
    assert preferences["channels"]["email"] == {
        "enabled": False,
        "muted_categories": ["billing"],  # kept for when email is on again
        "muted_levels": ["info"],
    }

    await page.reload()
    view = await open_preferences(page)
    never = view.get_by_role("switch", name="Never email me")
    await expect(never).to_be_checked()
    await expect(switch(view, "digest", "Email")).to_be_disabled()
    await never.uncheck()
    await expect(switch(view, "digest", "Email")).to_be_enabled()
    await expect(switch(view, "billing", "Email")).not_to_be_checked()
    await saved(page)
    assert (await stored_preferences(alice))["channels"]["email"]["enabled"] is True


async def test_an_unmutable_categorys_email_switch_works_while_its_in_app_one_is_locked(
    open_widget, alice
):
    await an_inbox(alice)
    page = await open_widget(alice)
    view = await open_preferences(page)
    in_app = switch(view, "security", "In-app")
    email = switch(view, "security", "Email")
    await expect(in_app).to_be_disabled()
    await expect(in_app).to_be_checked()
    await expect(in_app).to_have_accessible_description(LOCKED)
    await expect(email).to_be_enabled()

    await email.uncheck()
    await saved(page)
    preferences = await stored_preferences(alice)
    assert preferences["muted_categories"] == []
    assert preferences["channels"]["email"]["muted_categories"] == ["security"]
    await page.reload()
    view = await open_preferences(page)
    await expect(switch(view, "security", "Email")).not_to_be_checked()
    await expect(switch(view, "security", "In-app")).to_be_checked()


async def test_the_link_in_emails_opens_the_preferences_view(open_widget, alice):
    await an_inbox(alice)
    page = await open_widget(alice, path=f"/{FRAGMENT}")  # BASE_URL + PREFERENCES_PATH
    await connected(page)
    view = preferences_view(page)
    await expect(view).to_be_visible()
    await expect(page.locator(".nw-panel")).to_be_visible()
    await expect(page.get_by_role("button", name="Preferences")).to_have_attribute(
        "aria-expanded", "true"
    )
    await expect(view.get_by_role("heading", name="Notification preferences")).to_be_focused()
    await expect(switch(view, "billing", "Email")).to_be_visible()

    await page.keyboard.press("Escape")  # closed, the view drops the fragment...
    await expect(view).to_be_hidden()
    assert page.url.endswith("/")
    await page.keyboard.press("Escape")
    await expect(page.locator(".nw-panel")).to_be_hidden()
    await page.evaluate(f"location.hash = '{FRAGMENT}'")  # ...so that a link to it opens it again
    await expect(view).to_be_visible()
    await expect(switch(view, "billing", "Email")).to_be_visible()


async def test_the_view_passes_axe_with_email_on(open_widget, alice, axe_script):
    await an_inbox(alice)
    for scheme in ("light", "dark"):
        page = await open_widget(alice, bypass_csp=True, color_scheme=scheme)
        view = await open_preferences(page)
        await view.get_by_role("switch", name="Never email me").check()  # disabled switches too
        await page.add_script_tag(path=str(axe_script))
        result = await page.evaluate(
            "axe.run(document.querySelector('.nw'), {resultTypes: ['violations']})"
        )
        violations = [
            {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"][:3]]}
            for v in result["violations"]
        ]
        assert violations == [], f"{scheme}: " + json.dumps(violations, indent=2)


async def test_the_switches_work_by_keyboard_alone(open_widget, alice):
    await create(alice, "Invoice paid", category="billing")
    page = await open_widget(alice)
    view = await open_preferences(page)
    focused = test_widget.focused_in_widget(page)
    await expect(page.get_by_role("button", name="Preferences")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(focused).to_have_accessible_name("Never email me")
    order = [f"{name} {channel}" for name in ("Info", "Success", "Warning", "Error", "billing")
             for channel in ("In-app", "Email")]  # fmt: skip
    order.append("security Email")  # its in-app switch is locked: Tab skips it
    for name in order:
        await page.keyboard.press("Tab")
        await expect(focused).to_have_accessible_name(name)
        if name.startswith("billing"):
            await page.keyboard.press("Space")  # off
            await expect(focused).not_to_be_checked()
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Save")
    await page.keyboard.press("Enter")
    await expect(view.get_by_role("status")).to_have_text("Your preferences were saved.")
    preferences = await stored_preferences(alice)
    assert preferences["muted_categories"] == ["billing"]
    assert preferences["channels"]["email"]["muted_categories"] == ["billing"]


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
async def test_at_360_px_the_view_fits_the_screen(open_widget, alice, locale, screenshots):
    await an_inbox(alice)
    long_name = "a-category-with-a-name-long-enough-to-wrap-on-a-phone-screen-xx"
    await create(alice, "Something else", category=long_name)
    page = await open_widget(alice, **phone("360x740"), locale=locale, reduced_motion="reduce")
    await connected(page)
    await page.locator(".nw-bell").click()
    await page.locator(".nw-prefs-button").click()
    panel = page.locator(".nw-panel")
    await expect(page.locator(".nw-prefs tbody tr")).to_have_count(4 + 4)
    assert await panel.evaluate(OUTSIDE) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=screenshots / f"email-preferences-360-{locale}.png")
    last = page.locator('.nw-prefs input[data-channel="email"]').last
    await last.click()  # a real click: Playwright fails it if anything covers the switch
    await expect(last).not_to_be_checked()
    await page.locator(".nw-prefs-save").click()

    async def check():
        preferences = await stored_preferences(alice)
        return preferences["channels"]["email"]["muted_categories"] == ["security"]

    check.__doc__ = "security's email is off in the database"
    await test_widget.eventually(check)


@pytest.mark.parametrize("size", [(1100, 700), (360, 740)], ids=["desktop", "phone"])
async def test_in_the_django_admin_the_view_fits_and_passes_axe(
    open_widget, make_user, size, screenshots, axe_script
):
    staff = await database_sync_to_async(make_user)("staff", is_staff=True, is_superuser=True)
    await an_inbox(staff)
    width, height = size
    page = await open_widget(staff, path="/admin/", viewport={"width": width, "height": height})
    view = await open_preferences(page)
    await switch(view, "digest", "Email").uncheck()
    panel = page.locator(".nw-panel")
    assert await panel.evaluate(OUTSIDE) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await page.add_script_tag(path=str(axe_script))
    result = await page.evaluate(
        "axe.run(document.querySelector('.nw'), {resultTypes: ['violations']})"
    )
    assert [v["id"] for v in result["violations"]] == []
    await page.mouse.move(0, 0)
    await page.screenshot(path=screenshots / f"email-preferences-admin-{width}.png")
    await saved(page)
    preferences = await stored_preferences(staff)
    assert preferences["channels"]["email"]["muted_categories"] == ["digest"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_on_a_desktop_the_view_fits_beside_the_bell(open_widget, alice, scheme, screenshots):
    await an_inbox(alice)
    page = await open_widget(alice, viewport={"width": 1100, "height": 800}, color_scheme=scheme)
    view = await open_preferences(page)
    await switch(view, "digest", "Email").uncheck()
    await switch(view, "Info", "In-app").uncheck()
    await page.mouse.move(0, 0)
    assert await page.locator(".nw-panel").evaluate(OUTSIDE) == []
    await page.screenshot(path=screenshots / f"email-preferences-desktop-{scheme}.png")
    await view.get_by_role("switch", name="Never email me").check()
    await page.screenshot(path=screenshots / f"email-preferences-desktop-{scheme}-never.png")


async def test_an_email_only_change_is_announced_with_the_email_channel(open_widget, alice):
    await an_inbox(alice)
    page = await open_widget(alice)
    await page.evaluate(
        "window.heard = []; document.addEventListener('notifications:preferences',"
        " (event) => heard.push(event.detail))"
    )
    view = await open_preferences(page)
    await switch(view, "billing", "Email").uncheck()
    await saved(page)
    await saved(page)  # unchanged: said once
    assert await page.evaluate("heard") == [
        {
            "mutedCategories": [],
            "mutedLevels": [],
            "email": {"enabled": True, "mutedCategories": ["billing"], "mutedLevels": []},
        }
    ]
