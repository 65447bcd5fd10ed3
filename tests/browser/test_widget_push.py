"""Web Push in Chromium: the widget's service worker, the "Desktop notifications" switch that
subscribes the browser, and the Push column of the preferences view (WEB_PUSH and EMAIL_DIGESTS
on in the daphne process).

Headless Chromium has no push service (its `pushManager.subscribe()` rejects), so the tests
that subscribe replace `subscribe()`/`getSubscription()` with an init script whose subscription
is one of the local push service (tests/push_service.py); pushes reach the service worker
through the DevTools protocol (`ServiceWorker.deliverPushMessage`). Nor can a test click an OS
notification: `notificationclick` is dispatched in the worker by the test, and Chromium refuses
such a click's `focus()` and `openWindow()` (only a click the browser dispatched may use them),
which the tests check, with what the worker asked for.

NOTIFICATIONS_SCREENSHOTS=<directory> keeps the screenshots.
"""

import asyncio
import json
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from playwright.async_api import expect

from notifications.models import Notification, PushSubscription
from notifications.push import payload
from notifications.push.keys import generate
from notifications.realtime import broker
from tests.browser import test_widget
from tests.browser.conftest import session_key
from tests.browser.test_widget import DESKTOP_FAKES, connected, create, notify, switch
from tests.browser.test_widget_email_preferences import (
    EMAIL_SETTINGS,
    an_inbox,
    open_preferences,
    saved,
    stored_preferences,
)
from tests.browser.test_widget_layout import OUTSIDE, phone
from tests.live import serving

pytestmark = test_widget.pytestmark
open_widget = test_widget.open_widget  # the fixtures
screenshots = test_widget.screenshots

PUBLIC_KEY, PRIVATE_KEY = generate()
PUSH_SETTINGS = {
    "WEB_PUSH": True,
    "WEB_PUSH_VAPID_PUBLIC_KEY": PUBLIC_KEY,
    "WEB_PUSH_VAPID_PRIVATE_KEY": PRIVATE_KEY,
    "WEB_PUSH_VAPID_SUBJECT": "mailto:tests@example.com",
    "WEB_PUSH_ALLOW_LOOPBACK_HTTP": True,  # the local push service's http://127.0.0.1 endpoints
}
WORKER_SCOPE = "/api/notifications/push/"
DELIVERY_SECONDS = 5.0  # shows take milliseconds: this is a dropped push, not a slow one
DELIVERY_ATTEMPTS = 3
FALLBACK_TITLE = "New notification"


@pytest.fixture(scope="module")
def server(request, django_db_setup, tmp_path_factory):
    """tests.live's daphne, with Web Push and email on."""
    with serving(request, tmp_path_factory, {**EMAIL_SETTINGS, **PUSH_SETTINGS}) as daphne:
        yield daphne


# --- the browser's push service, replaced ------------------------------------------------------

# `subscription` (the local push service's, as toJSON() gives it) stands for what the browser's
# push service would give; `fails` makes subscribe() reject as it does without a push service.
# A subscription lasts in every tab and across reloads (localStorage), as a browser's does.
# `window.pushCalls` records what the page asked.
FAKE_PUSH_MANAGER = """
(({ subscription, fails }) => {
  const KEY = "test:push-subscribed";
  window.pushCalls = [];
  const encoded = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const made = (key) => ({
    endpoint: subscription.endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: key },
    toJSON: () => structuredClone(subscription),
    unsubscribe: async () => {
      window.pushCalls.push(["unsubscribe"]);
      localStorage.removeItem(KEY);
      return true;
    },
  });
  PushManager.prototype.subscribe = async function ({ userVisibleOnly, applicationServerKey }) {
    window.pushCalls.push(["subscribe", userVisibleOnly, encoded(applicationServerKey)]);
    if (fails) throw new DOMException("Registration failed - push service error", "AbortError");
    localStorage.setItem(KEY, encoded(applicationServerKey));
    return made(applicationServerKey.buffer);
  };
  PushManager.prototype.getSubscription = async function () {
    const key = localStorage.getItem(KEY);
    if (!key) return null;
    const bytes = Uint8Array.from(atob(key.replace(/-/g, "+").replace(/_/g, "/")), (c) =>
      c.charCodeAt(0));
    return made(bytes.buffer);
  };
})
"""


def fake_push_manager(subscription=None, *, fails=False):
    arguments = json.dumps({"subscription": subscription, "fails": fails})
    return f"{FAKE_PUSH_MANAGER}({arguments});"


@database_sync_to_async
def subscriptions_of(user):
    return list(
        PushSubscription.objects.filter(user=user).values_list("endpoint", "p256dh", "auth")
    )


@database_sync_to_async
def subscription_owners():
    return list(PushSubscription.objects.values_list("user__username", flat=True))


async def until(check, what, seconds=15.0):
    # A wait, not a timing test: it returns as soon as `check` holds. 5 s was too short for a
    # push to show under a full suite on two cores (a fresh clone's make test missed one).
    check.__doc__ = what
    await test_widget.eventually(check, seconds)


async def opted_in(open_widget, user, subscription, **context_options):
    """A page of ``user`` that switched desktop notifications on, with the push service of
    ``subscription``; returns once the server has it."""
    page = await open_widget(user, path=None, permissions=["notifications"], **context_options)
    await page.context.add_init_script(fake_push_manager(subscription))
    await page.goto("/")
    await connected(page)
    await page.locator(".nw-bell").click()
    await page.get_by_label("Desktop notifications").check()

    async def stored():
        return bool(await subscriptions_of(user))

    await until(stored, "the subscription is on the server")
    return page


# --- the service worker, through the DevTools protocol -----------------------------------------


class ServiceWorkers:
    """A context's service worker registrations as DevTools sees them, and pushes to them."""

    def __init__(self, page, cdp):
        self.page = page
        self.cdp = cdp
        self.registrations = {}  # scope URL -> registration id
        cdp.on("ServiceWorker.workerRegistrationUpdated", self.updated)

    @classmethod
    async def of(cls, page):
        workers = cls(page, await page.context.new_cdp_session(page))
        await workers.cdp.send("ServiceWorker.enable")  # tells the registrations there already
        return workers

    def updated(self, event):
        for registration in event["registrations"]:
            if registration["isDeleted"]:
                self.registrations.pop(registration["scopeURL"], None)
            else:
                self.registrations[registration["scopeURL"]] = registration["registrationId"]

    @property
    def origin(self):
        return origin_of(self.page)

    async def push(self, data):
        """Delivers ``data`` (a dict is sent as JSON) to the widget's worker, as a push, and
        returns once the worker shows something new for it.

        Headless Chromium now and then drops a push that DevTools delivers to its active worker:
        nothing shows, ever (after other test modules, 2 of about 50 pushes in four runs, the
        first of a test as well as one in a series; each showed once delivered again, and
        nothing showed twice). A real push service delivers again what it could not; so does
        this, when nothing new shows within ``DELIVERY_SECONDS``. Every push shows something
        (browsers require it), so nothing new means not delivered."""
        scope = self.origin + WORKER_SCOPE

        async def registered():
            return scope in self.registrations

        await until(registered, f"a service worker is registered for {scope}")
        text = data if isinstance(data, str) else json.dumps(data)
        before = await shown(self.page)

        async def shown_anew():
            return await shown(self.page) != before

        for _attempt in range(DELIVERY_ATTEMPTS):
            await self.cdp.send(
                "ServiceWorker.deliverPushMessage",
                {"origin": self.origin, "registrationId": self.registrations[scope], "data": text},
            )
            try:
                await until(shown_anew, "the push shows", seconds=DELIVERY_SECONDS)
                return
            except pytest.fail.Exception:
                continue
        pytest.fail(f"the worker showed nothing for {text!r} in {DELIVERY_ATTEMPTS} deliveries")


def origin_of(page):
    scheme, _, rest = page.url.partition("://")
    return f"{scheme}://{rest.split('/')[0]}"


async def shown(page):
    """The notifications the widget's worker shows now (`registration.getNotifications()`)."""
    return await page.evaluate(
        """async (scope) => {
          const registration = await navigator.serviceWorker.getRegistration(scope);
          const shown = registration ? await registration.getNotifications() : [];
          return shown.map(({ title, body, tag, data, timestamp, renotify }) =>
            ({ title, body, tag, data, timestamp, renotify }));
        }""",
        WORKER_SCOPE,
    )


async def shown_titles(page, titles):
    """Waits until the worker shows notifications of these titles (in any order: browsers keep
    none); returns them in the order of ``titles``."""

    async def check():
        check.seen = sorted(notification["title"] for notification in await shown(page))
        return check.seen == sorted(titles)

    check.seen = []
    try:
        await until(check, f"the worker shows {titles}")
    except pytest.fail.Exception:
        pytest.fail(f"the worker shows {check.seen}, not {sorted(titles)}")
    return sorted(await shown(page), key=lambda notification: titles.index(notification["title"]))


async def the_worker(page):
    """Playwright's handle on the widget's service worker (to run code in it)."""
    for worker in page.context.service_workers:
        if "/push/service-worker.js" in worker.url:
            return worker
    return await page.context.wait_for_event(
        "serviceworker", lambda worker: "/push/service-worker.js" in worker.url
    )


def milliseconds(iso):
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# A click on the notification tagged `tag`, as the browser would dispatch it, with what the worker
# asked for. A constructed event's waitUntil() throws (only the browser's own events may be
# extended), so this one keeps the promise for the test to await; focus() and openWindow() are
# watched and still called.
CLICK = """async (tag) => {
  const [notification] = await self.registration.getNotifications({ tag });
  const asked = [];
  const { focus } = WindowClient.prototype;
  const { openWindow } = Clients.prototype;
  WindowClient.prototype.focus = function () {
    asked.push(["focus", this.url]);
    return focus.call(this);
  };
  Clients.prototype.openWindow = function (url) {
    asked.push(["openWindow", url]);
    return openWindow.call(this, url);
  };
  let settled = null;
  try {
    const event = new NotificationEvent("notificationclick", { notification });
    let extended = Promise.resolve();
    event.waitUntil = (promise) => { extended = promise; };
    self.dispatchEvent(event);
    await extended;
    settled = "fulfilled";
  } catch (error) {
    settled = `${error.name}: ${error.message}`;
  } finally {
    WindowClient.prototype.focus = focus;
    Clients.prototype.openWindow = openWindow;
  }
  const left = await self.registration.getNotifications({ tag });
  return { asked, settled, stillShown: left.length };
}"""


@database_sync_to_async
def push_message(notification, unread_count=1):
    """What the server pushes for ``notification`` (its payload, decoded)."""
    return json.loads(payload.message(notification, unread_count))


@database_sync_to_async
def read_at(notification):
    return Notification.objects.get(pk=notification.pk).read_at


# --- the service worker ------------------------------------------------------------------------


async def test_a_push_shows_a_notification_a_newer_one_of_its_group_replaces(
    open_widget, alice, push_service
):
    page = await opted_in(open_widget, alice, push_service.subscribe().as_json())
    scope = await page.evaluate(
        "async (url) => (await navigator.serviceWorker.getRegistration(url)).scope",
        WORKER_SCOPE,
    )
    assert scope == origin_of(page) + WORKER_SCOPE  # its own directory, not "/"
    workers = await ServiceWorkers.of(page)
    origin = workers.origin
    worker = await the_worker(page)
    await worker.evaluate(  # the app badge (of an installed web app): recorded
        "() => { self.badges = []; navigator.setAppBadge = async (n) => { badges.push(n) } }"
    )
    first = {
        "id": 41,
        "title": "Invoice paid",
        "body": "Thank you.",
        "level": "success",
        "category": "billing",
        "url": "/invoices/7/",
        "open": "/api/notifications/email/open/token-41/",
        "tag": "notifications-group-invoices",
        "count": 1,
        "created_at": "2026-03-04T05:06:07.123456Z",
        "unread_count": 3,
    }
    await workers.push(first)
    [notification] = await shown_titles(page, ["Invoice paid"])
    assert notification == {
        "title": "Invoice paid",
        "body": "Thank you.",
        "tag": "notifications-group-invoices",
        "data": {
            "source": "notifications",  # the worker's own, not a site's
            "id": 41,
            "url": f"{origin}/invoices/7/",
            "open": f"{origin}/api/notifications/email/open/token-41/",
        },
        "timestamp": milliseconds(first["created_at"]),
        "renotify": False,
    }

    second = {**first, "id": 42, "title": "2 invoices paid", "count": 2, "unread_count": 4}
    await workers.push(second)
    [notification] = await shown_titles(page, ["2 invoices paid"])  # in the first one's place
    assert notification["data"]["id"] == 42
    assert notification["renotify"] is True  # the group grew: said again

    other = {**first, "id": 43, "title": "Elsewhere", "tag": "notifications-43", "url": ""}
    await workers.push(other)
    both = await shown_titles(page, ["2 invoices paid", "Elsewhere"])
    assert both[1]["data"] == {
        "source": "notifications",
        "id": 43,
        "url": None,
        "open": origin + first["open"],
    }
    assert await worker.evaluate("badges") == [3, 4, 3]

    # Unreadable pushes still show one (browsers require it), in the page's language.
    for unreadable in ("not JSON {", "", json.dumps(["a", "list"])):
        await workers.push(unreadable)
    titles = ["2 invoices paid", "Elsewhere", *[FALLBACK_TITLE] * 3]
    generic = (await shown_titles(page, titles))[-1]
    assert generic["body"] == ""
    assert generic["data"] == {"source": "notifications", "id": None, "url": None, "open": None}


# --- a click on it -----------------------------------------------------------------------------


async def test_a_click_marks_it_read_and_asks_for_its_page(open_widget, alice, push_service):
    # One notification for the page the browser shows ("/"), one for a page it does not.
    [here] = await create(alice, "Here", url="/")
    [there] = await create(alice, "There", url="/?invoice=7")
    page = await opted_in(open_widget, alice, push_service.subscribe().as_json())
    workers = await ServiceWorkers.of(page)
    origin = workers.origin
    messages = [await push_message(here), await push_message(there)]
    for message in messages:
        await workers.push(message)
    await shown_titles(page, ["Here", "There"])
    worker = await the_worker(page)

    # A window shows its page: the worker asks to focus it, and marks the notification read.
    click = await worker.evaluate(CLICK, messages[0]["tag"])
    assert click["asked"] == [["focus", f"{origin}/"]]
    # Chromium lets a worker focus a window only in a click the browser dispatched.
    assert click["settled"] == "InvalidAccessError: Not allowed to focus a window."
    assert click["stillShown"] == 0  # closed
    await until(is_read(here), "'Here' is read in the database")
    await expect(page.locator(".nw-badge")).to_have_text("1")  # the open page heard it

    # None does: the worker asks to open its open link (which marks it read and redirects).
    click = await worker.evaluate(CLICK, messages[1]["tag"])
    assert click["asked"] == [["openWindow", origin + messages[1]["open"]]]
    # Refused as focus() is; the worker then marks it read itself.
    assert click["settled"] == "InvalidAccessError: Not allowed to open a window."
    assert click["stillShown"] == 0
    assert [page.url for page in page.context.pages] == [f"{origin}/"]  # none opened
    await until(is_read(there), "'There' is read in the database")
    await expect(page.locator(".nw-badge")).to_be_hidden()
    # What the window would have shown: the open link leads to the notification's page.
    await page.goto(messages[1]["open"])
    assert page.url == f"{origin}/?invoice=7"


def is_read(notification):
    async def check():
        return await read_at(notification) is not None

    return check


# --- the switch --------------------------------------------------------------------------------


async def test_the_switch_subscribes_the_browser_and_a_notification_reaches_it_with_no_tab_open(
    open_widget, alice, push_service, settings
):
    subscription = push_service.subscribe()
    page = await open_widget(alice, path=None, permissions=["notifications"])
    await page.context.add_init_script(fake_push_manager(subscription.as_json()))
    posted = []  # by every tab
    page.context.on(
        "request",
        lambda r: "push-subscriptions" in r.url and posted.append((r.method, r.post_data_json)),
    )
    await page.goto("/")
    await connected(page)
    await page.locator(".nw-bell").click()
    desktop = page.get_by_label("Desktop notifications")
    await desktop.check()

    async def stored():
        return await subscriptions_of(alice) == [
            (subscription.endpoint, subscription.p256dh, subscription.auth)
        ]

    await until(stored, "alice's subscription is on the server")
    assert posted == [("POST", subscription.as_json())]
    assert await page.evaluate("pushCalls") == [["subscribe", True, PUBLIC_KEY]]
    await expect(desktop).to_be_checked()

    # Opted in, the next page posts it again (the server's 200 refreshes it).
    await page.reload()
    await connected(page)

    async def posted_again():
        return len(posted) == 2

    await until(posted_again, "the subscription is posted again")
    assert posted[1] == ("POST", subscription.as_json())
    assert await page.evaluate("pushCalls") == []  # the browser's own, kept

    # No tab open: the notification goes out as a push (tasks run at once in this process).
    blank = await page.context.new_page()  # keeps the browser context
    await page.close()
    settings.NOTIFICATIONS = PUSH_SETTINGS
    settings.TASKS = {"default": {"BACKEND": immediate_backend()}}
    await until(offline(alice), "alice has no socket open")
    await notify(alice, "Build finished", "All 112 tests passed.", url="/builds/9/")
    [message] = await asyncio.to_thread(push_service.wait_for, 1)
    sent = await database_sync_to_async(Notification.objects.get)(title="Build finished")
    body = message.json()
    assert body == {
        "id": sent.pk,
        "title": "Build finished",
        "body": "All 112 tests passed.",
        "level": "info",
        "category": "",
        "url": "/builds/9/",
        "open": body["open"],
        "tag": f"notifications-{sent.pk}",
        "count": 1,
        "created_at": body["created_at"],
        "unread_count": 1,
    }
    assert body["open"].startswith("/api/notifications/email/open/")

    # The browser's worker shows it (delivered through DevTools, as the push service would).
    page = await open_widget.new_tab(blank)
    workers = await ServiceWorkers.of(page)
    await workers.push(message.payload.decode())
    [notification] = await shown_titles(page, ["Build finished"])
    assert notification["body"] == "All 112 tests passed."
    assert notification["data"]["url"] == f"{workers.origin}/builds/9/"

    # Off: unsubscribed in the browser, and deleted on the server.
    await connected(page)

    async def posted_by_the_new_tab():
        return len(posted) == 3

    await until(posted_by_the_new_tab, "the new tab posts the subscription")
    await page.locator(".nw-bell").click()
    await page.get_by_label("Desktop notifications").uncheck()

    async def gone():
        return await subscriptions_of(alice) == []

    await until(gone, "the subscription is deleted on the server")
    assert ["unsubscribe"] in await page.evaluate("pushCalls")


def immediate_backend():
    try:
        import django.tasks  # noqa: F401

        return "django.tasks.backends.immediate.ImmediateBackend"
    except ImportError:
        return "django_tasks.backends.immediate.ImmediateBackend"


def offline(user):
    async def check():
        online = await sync_to_async(broker.online)([user.pk])
        return not online or user.pk not in online

    return check


async def test_the_browser_goes_to_whoever_signs_in_next(open_widget, alice, bob, push_service):
    subscription = push_service.subscribe()
    page = await opted_in(open_widget, alice, subscription.as_json())
    await page.context.clear_cookies()
    await page.context.add_cookies(
        [{"name": "sessionid", "value": await session_key(bob), "url": page.url}]
    )
    await page.reload()  # bob, in the same browser: his page posts its subscription

    async def bobs():
        return await subscription_owners() == ["bob"]

    await until(bobs, "the subscription is bob's")
    await connected(page)


async def test_without_a_push_service_the_switch_still_turns_on_page_notifications(
    open_widget, alice
):
    page = await open_widget(alice, path=None, permissions=["notifications"])
    await page.add_init_script(DESKTOP_FAKES)
    await page.context.add_init_script(fake_push_manager(fails=True))
    await page.goto("/")
    await connected(page)
    await page.locator(".nw-bell").click()
    desktop = page.get_by_label("Desktop notifications")
    await desktop.check()

    async def tried():
        return await page.evaluate("pushCalls.length") == 1

    await until(tried, "the page tried to subscribe")
    await expect(desktop).to_be_checked()
    await expect(desktop).to_have_accessible_description("")  # no line: not blocked
    assert await subscriptions_of(alice) == []

    await page.evaluate("pretendHidden(true)")
    await notify(alice, "On the desktop all the same")
    await expect(page.locator(".nw-badge")).to_have_text("1")
    assert await page.evaluate("desktopShown") == ["On the desktop all the same"]


BLOCKED = 'Object.defineProperty(Notification, "permission", { get: () => "denied" });'


async def test_blocked_notifications_disable_the_switch_with_a_line_saying_why(
    open_widget, alice, axe_script, screenshots
):
    page = await open_widget(alice, path=None, bypass_csp=True)
    await page.add_init_script(BLOCKED)  # as the site's settings in the browser would
    await page.goto("/")
    await connected(page)
    await page.locator(".nw-bell").click()
    desktop = page.get_by_role("checkbox", name="Desktop notifications")
    await expect(desktop).to_be_disabled()
    blocked = "Desktop notifications are blocked in this browser's settings."
    await expect(page.locator(".nw-desktop-blocked")).to_have_text(blocked)
    await expect(page.locator(".nw-desktop-blocked")).to_be_visible()
    await expect(desktop).to_have_accessible_description(blocked)
    await page.screenshot(path=screenshots / "desktop-notifications-blocked.png")
    await page.add_script_tag(path=str(axe_script))
    result = await page.evaluate(
        "axe.run(document.querySelector('.nw'), {resultTypes: ['violations']})"
    )
    assert [v["id"] for v in result["violations"]] == []


# --- the Push column ---------------------------------------------------------------------------


async def test_the_push_column_round_trips_beside_in_app_and_email(open_widget, alice):
    await an_inbox(alice)
    page = await open_widget(alice)
    view = await open_preferences(page)
    sent = []
    page.on("request", lambda r: r.method == "PUT" and sent.append(r.post_data_json))
    for name, rows in (
        ("Levels", ["Info", "Success", "Warning", "Error"]),
        ("Categories", ["billing", "digest", "security"]),
    ):
        table = view.get_by_role("table", name=name)
        header = "Level" if name == "Levels" else "Category"
        await expect(table.get_by_role("columnheader")).to_have_text(
            [header, "In-app", "Email", "Push"]
        )
        for row in rows:
            await expect(switch(table, row, "Push")).to_be_checked()
    await expect(switch(view, "security", "Push")).to_be_enabled()  # only in-app is locked

    await switch(view, "digest", "Push").uncheck()
    await switch(view, "Info", "Push").uncheck()
    await saved(page)
    push = {"muted_categories": ["digest"], "muted_levels": ["info"]}  # `enabled` left as it is
    email = {"enabled": True, "muted_categories": [], "muted_levels": []}
    assert sent == [
        {"muted_categories": [], "muted_levels": [], "channels": {"email": email, "push": push}}
    ]
    preferences = await stored_preferences(alice)
    assert preferences["channels"]["push"] == {"enabled": True, **push}
    assert preferences["channels"]["email"] == email

    await page.reload()
    view = await open_preferences(page)
    await expect(switch(view, "digest", "Push")).not_to_be_checked()
    await expect(switch(view, "digest", "Email")).to_be_checked()
    await expect(switch(view, "Info", "Push")).not_to_be_checked()
    await view.get_by_role("switch", name="Never email me").check()
    await expect(switch(view, "billing", "Push")).to_be_enabled()  # push is not email
    await switch(view, "digest", "Push").check()
    await saved(page)
    preferences = await stored_preferences(alice)
    assert preferences["channels"]["push"]["muted_categories"] == []
    assert preferences["channels"]["email"]["enabled"] is False


async def test_the_push_switches_work_by_keyboard_alone(open_widget, alice):
    await create(alice, "Invoice paid", category="billing")
    page = await open_widget(alice)
    await open_preferences(page)
    focused = test_widget.focused_in_widget(page)
    await page.keyboard.press("Tab")
    await expect(focused).to_have_accessible_name("Never email me")
    order = [f"{name} {channel}" for name in ("Info", "Success", "Warning", "Error", "billing")
             for channel in ("In-app", "Email", "Push")]  # fmt: skip
    order += ["security Email", "security Push"]  # its in-app switch is locked: Tab skips it
    for name in order:
        await page.keyboard.press("Tab")
        await expect(focused).to_have_accessible_name(name)
        if name in ("billing Push", "Error Push"):
            await page.keyboard.press("Space")  # off
            await expect(focused).not_to_be_checked()
    await page.keyboard.press("Tab")
    await expect(focused).to_have_text("Save")
    await page.keyboard.press("Enter")
    await expect(page.locator(".nw-prefs-status")).to_have_text("Your preferences were saved.")
    preferences = await stored_preferences(alice)
    assert preferences["channels"]["push"]["muted_categories"] == ["billing"]
    assert preferences["channels"]["push"]["muted_levels"] == ["error"]
    assert preferences["muted_categories"] == []


@pytest.mark.parametrize(
    ("where", "scheme"), [("phone", "dark"), ("admin", "light")], ids=["phone-360-dark", "admin"]
)
async def test_three_columns_fit_on_a_phone_and_in_the_admin_and_pass_axe(
    open_widget, make_user, where, scheme, screenshots, axe_script
):
    staff = await database_sync_to_async(make_user)("staff", is_staff=True, is_superuser=True)
    await an_inbox(staff)
    await create(
        staff, "Long", category="a-category-with-a-name-long-enough-to-wrap-on-a-phone-screen-xx"
    )
    if where == "phone":
        path, options = "/", phone("360x740")
    else:
        path, options = "/admin/", {"viewport": {"width": 1100, "height": 700}}
    width = options["viewport"]["width"]
    page = await open_widget(staff, path=path, bypass_csp=True, color_scheme=scheme, **options)
    view = await open_preferences(page)
    await switch(view, "digest", "Push").uncheck()
    assert await page.locator(".nw-panel").evaluate(OUTSIDE) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await page.add_script_tag(path=str(axe_script))
    result = await page.evaluate(
        "axe.run(document.querySelector('.nw'), {resultTypes: ['violations']})"
    )
    violations = [
        {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"][:3]]}
        for v in result["violations"]
    ]
    assert violations == [], json.dumps(violations, indent=2)
    await page.mouse.move(0, 0)
    await page.screenshot(path=screenshots / f"push-preferences-{where}-{width}-{scheme}.png")
    last = view.locator('input[data-channel="push"]').last
    await last.click()  # a real click: Playwright fails it if anything covers the switch
    await saved(page)
    preferences = await stored_preferences(staff)
    assert preferences["channels"]["push"]["muted_categories"] == ["digest", "security"]
