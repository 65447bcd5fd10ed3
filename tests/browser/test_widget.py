"""The widget in a real browser, against a real daphne: what a user sees and does.

Notifications are sent from this process (database and Redis, as in production). ``create``
writes rows without pushing them: what was there before the page opened.
"""

import asyncio
import io
import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from playwright.async_api import expect

from notifications import services
from notifications.models import Notification
from tests.browser.conftest import page_opener

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="module"),  # one Chromium for the module
]

SOCKET = "**/ws/notifications/"
notify = database_sync_to_async(services.notify)


@database_sync_to_async
def create(user, *titles, **fields):
    """Rows written straight to the table, oldest first, without a push."""
    return Notification.objects.bulk_create(
        [Notification(recipient=user, title=title, **fields) for title in titles]
    )


@database_sync_to_async
def stored(title):
    return Notification.objects.get(title=title)


async def eventually(check, seconds=5.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not true within {seconds} s: {check.__doc__ or check}")
        await asyncio.sleep(0.05)


async def read_in_database(title):
    async def check():
        return (await stored(title)).read_at is not None

    check.__doc__ = f"{title!r} is read in the database"
    await eventually(check)


def widget(page):
    return page.locator("[data-notifications-widget]")


async def connected(page, within_ms=5_000):
    await expect(widget(page)).to_have_attribute("data-connection", "connected", timeout=within_ms)


async def js(page, expression):
    return await page.evaluate(f"window.notificationsWidget.{expression}")


def focused_in_widget(page):
    """The focused element inside the widget's shadow root (whose host matches :focus too)."""
    return page.locator("[data-notifications-widget] :focus")


@pytest_asyncio.fixture(loop_scope="module")
async def open_widget(module_chromium, base_url, same_redis_as_server):
    """``await open_widget(user, path="/", **context_options)``: a signed-in page in a browser
    context of its own, whose WebSockets are recorded (``page.sockets``); any uncaught script
    error fails the test. ``open_widget.new_tab(page)`` opens another tab of the same browser."""
    errors = []
    contexts = []
    open_page = page_opener(module_chromium, base_url, contexts)

    def watch(page):
        page.sockets = []
        page.on("websocket", lambda socket: page.sockets.append(socket))
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        return page

    async def open_(user, path="/", **context_options):
        page = watch(await open_page(user, path=None, **context_options))
        if path is not None:
            await page.goto(path)
        return page

    async def new_tab(page, path="/"):
        tab = watch(await page.context.new_page())
        tab.set_default_timeout(5_000)
        await tab.goto(path)
        return tab

    open_.new_tab = new_tab
    yield open_
    for context in contexts:
        await context.close()
    # The thread behind database_sync_to_async would keep its connection past the test database.
    await sync_to_async(connections.close_all)()
    assert not errors, "script errors in the page:\n" + "\n".join(errors)


# --- the bell --------------------------------------------------------------------------------


async def test_badge_counts_live_in_text_and_in_the_bells_name(open_widget, alice):
    page = await open_widget(alice)
    await connected(page)
    bell = page.get_by_role("button", name=re.compile("^Notifications"))
    badge = page.locator(".nw-badge")
    await expect(bell).to_have_accessible_name("Notifications")
    await expect(badge).to_be_hidden()

    await notify(alice, "Build finished")
    await expect(badge).to_have_text("1")
    await expect(bell).to_have_accessible_name("Notifications, 1 unread")

    await create(alice, *[f"old {n}" for n in range(98)])
    await notify(alice, "The hundredth")
    await expect(badge).to_have_text("99+")
    await expect(bell).to_have_accessible_name("Notifications, 100 unread")


# --- the panel -------------------------------------------------------------------------------


async def test_panel_lists_newest_first_pages_on_scroll_and_changes_states(open_widget, alice):
    await create(alice, *[f"Older {n}" for n in range(1, 26)], url="/?older")
    await notify(alice, "Invoice paid", "Thank you.", level="success", url="/?invoice=7")
    page = await open_widget(alice)
    await connected(page)
    await page.locator(".nw-bell").click()
    await expect(page.locator(".nw-bell")).to_have_attribute("aria-expanded", "true")

    items = page.locator(".nw-item")
    await expect(items).to_have_count(20)
    newest = items.first
    await expect(newest.locator(".nw-item-link")).to_have_text("Invoice paid")
    await expect(newest.locator(".nw-item-title")).to_contain_text("Success:")  # level in words
    await expect(newest.locator(".nw-item-body")).to_have_text("Thank you.")
    await expect(newest.locator(".nw-item-unread")).to_have_text("Unread")
    await expect(newest.locator("time")).to_have_text("now")
    await expect(items.nth(1).locator(".nw-item-link")).to_have_text("Older 25")

    await page.locator(".nw-more").scroll_into_view_if_needed()  # the end of the list: more
    await expect(items).to_have_count(26)
    await expect(items.last.locator(".nw-item-link")).to_have_text("Older 1")
    await expect(page.locator(".nw-more")).to_be_hidden()

    await newest.get_by_role("button", name="Mark as read").click()
    await expect(newest.locator(".nw-item-unread")).to_be_hidden()
    await expect(page.locator(".nw-badge")).to_have_text("25")
    await read_in_database("Invoice paid")
    await newest.get_by_role("button", name="Mark as unread").click()
    await expect(page.locator(".nw-badge")).to_have_text("26")

    await items.nth(1).get_by_role("button", name="Archive").click()
    await expect(items).to_have_count(25)
    assert (await stored("Older 25")).archived_at is not None
    await expect(page.locator(".nw-badge")).to_have_text("25")

    await items.nth(1).locator(".nw-item-link").click()  # follows the link, marks it read
    await page.wait_for_url("**/?older")
    await read_in_database("Older 24")


async def test_panel_says_when_there_is_nothing(open_widget, bob):
    page = await open_widget(bob)
    await page.locator(".nw-bell").click()
    await expect(page.locator(".nw-status-message")).to_have_text("You have no notifications.")
    await expect(page.get_by_role("button", name="Mark all as read")).to_be_disabled()


# --- tabs ------------------------------------------------------------------------------------


async def test_tabs_share_one_socket_and_mark_all_read_clears_every_badge(open_widget, alice):
    await create(alice, "First", "Second")
    leader = await open_widget(alice)
    await connected(leader)
    follower = await open_widget.new_tab(leader)
    await connected(follower)  # the leader's state, relayed
    await expect(widget(leader)).to_have_attribute("data-role", "leader")
    await expect(widget(follower)).to_have_attribute("data-role", "follower")
    assert (len(leader.sockets), len(follower.sockets)) == (1, 0)
    await expect(follower.locator(".nw-badge")).to_have_text("2")

    await notify(alice, "Third")  # reaches the follower through the leader
    await expect(follower.locator(".nw-badge")).to_have_text("3")
    await follower.locator(".nw-bell").click()
    await follower.get_by_role("button", name="Mark all as read").click()
    await expect(leader.locator(".nw-badge")).to_be_hidden()
    await expect(follower.locator(".nw-badge")).to_be_hidden()

    await leader.close()  # the follower takes the lock, connects and resumes
    await expect(widget(follower)).to_have_attribute("data-role", "leader")
    await connected(follower)
    await notify(alice, "Fourth")
    await expect(follower.locator(".nw-badge")).to_have_text("1")
    assert len(follower.sockets) == 1


async def test_a_mark_all_read_of_many_elsewhere_reads_every_listed_item(
    open_widget, alice, settings
):
    settings.NOTIFICATIONS = {"MAX_IDS_PER_MESSAGE": 5}  # this process builds the frame
    await create(alice, *[f"Old {n}" for n in range(30)])
    page = await open_widget(alice)
    await connected(page)
    # Opening the panel marks what it shows seen: let that write end before another begins
    # (SQLite takes one writer at a time).
    async with page.expect_response("**/api/notifications/seen/"):
        await page.locator(".nw-bell").click()
    items = page.locator(".nw-item")
    await expect(items).to_have_count(20)
    await expect(page.locator(".nw-item.nw-unread")).to_have_count(20)
    frames = []
    page.sockets[0].on("framereceived", lambda frame: frames.append(frame))

    change = await database_sync_to_async(services.mark_all_read)(alice)  # another device

    assert change.count == 30
    await expect(page.locator(".nw-item.nw-unread")).to_have_count(0)
    await expect(page.locator(".nw-badge")).to_be_hidden()
    changed = [json.loads(f) for f in frames if '"changed"' in f]
    assert [(c["ids"], c["up_to"], c["count"]) for c in changed] == [([], change.up_to, 30)]


async def test_without_web_locks_every_tab_keeps_its_own_socket(open_widget, alice):
    page = await open_widget(alice, path=None)
    await page.context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'locks', {get: () => undefined})"
    )
    await page.goto("/")
    other = await open_widget.new_tab(page)
    await connected(page)
    await connected(other)
    await expect(widget(page)).to_have_attribute("data-role", "solo")
    await expect(widget(other)).to_have_attribute("data-role", "solo")
    await notify(alice, "To both")
    await expect(page.locator(".nw-badge")).to_have_text("1")
    await expect(other.locator(".nw-badge")).to_have_text("1")
    assert await js(other, "notifications.length") == 1  # the relay of one is no duplicate
    await page.locator(".nw-bell").click()
    await page.get_by_role("button", name="Mark all as read").click()
    await expect(other.locator(".nw-badge")).to_be_hidden()


# --- the live path ---------------------------------------------------------------------------


async def test_a_server_restart_loses_nothing(open_widget, alice, server):
    page = await open_widget(alice)
    await connected(page)
    await asyncio.to_thread(server.stop)
    await expect(widget(page)).not_to_have_attribute("data-connection", "connected")
    await expect(page.locator(".nw-connection-text")).not_to_have_text("Live")
    await notify(alice, "Sent while the server was down")
    await notify(alice, "Also sent while it was down")
    await asyncio.to_thread(server.start)

    await connected(page, within_ms=20_000)
    await expect(page.locator(".nw-badge")).to_have_text("2", timeout=10_000)
    await page.locator(".nw-bell").click()
    await expect(page.locator(".nw-item-title")).to_contain_text(
        ["Also sent while it was down", "Sent while the server was down"]
    )


async def test_a_burst_of_ten_backlogs_while_offline_arrives_whole_without_a_rate_limit(
    open_widget, alice, server
):
    """1,000 notifications (ten times BACKLOG_LIMIT) arrive while the server is down: on
    reconnecting, the widget pages through them with the server's cursor on one socket, and
    never hits the message rate limit (4429 would show as a second reconnect)."""
    page = await open_widget(alice)
    await connected(page)
    await asyncio.to_thread(server.stop)
    titles = [f"burst {i}" for i in range(1000)]
    await create(alice, *titles)
    frames = []
    page.on(
        "websocket",
        lambda socket: socket.on("framesent", lambda payload: frames.append(json.loads(payload))),
    )
    await asyncio.to_thread(server.start)
    await connected(page, within_ms=20_000)
    sockets = len(page.sockets)  # the failed attempts while the server was down, and this one
    await expect(page.locator(".nw-badge")).to_have_text("99+", timeout=20_000)

    async def everything_arrived():
        return await page.evaluate("window.notificationsWidget.inbox.known.size") >= 1000

    await eventually(everything_arrived, 20)
    resumes = [frame for frame in frames if frame["type"] == "resume"]
    assert 10 <= len(resumes) <= 12  # a page of 100 per round trip
    assert len(page.sockets) == sockets  # caught up on one socket: no 4429, no reconnect
    await expect(widget(page)).to_have_attribute("data-connection", "connected")


async def test_polling_delivers_while_websockets_are_blocked(open_widget, alice):
    page = await open_widget(alice, path=None)
    sockets_blocked = True
    polls = []
    poll_started = []  # when each poll left the page

    async def socket_route(socket):
        if sockets_blocked:
            await socket.close(code=1011)
        else:
            socket.connect_to_server()

    async def unread_count_route(route):
        # The server says 15 s; the test makes it 1 s, which the widget must obey.
        poll_started.append(time.monotonic())
        response = await route.fetch()
        polls.append((route.request.headers.get("if-none-match"), response.status))
        await route.fulfill(response=response, headers={**response.headers, "x-poll-interval": "1"})

    await page.route_web_socket(SOCKET, socket_route)
    await page.route("**/unread-count/", unread_count_route)
    await page.goto("/")
    await expect(widget(page)).to_have_attribute("data-connection", "polling")
    await expect(page.locator(".nw-connection-text")).to_contain_text(
        "Live updates are unavailable"
    )
    # Loaded: what arrives from now on is news (toasted), not part of the first page.
    await expect(page.locator(".nw-status-message")).to_have_text("You have no notifications.")

    await notify(alice, "Delivered by polling")
    await expect(page.locator(".nw-badge")).to_have_text("1", timeout=5_000)
    await page.locator(".nw-bell").click()
    await expect(page.locator(".nw-item-title")).to_contain_text(["Delivered by polling"])
    await expect(page.locator(".nw-toast")).to_contain_text("Delivered by polling")

    async def answered_not_modified():
        """a poll sent If-None-Match and was answered 304"""
        return any(etag and status == 304 for etag, status in polls)

    await eventually(answered_not_modified)

    sockets_blocked = False
    await page.evaluate("window.dispatchEvent(new Event('online'))")  # the network is back
    await connected(page)
    live_since = time.monotonic()
    await notify(alice, "Live again")
    await expect(page.locator(".nw-badge")).to_have_text("2")
    await asyncio.sleep(1.2)  # more than the 1 s poll interval
    # A poll already under way when the socket came back may still land; none may start after.
    assert [t for t in poll_started if t > live_since] == [], (
        "polling goes on while the socket is live"
    )


async def test_a_poll_answered_after_the_sockets_hello_does_not_undo_its_counts(open_widget, alice):
    """The widget polls while its socket cannot connect. A poll that was under way when a socket
    said hello, and is answered after it with what was true before, must not take the counts
    (or the list) back."""
    page = await open_widget(alice, path=None)
    sockets_blocked = True
    held = asyncio.Event()
    release = asyncio.Event()

    async def socket_route(socket):
        if sockets_blocked:
            await socket.close(code=1011)
        else:
            socket.connect_to_server()

    asked = 0

    async def unread_count_route(route):
        nonlocal asked
        asked += 1
        response = await route.fetch()  # what is true now
        if asked == 2:  # the poller's first (the first page asked first): a 200, no ETag yet
            held.set()
            await release.wait()  # ... answered once the socket has said hello
        await route.fulfill(response=response)

    await page.route_web_socket(SOCKET, socket_route)
    await page.route("**/unread-count/", unread_count_route)
    await page.goto("/")
    await expect(widget(page)).to_have_attribute("data-connection", "polling")
    await asyncio.wait_for(held.wait(), 30)  # a poll saw no notification yet

    await notify(alice, "Told by the socket")
    sockets_blocked = False
    await page.evaluate("window.dispatchEvent(new Event('online'))")
    await connected(page)
    await expect(page.locator(".nw-badge")).to_have_text("1")
    release.set()
    await asyncio.sleep(1)  # the stale answer lands
    await expect(page.locator(".nw-badge")).to_have_text("1")
    assert await page.evaluate("window.notificationsWidget.unreadCount") == 1


async def test_signed_out_by_the_server_stops_and_says_so(open_widget, alice):
    page = await open_widget(alice)
    await connected(page)
    cookies = {cookie["name"]: cookie["value"] for cookie in await page.context.cookies()}
    await page.request.post("/logout/", headers={"X-CSRFToken": cookies["csrftoken"]})

    await expect(widget(page)).to_have_attribute("data-connection", "signed-out")
    await expect(page.locator(".nw-announcer")).to_have_text(
        "You are signed out. Sign in again to see new notifications."
    )
    await page.locator(".nw-bell").click()
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    await asyncio.sleep(1)  # a reconnect would come within the first backoff, under 1 s
    assert len(page.sockets) == 1, "no reconnect after 4401"


async def test_changing_ones_password_keeps_this_browser_signed_in_and_signs_out_the_others(
    open_widget, make_user
):
    """Django keeps the changer's session signed in (rotated); every other session ends. The
    widget in the changer's other tab reconnects (4440) and stays live; another browser's says
    it is signed out."""
    carol = await database_sync_to_async(make_user)("carol", is_staff=True)
    page = await open_widget(carol)
    elsewhere = await open_widget(carol)
    await connected(page)
    await connected(elsewhere)
    form = await open_widget.new_tab(page, "/admin/password_change/")
    await form.fill("#id_old_password", "pw")
    await form.fill("#id_new_password1", "a-new-password-3")
    await form.fill("#id_new_password2", "a-new-password-3")
    await form.get_by_role("button", name="Change my password").click()
    await expect(form).to_have_url(re.compile("/admin/password_change/done/"))

    await expect(widget(elsewhere)).to_have_attribute("data-connection", "signed-out")
    await connected(page, within_ms=10_000)
    await notify(carol, "Still here")
    await expect(page.locator(".nw-badge")).to_have_text("1")
    await expect(widget(page)).to_have_attribute("data-connection", "connected")


# --- pop-ups and desktop notifications --------------------------------------------------------

# A page that can pretend to be in the background, and records desktop notifications instead of
# asking the system to show them.
DESKTOP_FAKES = """
let hidden = false;
Object.defineProperty(Document.prototype, "visibilityState", {
  get: () => (hidden ? "hidden" : "visible"),
  configurable: true,
});
window.pretendHidden = (value) => {
  hidden = value;
  document.dispatchEvent(new Event("visibilitychange"));
};
const RealNotification = window.Notification;
window.desktopShown = [];
window.Notification = class extends EventTarget {
  constructor(title) { super(); window.desktopShown.push(title); }
  close() {}
  static get permission() { return RealNotification.permission; }
  static requestPermission() { return RealNotification.requestPermission(); }
};
"""


async def test_popups_can_be_switched_off_and_desktop_notifications_wait_for_opt_in(
    open_widget, alice
):
    page = await open_widget(alice, path=None, permissions=["notifications"])
    await page.add_init_script(DESKTOP_FAKES)
    await page.goto("/")
    await connected(page)
    await page.locator(".nw-bell").click()
    await page.get_by_label("Show pop-ups").uncheck()
    await notify(alice, "Quietly")
    await expect(page.locator(".nw-badge")).to_have_text("1")
    await expect(page.locator(".nw-toast")).to_have_count(0)
    await page.reload()  # the choice is remembered
    await connected(page)
    await expect(page.get_by_label("Show pop-ups")).not_to_be_checked()

    await page.evaluate("pretendHidden(true)")
    await notify(alice, "Not on the desktop before opting in")
    await expect(page.locator(".nw-badge")).to_have_text("2")
    assert await page.evaluate("desktopShown") == []

    await page.evaluate("pretendHidden(false)")
    await page.locator(".nw-bell").click()
    await page.get_by_label("Desktop notifications").check()
    await page.evaluate("pretendHidden(true)")
    await notify(alice, "On the desktop")
    await expect(page.locator(".nw-badge")).to_have_text("3")
    assert await page.evaluate("desktopShown") == ["On the desktop"]


# --- safety ----------------------------------------------------------------------------------


async def test_html_in_a_notification_is_shown_as_text_and_runs_nothing(open_widget, alice):
    # Written past notify()'s validation, as a row from elsewhere could be.
    await create(alice, "<img src=x onerror=alert(1)>", url="javascript:alert(2)")
    page = await open_widget(alice)
    dialogs = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await connected(page)
    await notify(
        alice, "<script>alert(3)</script>", body="<b>bold</b><img src=x onerror=alert(4)>", url="/"
    )

    toast = page.locator(".nw-toast")
    await expect(toast.locator(".nw-toast-link")).to_have_text("<script>alert(3)</script>")
    await expect(toast.locator(".nw-toast-body")).to_have_text(
        "<b>bold</b><img src=x onerror=alert(4)>"
    )
    await page.locator(".nw-bell").click()
    items = page.locator(".nw-item")
    await expect(items.nth(0).locator(".nw-item-link")).to_have_text("<script>alert(3)</script>")
    await expect(items.nth(1).locator(".nw-item-title")).to_contain_text(
        "<img src=x onerror=alert(1)>"
    )
    assert await items.nth(1).locator("a").count() == 0, "a javascript: url is never a link"
    injected = ".nw img, .nw b, .nw script:not([type='application/json'])"
    assert await page.locator(injected).count() == 0
    assert dialogs == []


async def test_runs_under_a_strict_content_security_policy(open_widget, alice):
    page = await open_widget(alice, path=None)
    await page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"
    )
    console = []
    page.on("console", lambda message: console.append(message.text))
    response = await page.goto("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe" not in policy

    await connected(page)
    await notify(alice, "Under CSP", body="Works.", level="warning")
    await expect(page.locator(".nw-toast")).to_be_visible()
    await page.locator(".nw-bell").click()
    await page.get_by_role("button", name="Mark as read").click()
    await expect(page.locator(".nw-badge")).to_be_hidden()
    assert await page.evaluate("cspViolations") == []
    assert not [text for text in console if "Content Security Policy" in text]


# --- keyboard, accessibility, languages ------------------------------------------------------


async def test_the_whole_widget_works_by_keyboard_alone(open_widget, alice):
    await create(alice, "Older", url="/?older")
    await create(alice, "Newer", url="/?newer")
    page = await open_widget(alice)
    await connected(page)
    bell = page.locator(".nw-bell")
    focused = focused_in_widget(page)

    for _ in range(10):  # from the top of the page
        await page.keyboard.press("Tab")
        if await bell.evaluate("(bell) => bell.matches(':focus')"):
            break
    else:
        pytest.fail("Tab never reached the bell")
    await page.keyboard.press("Enter")
    await expect(bell).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Mark all as read")
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Preferences")
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Newer")
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Mark as read")
    await page.keyboard.press("Enter")
    await expect(focused).to_have_text("Mark as unread")  # focus stays on the same button
    await expect(page.locator(".nw-badge")).to_have_text("1")
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Archive")
    await page.keyboard.press("Enter")
    await expect(page.locator(".nw-item")).to_have_count(1)
    await expect(focused).to_have_text("Archive")  # now the next item's: never lost to <body>
    await expect(focused).to_have_accessible_description(re.compile("Older"))

    await page.keyboard.press("Escape")
    await expect(page.locator(".nw-panel")).to_be_hidden()
    await expect(bell).to_be_focused()
    await page.keyboard.press("Enter")
    for _ in range(3):  # Mark all as read, Preferences, the item's link
        await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Older")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/?older")
    await read_in_database("Older")


async def test_axe_finds_no_accessibility_violation(open_widget, alice, axe_script):
    await create(alice, "Read one", body="Already read.", read_at="2026-01-01T00:00:00Z")
    for level in ("info", "success", "warning", "error"):
        await create(alice, f"A {level} notification", body="Some words.", level=level, url="/")
    for scheme in ("light", "dark"):
        page = await open_widget(alice, bypass_csp=True, color_scheme=scheme)
        await connected(page)
        await notify(alice, f"Toast in {scheme}", body="On screen while axe runs.")
        # Other toasts may share the screen (the other scheme's page, a recovered error): axe
        # runs over all of them; this one must be among them.
        toast = page.locator(".nw-toast", has_text=f"Toast in {scheme}")
        await expect(toast).to_be_visible()
        await page.locator(".nw-bell").click()
        await expect(page.locator(".nw-item").first).to_be_visible()
        await page.add_script_tag(path=str(axe_script))
        result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        violations = [
            {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"][:3]]}
            for v in result["violations"]
        ]
        assert violations == [], f"{scheme}: " + json.dumps(violations, indent=2)
        assert len(result["passes"]) > 20, "axe ran its rules"

        await page.get_by_role("button", name="Preferences").click()  # and the preferences view
        await expect(switch(page, "Warning")).to_be_visible()
        result = await page.evaluate(
            "axe.run(document.querySelector('.nw'), {resultTypes: ['violations']})"
        )
        violations = [
            {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"][:3]]}
            for v in result["violations"]
        ]
        assert violations == [], f"{scheme}, preferences: " + json.dumps(violations, indent=2)


async def test_speaks_the_users_language(open_widget, alice):
    await create(alice, "Eins", "Zwei")
    page = await open_widget(alice, locale="fr-FR")
    await connected(page)
    bell = page.locator(".nw-bell")
    await expect(bell).to_have_accessible_name("Notifications, 2 non lues")
    await bell.click()
    await expect(page.locator(".nw-connection-text")).to_have_text("En direct")
    await page.get_by_role("button", name="Marquer comme lue").first.click()
    await expect(bell).to_have_accessible_name("Notifications, 1 non lue")
    await expect(page.get_by_role("button", name="Tout marquer comme lu")).to_be_visible()


# --- grouping and preferences --------------------------------------------------------------


async def test_a_grouped_notification_replaces_the_earlier_unread_one(open_widget, alice, bob):
    carol = await database_sync_to_async(type(bob).objects.create_user)("carol", password="pw")
    page = await open_widget(alice)
    await connected(page)
    follower = await open_widget.new_tab(page)  # hears it through the leader's relay
    await connected(follower)
    await page.locator(".nw-bell").click()
    items = page.locator(".nw-item")

    await notify(alice, "New comments on your post", group_key="post-7", actor=bob)
    await expect(items.first.locator(".nw-item-actor")).to_have_text("bob")
    await notify(alice, "New comments on your post", group_key="post-7", actor=carol)
    await expect(items.first.locator(".nw-item-actor")).to_have_text("carol and 1 other")
    await expect(items).to_have_count(1)
    await expect(items.first.locator(".nw-item-title")).to_contain_text("New comments on your post")
    await expect(items.first.locator(".nw-item-group")).to_have_attribute("data-count", "2")
    await expect(page.locator(".nw-badge")).to_have_text("1")
    await expect(page.locator(".nw-toast-meta")).to_have_text("carol and 1 other")
    for tab in (page, follower):
        await expect(tab.locator(".nw-item")).to_have_count(1)
        await expect(tab.locator(".nw-item-actor")).to_have_text("carol and 1 other")
    assert [n["group_count"] for n in await js(follower, "notifications")] == [2]

    await page.reload()
    await connected(page)
    await page.locator(".nw-bell").click()
    await expect(items.first.locator(".nw-item-actor")).to_have_text("carol and 1 other")
    await expect(items).to_have_count(1)


def preferences_view(page):
    return page.locator(".nw-prefs")


def switch(where, name, channel="In-app"):
    """The switch of a level or category (``name``) for a channel: named by its row's header and
    its column's, as a screen reader reads the table."""
    return where.get_by_role("switch", name=f"{name} {channel}", exact=True)


async def row_headers(table):
    """The levels or categories a table lists (its row headers' names, without their hints)."""
    return await table.locator("tbody th .nw-prefs-label").all_text_contents()


async def test_preferences_mute_a_category_and_a_level(open_widget, alice):
    await create(alice, "Invoice paid", category="billing")
    await create(alice, "Weekly digest", category="digest")
    page = await open_widget(alice)
    await connected(page)
    await page.locator(".nw-bell").click()
    button = page.get_by_role("button", name="Preferences")
    await expect(button).to_have_attribute("aria-expanded", "false")
    await button.click()
    await expect(button).to_have_attribute("aria-expanded", "true")
    view = preferences_view(page)
    await expect(view).to_have_attribute("id", await button.get_attribute("aria-controls"))
    levels = view.get_by_role("table", name="Levels")
    categories = view.get_by_role("table", name="Categories")
    await expect(levels.get_by_role("switch")).to_have_count(4)
    assert await row_headers(levels) == ["Info", "Success", "Warning", "Error"]
    assert await row_headers(categories) == ["billing", "digest"]  # those of the notifications
    # This site sends no email (EMAIL_DIGESTS is off): in-app switches only.
    await expect(categories.get_by_role("columnheader")).to_have_text(["Category", "In-app"])
    await expect(view.get_by_role("switch", name="Never email me")).to_have_count(0)
    await expect(page.locator(".nw-list")).to_be_hidden()  # the view takes the list's place
    for name in ("Info", "Error", "billing", "digest"):  # on: sent
        await expect(switch(view, name)).to_be_checked()

    await switch(view, "billing").uncheck()
    await switch(view, "Warning").uncheck()
    sent = []
    page.on("request", lambda r: r.method == "PUT" and sent.append(r.post_data_json))
    await view.get_by_role("button", name="Save").click()
    await expect(view.get_by_role("status")).to_have_text("Your preferences were saved.")
    answer = await (await page.request.get("/api/notifications/preferences/")).json()
    assert (answer["muted_categories"], answer["muted_levels"]) == (["billing"], ["warning"])
    # Without email, the email channel is left as it is.
    assert sent == [{"muted_categories": ["billing"], "muted_levels": ["warning"]}]

    await notify(alice, "A muted invoice", category="billing")
    await notify(alice, "A muted warning", level="warning")
    await notify(alice, "Still sent", category="digest")
    await expect(page.locator(".nw-badge")).to_have_text("3")
    titles = [n["title"] for n in await js(page, "notifications")]
    assert titles == ["Still sent", "Weekly digest", "Invoice paid"]

    await button.click()  # closed, then opened again: read back from the server
    await expect(page.locator(".nw-list")).to_be_visible()
    await button.click()
    await expect(switch(view, "billing")).not_to_be_checked()
    await expect(switch(view, "Warning")).not_to_be_checked()
    await expect(switch(view, "digest")).to_be_checked()


async def test_preferences_show_what_cannot_be_muted_and_the_servers_refusal(open_widget, alice):
    page = await open_widget(alice, path=None)
    sent = []

    async def preferences(route):
        if route.request.method == "GET":  # as a project with UNMUTABLE_CATEGORIES answers
            response = await route.fetch()
            body = {**await response.json(), "unmutable_categories": ["security"]}
            await route.fulfill(response=response, json=body)
        else:
            sent.append(route.request.post_data_json)
            await route.fulfill(
                status=400, json={"muted_categories": ["<b>'billing'</b> cannot be muted"]}
            )

    # What {% notifications_widget categories="..." %} adds, before the module runs.
    await page.add_init_script(
        "document.addEventListener('readystatechange', () => document.readyState === 'interactive'"
        " && document.querySelector('[data-notifications-widget]')"
        ".setAttribute('data-categories', 'digest,security'))"
    )
    await page.route("**/api/notifications/preferences/", preferences)
    await page.goto("/")
    await connected(page)
    await page.locator(".nw-bell").click()
    await page.get_by_role("button", name="Preferences").click()
    view = preferences_view(page)
    categories = view.get_by_role("table", name="Categories")
    await expect(categories.get_by_role("switch")).to_have_count(2)
    assert await row_headers(categories) == ["digest", "security"]
    security = switch(view, "security")
    await expect(security).to_be_disabled()
    await expect(security).to_be_checked()  # always sent
    await expect(security).to_have_accessible_description(
        "Always shown in the app: this site does not let you mute it."
    )

    await switch(view, "digest").uncheck()
    await view.get_by_role("button", name="Save").click()
    status = view.get_by_role("status")
    await expect(status).to_have_text("<b>'billing'</b> cannot be muted")  # as text
    await expect(status).to_have_class(re.compile("nw-prefs-error"))
    assert sent == [{"muted_categories": ["digest"], "muted_levels": []}]
    assert await view.locator("b").count() == 0


async def test_the_preferences_work_by_keyboard_alone(open_widget, alice):
    await create(alice, "Invoice paid", category="billing")
    page = await open_widget(alice)
    await connected(page)
    bell = page.locator(".nw-bell")
    button = page.get_by_role("button", name="Preferences")
    focused = focused_in_widget(page)
    await bell.focus()  # how Tab reaches the bell: test_the_whole_widget_works_by_keyboard_alone
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(button).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(button).to_be_focused()
    await expect(switch(page, "billing")).to_be_visible()

    for name in ("Info", "Success", "Warning", "Error", "billing"):  # levels, then categories
        await page.keyboard.press("Tab")
        await expect(focused).to_have_accessible_name(f"{name} In-app")
    await page.keyboard.press("Space")
    await expect(focused).not_to_be_checked()
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Save")
    await page.keyboard.press("Enter")
    await expect(page.locator(".nw-prefs-status")).to_have_text("Your preferences were saved.")
    await expect(focused).to_have_text("Save")  # the focus stays where it was
    answer = await (await page.request.get("/api/notifications/preferences/")).json()
    assert answer["muted_categories"] == ["billing"]

    await page.keyboard.press("Escape")  # closes the view, back on its button
    await expect(preferences_view(page)).to_be_hidden()
    await expect(button).to_be_focused()
    await expect(button).to_have_attribute("aria-expanded", "false")
    await expect(page.locator(".nw-panel")).to_be_visible()
    await page.keyboard.press("Escape")  # then the panel, back on the bell
    await expect(page.locator(".nw-panel")).to_be_hidden()
    await expect(bell).to_be_focused()


# --- the demo --------------------------------------------------------------------------------


async def test_the_demo_signs_in_a_seeded_user_who_sends_himself_a_notification(open_widget):
    await database_sync_to_async(call_command)("seed_demo", stdout=io.StringIO())
    page = await open_widget(None)
    await page.wait_for_url("**/login/?next=/")
    await page.get_by_role("button", name="Sign in as bob").click()
    await connected(page)
    await page.get_by_role("button", name="Send me a test notification").click()
    await expect(page.locator(".nw-badge")).to_have_text("1")
    await expect(page.locator(".nw-toast")).to_contain_text("Test notification")
    await expect(page.locator("#live li")).to_have_text(["Test notification"])  # the dashboard


# --- the pictures in the docs ----------------------------------------------------------------


@pytest.fixture
def screenshots(tmp_path):
    """NOTIFICATIONS_SCREENSHOTS=docs/screenshots saves them for the docs."""
    target = Path(os.environ.get("NOTIFICATIONS_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def sizes(directory, names):
    return {name: (directory / name).stat().st_size for name in names}


async def test_screenshots_of_the_bell_the_panel_and_a_toast(open_widget, alice, screenshots):
    target = screenshots
    now = timezone.now()
    await create(
        alice,
        "Weekly report is ready",
        body="Your numbers for last week.",
        url="/",
        created_at=now - timedelta(days=2),
    )
    await create(
        alice,
        "bob commented on your post",
        body="Nice work!",
        read_at=now,
        created_at=now - timedelta(hours=3),
    )
    await create(
        alice,
        "Disk almost full",
        body="The shared drive is at 92%.",
        level="warning",
        created_at=now - timedelta(minutes=12),
    )
    page = await open_widget(alice, viewport={"width": 960, "height": 860}, device_scale_factor=2)
    await connected(page)
    await notify(alice, "Invoice paid", body="Invoice #7 was paid.", level="success", url="/")
    toast = page.locator(".nw-toast")
    await expect(toast).to_be_visible()
    await page.wait_for_timeout(300)  # past the slide-in
    await toast.screenshot(path=target / "toast.png")
    await page.get_by_role("button", name="Dismiss").click()

    header = await page.locator(".site-header").bounding_box()
    bell = await page.locator(".nw").bounding_box()
    await page.screenshot(
        path=target / "bell.png",
        clip={"x": bell["x"] - 200, "y": 0, "width": 400, "height": header["height"]},
    )
    await page.locator(".nw-bell").click()
    panel = await page.locator(".nw-panel").bounding_box()
    await page.mouse.move(0, 0)
    await page.screenshot(
        path=target / "panel.png",
        clip={
            "x": panel["x"] - 16,
            "y": 0,
            "width": panel["width"] + 32,
            "height": panel["y"] + panel["height"] + 16,
        },
    )
    names = ("bell.png", "panel.png", "toast.png")
    assert all(size > 1000 for size in sizes(target, names).values())
