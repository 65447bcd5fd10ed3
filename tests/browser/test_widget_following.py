"""Muting a thread in the widget: the item menu ("More actions") of a notification with a target,
its "Mute this thread" and the Undo after it, the preferences view's "Muted threads" with their
Unmute buttons; by keyboard, on a phone, in the Django admin, with axe-core, and what the user
reads when the API says no (404, 429, no network).

NOTIFICATIONS_SCREENSHOTS=<directory> keeps the screenshots.
"""

import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from playwright.async_api import expect

from notifications import services
from notifications.conf import app_settings
from notifications.models import Follow, Notification
from tests.browser import test_widget
from tests.browser.test_widget import connected, focused_in_widget, notify
from tests.browser.test_widget_layout import OUTSIDE, phone

pytestmark = test_widget.pytestmark
open_widget = test_widget.open_widget  # the fixtures
screenshots = test_widget.screenshots

MUTED = "Thread muted: you will get no more notifications about it."
UNMUTED = "Thread unmuted: you will be notified about it again."
NOT_FOUND = "This thread cannot be muted: it may have been deleted."
TOO_MANY = "Too many requests. Please wait a moment and try again."
FAILED = "That did not work. Please try again."

# The open menu's box, and whether it lies inside the viewport and inside the open panel.
MENU_BOX = """(menu) => {
  const box = menu.getBoundingClientRect();
  const panel = menu.closest(".nw-panel").getBoundingClientRect();
  const width = document.documentElement.clientWidth;
  return {
    inViewport: box.left >= 0 && box.top >= 0 && box.right <= width
      && box.bottom <= window.innerHeight,
    inPanel: box.left >= panel.left && box.right <= panel.right && box.top >= panel.top
      && box.bottom <= panel.bottom,
  };
}"""


@database_sync_to_async
def a_thread(name):
    return Group.objects.create(name=name)


@database_sync_to_async
def mute(user, obj):
    return services.mute_object(user, obj)


@database_sync_to_async
def follow(user, obj):
    return services.follow(user, obj)


@database_sync_to_async
def is_muted(user, obj):
    return Follow.objects.of(obj).filter(user=user).muted().exists()


@database_sync_to_async
def rows_of(user):
    return list(Follow.objects.filter(user=user).order_by("id"))


@database_sync_to_async
def received(user, title):
    return Notification.objects.filter(recipient=user, title=title).exists()


@database_sync_to_async
def delete(obj):
    obj.delete()


def item(page, title):
    return page.locator(".nw-item").filter(has_text=title)


def menu_button(where):
    return where.get_by_role("button", name="More actions")


async def open_panel(page):
    await connected(page)
    await page.locator(".nw-bell").click()
    await expect(page.locator(".nw-panel")).to_be_visible()


async def a_threaded_inbox(user):
    """A notification about a thread (a Group) and one about nothing, sent live."""
    roadmap = await a_thread("Roadmap")
    await notify(user, "bob commented on Roadmap", target=roadmap)
    await notify(user, "Your export is ready")
    return roadmap


async def muted_from_the_menu(page, title):
    row = item(page, title)
    await menu_button(row).click()
    await row.get_by_role("menuitem", name="Mute this thread").click()
    await expect(row.locator(".nw-item-note-text")).to_contain_text(MUTED)
    return row


async def arrives_after(page, user, title):
    """Sends an unthreaded notification and waits for it: whatever was sent before it and is
    not listed by then never will be."""
    await notify(user, title)
    await expect(item(page, title)).to_have_count(1)


async def axe(page, axe_script):
    await page.add_script_tag(path=str(axe_script))
    result = await page.evaluate(
        "axe.run(document.querySelector('.nw'), {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"][:3]]}
        for v in result["violations"]
    ]


# --- the item menu ---------------------------------------------------------------------------


async def test_muting_from_the_item_menu_keeps_the_threads_later_notifications_out(
    open_widget, alice
):
    roadmap = await a_threaded_inbox(alice)
    page = await open_widget(alice)
    await open_panel(page)
    threaded = item(page, "bob commented on Roadmap")
    await expect(menu_button(threaded)).to_have_count(1)
    await expect(menu_button(item(page, "Your export is ready"))).to_have_count(0)  # no target
    button = menu_button(threaded)
    await expect(button).to_have_attribute("aria-haspopup", "menu")
    await expect(button).to_have_attribute("aria-expanded", "false")
    await expect(button).to_have_accessible_description("Info: bob commented on Roadmap")

    sent = []
    page.on("request", lambda r: "/subscriptions/" in r.url and sent.append(r))
    statuses = []
    page.on("response", lambda r: "/subscriptions/" in r.url and statuses.append(r.status))
    await button.click()
    await expect(button).to_have_attribute("aria-expanded", "true")
    menu = page.get_by_role("menu")
    await expect(menu).to_have_attribute("id", await button.get_attribute("aria-controls"))
    await expect(menu.get_by_role("menuitem", name="Mute this thread")).to_be_focused()
    await menu.get_by_role("menuitem", name="Mute this thread").click()
    await expect(menu).to_be_hidden()
    await expect(button).to_be_focused()
    note = threaded.locator(".nw-item-note-text")
    await expect(note).to_contain_text(MUTED)
    assert [(r.method, r.url.split("/api/notifications/")[1]) for r in sent] == [
        ("POST", "subscriptions/mute/")
    ]
    assert sent[0].post_data_json == {"object": {"type": "auth.group", "id": str(roadmap.pk)}}
    assert sent[0].headers["x-csrftoken"]
    assert await is_muted(alice, roadmap)

    await notify(alice, "carol commented on Roadmap", target=roadmap)
    await arrives_after(page, alice, "Build passed")
    await expect(item(page, "carol commented on Roadmap")).to_have_count(0)
    assert not await received(alice, "carol commented on Roadmap")
    await button.click()  # muted here: the menu offers the opposite
    await expect(page.get_by_role("menuitem")).to_have_text("Unmute this thread")
    await page.keyboard.press("Escape")

    await threaded.get_by_role("button", name="Undo").click()
    await expect(note).to_have_text(UNMUTED)
    await expect(threaded.get_by_role("button", name="Undo")).to_be_hidden()
    await expect(button).to_be_focused()  # not lost with the Undo button
    assert sent[-1].url.endswith("/subscriptions/unmute/")
    assert sent[-1].post_data_json == {"object": {"type": "auth.group", "id": str(roadmap.pk)}}
    assert not await is_muted(alice, roadmap)
    assert statuses == [201, 204]  # a new row, muted; then gone
    await notify(alice, "dave commented on Roadmap", target=roadmap)
    await expect(item(page, "dave commented on Roadmap")).to_have_count(1)
    await menu_button(item(page, "dave commented on Roadmap")).click()
    await expect(page.get_by_role("menuitem")).to_have_text("Mute this thread")


async def test_unmute_this_thread_from_the_menu_of_another_item_of_it(open_widget, alice):
    roadmap = await a_thread("Roadmap")
    await notify(alice, "First comment", target=roadmap)
    await notify(alice, "Second comment", target=roadmap)
    page = await open_widget(alice)
    await open_panel(page)
    await muted_from_the_menu(page, "Second comment")
    assert await is_muted(alice, roadmap)
    first = item(page, "First comment")
    await menu_button(first).click()
    await first.get_by_role("menuitem", name="Unmute this thread").click()
    await expect(first.locator(".nw-item-note-text")).to_have_text(UNMUTED)
    assert not await is_muted(alice, roadmap)


async def test_the_menu_works_by_keyboard_alone(open_widget, alice):
    roadmap = await a_threaded_inbox(alice)
    page = await open_widget(alice)
    await open_panel(page)
    threaded = item(page, "bob commented on Roadmap")
    button = menu_button(threaded)
    menu = threaded.get_by_role("menu")
    mute_item = menu.get_by_role("menuitem", name="Mute this thread")
    focused = focused_in_widget(page)
    # Tab from the item's link: its two buttons, then the menu button.
    await threaded.get_by_role("button", name="Archive").focus()
    await page.keyboard.press("Tab")
    await expect(button).to_be_focused()

    for key in ("Enter", "Space", "ArrowDown", "ArrowUp"):
        await page.keyboard.press(key)
        await expect(menu).to_be_visible()
        await expect(button).to_have_attribute("aria-expanded", "true")
        await expect(mute_item).to_be_focused()
        await page.keyboard.press("ArrowDown")  # one item: it stays there
        await expect(mute_item).to_be_focused()
        await page.keyboard.press("Escape")  # the menu closes, the panel stays open
        await expect(menu).to_be_hidden()
        await expect(button).to_have_attribute("aria-expanded", "false")
        await expect(button).to_be_focused()
        await expect(page.locator(".nw-panel")).to_be_visible()

    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")  # closes the menu and moves on past it
    await expect(menu).to_be_hidden()
    await expect(focused).not_to_have_attribute("role", "menuitem")
    await expect(button).not_to_be_focused()

    await button.focus()
    await page.keyboard.press("Enter")
    await page.keyboard.press("Enter")  # Mute this thread
    await expect(threaded.locator(".nw-item-note-text")).to_contain_text(MUTED)
    await expect(button).to_be_focused()
    assert await is_muted(alice, roadmap)
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Undo")
    await page.keyboard.press("Enter")
    await expect(threaded.locator(".nw-item-note-text")).to_have_text(UNMUTED)
    await expect(button).to_be_focused()
    assert not await is_muted(alice, roadmap)

    await page.keyboard.press("Escape")  # menu closed: Escape closes the panel, as ever
    await expect(page.locator(".nw-panel")).to_be_hidden()
    await expect(page.locator(".nw-bell")).to_be_focused()


async def test_a_click_elsewhere_closes_the_menu(open_widget, alice):
    await a_threaded_inbox(alice)
    page = await open_widget(alice)
    await open_panel(page)
    button = menu_button(item(page, "bob commented on Roadmap"))
    await button.click()
    await expect(page.get_by_role("menu")).to_be_visible()
    await page.locator(".nw-panel-title").click()
    await expect(page.get_by_role("menu")).to_be_hidden()
    await expect(button).to_have_attribute("aria-expanded", "false")
    await button.click()
    await button.click()  # the button toggles it
    await expect(page.get_by_role("menu")).to_be_hidden()


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"status": 404, "json": {"detail": "No such object."}}, NOT_FOUND),
        ({"status": 429, "json": {"detail": "Request was throttled."}}, TOO_MANY),
        ({"status": 500, "body": "<h1>Server Error</h1>", "content_type": "text/html"}, FAILED),
        (None, FAILED),  # no network
    ],
    ids=["404", "429", "500", "offline"],
)
async def test_a_refused_mute_says_why(open_widget, alice, answer, message):
    roadmap = await a_threaded_inbox(alice)
    page = await open_widget(alice)
    await open_panel(page)

    async def refuse(route):
        if answer is None:
            await route.abort("internetdisconnected")
        else:
            await route.fulfill(**answer)

    await page.route("**/subscriptions/mute/", refuse)
    threaded = item(page, "bob commented on Roadmap")
    await menu_button(threaded).click()
    await threaded.get_by_role("menuitem", name="Mute this thread").click()
    note = threaded.locator(".nw-item-note-text")
    await expect(note).to_have_text(message)
    await expect(threaded.locator(".nw-item-note")).to_have_class("nw-item-note nw-item-note-error")
    await expect(page.locator(".nw-announcer")).to_have_text(message)
    await expect(threaded.get_by_role("button", name="Undo")).to_be_hidden()
    assert not await is_muted(alice, roadmap)
    # open_widget fails the test on any uncaught error or unhandled rejection in the page.

    await page.unroute("**/subscriptions/mute/")
    await menu_button(threaded).click()
    await threaded.get_by_role("menuitem", name="Mute this thread").click()  # works again
    await expect(note).to_contain_text(MUTED)
    await expect(threaded.locator(".nw-item-note")).to_have_class("nw-item-note")


async def test_muting_a_thread_whose_object_is_gone_is_the_servers_404(open_widget, alice):
    roadmap = await a_threaded_inbox(alice)
    page = await open_widget(alice)
    await open_panel(page)
    statuses = []
    page.on("response", lambda r: "/subscriptions/" in r.url and statuses.append(r.status))
    await delete(roadmap)
    await muted_from_the_menu_fails(page, "bob commented on Roadmap", NOT_FOUND)
    assert statuses == [404]


async def muted_from_the_menu_fails(page, title, message):
    row = item(page, title)
    await menu_button(row).click()
    await row.get_by_role("menuitem", name="Mute this thread").click()
    await expect(row.locator(".nw-item-note-text")).to_have_text(message)


# --- the preferences view's muted threads ----------------------------------------------------


async def open_preferences(page):
    await open_panel(page)
    await page.get_by_role("button", name="Preferences").click()
    section = page.get_by_role("region", name="Muted threads")
    await expect(section).to_be_visible()
    return section


async def test_the_preferences_list_muted_threads_and_unmute_them(open_widget, alice):
    roadmap = await a_thread("Roadmap")
    launch = await a_thread("Launch plan")
    gone = await a_thread("Old thread")
    followed = await a_thread("Followed only")
    await mute(alice, roadmap)
    await mute(alice, gone)
    await mute(alice, launch)  # the newest
    await follow(alice, followed)  # followed, not muted: not listed
    await follow(alice, roadmap)  # followed and muted: unmuting keeps the follow
    gone_id = gone.pk
    await delete(gone)
    page = await open_widget(alice)
    section = await open_preferences(page)
    rows = section.get_by_role("listitem")
    # Newest first; an object that is gone shows as its type and id.
    await expect(rows).to_have_count(3)
    await expect(section.locator(".nw-muted-name")).to_have_text(
        ["Launch plan", f"auth.group {gone_id}", "Roadmap"]
    )
    await expect(section.get_by_text("No muted threads.")).to_be_hidden()
    await expect(section.get_by_role("button", name="Show more")).to_be_hidden()
    unmute = rows.filter(has_text="Launch plan").get_by_role("button", name="Unmute")
    await expect(unmute).to_have_accessible_description("Launch plan")

    sent = []
    page.on("request", lambda r: r.method == "PATCH" and sent.append(r))
    await unmute.click()
    await expect(rows).to_have_count(2)
    await expect(section.locator(".nw-muted-status")).to_have_text("Unmuted: Launch plan.")
    # The focus goes to the next row's button, not to <body>.
    await expect(rows.first.get_by_role("button", name="Unmute")).to_be_focused()
    assert len(sent) == 1
    assert sent[0].post_data_json == {"muted": False}
    assert not await is_muted(alice, launch)
    assert [(row.object_id, row.is_muted) for row in await rows_of(alice)] == [
        (str(roadmap.pk), True),
        (str(gone_id), True),
        (str(followed.pk), False),
    ]  # the unmuted row, neither muted nor followed, is deleted (a 204)

    await rows.filter(has_text="Roadmap").get_by_role("button", name="Unmute").click()
    await expect(rows).to_have_count(1)
    assert not await is_muted(alice, roadmap)
    roadmap_row = [row for row in await rows_of(alice) if row.object_id == str(roadmap.pk)]
    assert [row.is_following for row in roadmap_row] == [True]  # a 200: still followed

    await rows.get_by_role("button", name="Unmute").click()
    await expect(rows).to_have_count(0)
    await expect(section.get_by_text("No muted threads.")).to_be_visible()
    await expect(section.get_by_role("heading", name="Muted threads")).to_be_focused()
    # Roadmap's row stays: it is followed.
    assert [row.object_id for row in await rows_of(alice)] == [str(roadmap.pk), str(followed.pk)]


async def test_show_more_pages_through_the_muted_threads(open_widget, alice):
    size = app_settings.PAGE_SIZE
    threads = [await a_thread(f"Thread {n:02}") for n in range(size + 3)]
    for thread in threads:
        await mute(alice, thread)
    page = await open_widget(alice)
    section = await open_preferences(page)
    rows = section.get_by_role("listitem")
    await expect(rows).to_have_count(size)
    await expect(rows.first).to_contain_text(f"Thread {size + 2:02}")  # the newest
    more = section.get_by_role("button", name="Show more")
    await more.focus()
    await page.keyboard.press("Enter")
    await expect(rows).to_have_count(size + 3)
    await expect(rows.last).to_contain_text("Thread 00")
    await expect(more).to_be_hidden()
    # The button went away under the focus: it is on the first row that came.
    await expect(rows.nth(size).get_by_role("button", name="Unmute")).to_be_focused()


async def test_a_thread_muted_from_an_item_is_listed_when_the_view_opens_again(open_widget, alice):
    await a_threaded_inbox(alice)
    page = await open_widget(alice)
    section = await open_preferences(page)
    await expect(section.get_by_text("No muted threads.")).to_be_visible()
    await page.get_by_role("button", name="Preferences").click()  # closed: the list again
    await muted_from_the_menu(page, "bob commented on Roadmap")
    await page.get_by_role("button", name="Preferences").click()
    await expect(section.get_by_role("listitem")).to_have_text(["RoadmapUnmute"])
    await expect(section.get_by_text("No muted threads.")).to_be_hidden()

    # Unmuted there, the item's menu offers to mute it again.
    await section.get_by_role("button", name="Unmute").click()
    await expect(section.get_by_text("No muted threads.")).to_be_visible()
    await page.get_by_role("button", name="Preferences").click()
    threaded = item(page, "bob commented on Roadmap")
    await menu_button(threaded).click()
    await expect(threaded.get_by_role("menuitem")).to_have_text("Mute this thread")


@pytest.mark.parametrize(
    ("status", "message"), [(429, TOO_MANY), (500, FAILED)], ids=["429", "500"]
)
async def test_a_refused_unmute_or_list_says_why(open_widget, alice, status, message):
    roadmap = await a_thread("Roadmap")
    await mute(alice, roadmap)
    page = await open_widget(alice)
    section = await open_preferences(page)
    await expect(section.get_by_role("listitem")).to_have_count(1)

    async def refuse(route):
        if route.request.method == "PATCH":
            await route.fulfill(status=status, json={"detail": "Nope."})
        else:
            await route.fallback()

    await page.route("**/subscriptions/*/", refuse)
    await section.get_by_role("button", name="Unmute").click()
    status_line = section.locator(".nw-muted-status")
    await expect(status_line).to_have_text(message)
    await expect(status_line).to_have_class("nw-muted-status nw-muted-error")
    await expect(section.get_by_role("listitem")).to_have_count(1)  # still muted
    assert await is_muted(alice, roadmap)

    await page.route(
        "**/subscriptions/?muted=true",
        lambda route: route.fulfill(status=status, json={"detail": "Nope."}),
    )
    await page.get_by_role("button", name="Preferences").click()
    await page.get_by_role("button", name="Preferences").click()  # opened again: read again
    loaded = "Your muted threads could not be loaded."
    await expect(status_line).to_have_text(TOO_MANY if status == 429 else loaded)
    await expect(section.get_by_role("listitem")).to_have_count(0)
    await expect(section.get_by_text("No muted threads.")).to_be_hidden()  # not known to be none


# --- layout, axe, the admin ------------------------------------------------------------------


async def test_on_a_phone_the_menu_and_the_muted_threads_fit(open_widget, alice, screenshots):
    roadmap = await a_thread("Roadmap")
    long_name = await a_thread("A thread whose name is long enough to wrap on a phone’s screen")
    for n in range(6):
        await notify(alice, f"Comment {n} on the roadmap", "Looks good to me.", target=roadmap)
    await mute(alice, long_name)
    page = await open_widget(alice, **phone("360x740"), reduced_motion="reduce")
    await open_panel(page)
    panel = page.locator(".nw-panel")
    for which in ("first", "last"):  # the last one's menu opens upwards, inside the list
        row = item(page, "Comment 5" if which == "first" else "Comment 0")
        await row.scroll_into_view_if_needed()
        await menu_button(row).click()
        menu = row.get_by_role("menu")
        await expect(menu).to_be_visible()
        assert await menu.evaluate(MENU_BOX) == {"inViewport": True, "inPanel": True}
        assert await panel.evaluate(OUTSIDE) == []
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await menu.get_by_role("menuitem").click(trial=True)  # nothing covers it
        if which == "first":
            await page.screenshot(path=screenshots / "item-menu-360.png")
            await menu.get_by_role("menuitem").click()
            await expect(row.locator(".nw-item-note-text")).to_contain_text(MUTED)
            assert await panel.evaluate(OUTSIDE) == []
            await page.screenshot(path=screenshots / "thread-muted-360.png")
        else:
            await page.keyboard.press("Escape")

    await page.get_by_role("button", name="Preferences").click()
    section = page.get_by_role("region", name="Muted threads")
    await expect(section.get_by_role("listitem")).to_have_count(2)
    await section.scroll_into_view_if_needed()
    assert await panel.evaluate(OUTSIDE) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await section.get_by_role("button", name="Unmute").last.click(trial=True)
    await page.mouse.move(0, 0)
    await page.screenshot(path=screenshots / "muted-threads-360.png")


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_menu_the_note_and_the_muted_threads_pass_axe(
    open_widget, alice, scheme, axe_script
):
    await a_threaded_inbox(alice)
    await mute(alice, await a_thread("Launch plan"))
    page = await open_widget(alice, bypass_csp=True, color_scheme=scheme)
    await open_panel(page)
    threaded = item(page, "bob commented on Roadmap")
    await menu_button(threaded).click()
    await expect(threaded.get_by_role("menu")).to_be_visible()
    assert await axe(page, axe_script) == [], scheme
    await threaded.get_by_role("menuitem").click()
    await expect(threaded.locator(".nw-item-note-text")).to_contain_text(MUTED)
    violations = await axe(page, axe_script)
    assert violations == [], f"{scheme}: " + json.dumps(violations, indent=2)
    await page.get_by_role("button", name="Preferences").click()
    await expect(page.locator(".nw-muted-row")).to_have_count(2)
    violations = await axe(page, axe_script)
    assert violations == [], f"{scheme}: " + json.dumps(violations, indent=2)
    # Muted now: the menu unmutes. An error's colours too.
    await page.route("**/subscriptions/unmute/", lambda route: route.fulfill(status=429, json={}))
    await page.get_by_role("button", name="Preferences").click()
    await menu_button(item(page, "bob commented on Roadmap")).click()
    await page.get_by_role("menuitem").click()
    await expect(threaded.locator(".nw-item-note-text")).to_have_text(TOO_MANY)
    violations = await axe(page, axe_script)
    assert violations == [], f"{scheme}: " + json.dumps(violations, indent=2)
    await page.route(
        "**/subscriptions/*/", lambda route: route.fulfill(status=429, json={})
    )  # the list's own error
    await page.get_by_role("button", name="Preferences").click()
    await page.get_by_role("button", name="Unmute").first.click()
    await expect(page.locator(".nw-muted-status")).to_have_text(TOO_MANY)
    violations = await axe(page, axe_script)
    assert violations == [], f"{scheme}: " + json.dumps(violations, indent=2)


@pytest.mark.parametrize("size", [(1100, 700), (360, 740)], ids=["desktop", "phone"])
async def test_in_the_django_admin_the_menu_and_the_muted_threads_fit_and_pass_axe(
    open_widget, make_user, size, screenshots, axe_script
):
    staff = await database_sync_to_async(make_user)("staff", is_staff=True, is_superuser=True)
    roadmap = await a_threaded_inbox(staff)
    await mute(staff, await a_thread("Launch plan"))
    width, height = size
    page = await open_widget(staff, path="/admin/", viewport={"width": width, "height": height})
    await open_panel(page)
    panel = page.locator(".nw-panel")
    threaded = item(page, "bob commented on Roadmap")
    await menu_button(threaded).click()
    menu = threaded.get_by_role("menu")
    await expect(menu).to_be_visible()
    assert await menu.evaluate(MENU_BOX) == {"inViewport": True, "inPanel": True}
    assert await panel.evaluate(OUTSIDE) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    assert await axe(page, axe_script) == []
    await page.screenshot(path=screenshots / f"item-menu-admin-{width}.png")
    await menu.get_by_role("menuitem").click()
    await expect(threaded.locator(".nw-item-note-text")).to_contain_text(MUTED)
    assert await is_muted(staff, roadmap)

    await page.get_by_role("button", name="Preferences").click()
    section = page.get_by_role("region", name="Muted threads")
    await expect(section.get_by_role("listitem")).to_have_count(2)
    await section.scroll_into_view_if_needed()
    assert await panel.evaluate(OUTSIDE) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    assert await axe(page, axe_script) == []
    await page.mouse.move(0, 0)
    await page.screenshot(path=screenshots / f"muted-threads-admin-{width}.png")
    await (
        section.get_by_role("listitem")
        .filter(has_text="Roadmap")
        .get_by_role("button", name="Unmute")
        .click()
    )
    await expect(section.get_by_role("listitem")).to_have_count(1)
    assert not await is_muted(staff, roadmap)


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("de-DE", ["Weitere Aktionen", "Diesen Thread stummschalten", "Stummgeschaltete Threads"]),
        ("fr-FR", ["Plus d’actions", "Mettre ce fil en sourdine", "Fils en sourdine"]),
    ],
)
async def test_the_menu_and_the_list_speak_german_and_french(open_widget, alice, locale, words):
    await a_threaded_inbox(alice)
    page = await open_widget(alice, locale=locale)
    await open_panel(page)
    more_actions, mute_this_thread, muted_threads = words
    threaded = item(page, "bob commented on Roadmap")
    await threaded.get_by_role("button", name=more_actions).click()
    await expect(threaded.get_by_role("menuitem")).to_have_text(mute_this_thread)
    await page.keyboard.press("Escape")
    await page.locator(".nw-prefs-button").click()
    await expect(page.get_by_role("heading", name=muted_threads)).to_be_visible()
