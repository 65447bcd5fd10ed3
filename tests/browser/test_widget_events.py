"""The widget's DOM events (docs/widget.md, "Events"), heard in two tabs of one browser: each fires
once per real change in each tab, with the right detail, whichever tab or device made the change
and however it reaches the tab (the tab's own REST answer, another tab's relay, the server's echo
over the socket). test_widget_units.py checks the polling side (one message per poll).

After each change the test sends a notification (a barrier): it reaches each tab after whatever
the server pushed before it, so once both tabs have heard it, every event of the change is in,
and a duplicate that comes later still shows among the next step's events.
"""

import re
from pathlib import Path

from channels.db import database_sync_to_async
from playwright.async_api import expect

from notifications import services
from notifications.models import Notification
from tests.browser import test_widget
from tests.browser.test_widget import connected, create, eventually, notify, switch, widget

pytestmark = test_widget.pytestmark
open_widget = test_widget.open_widget  # the fixture

DOCS = Path(__file__).resolve().parents[2] / "docs" / "widget.md"


def documented_events() -> list[str]:
    section = DOCS.read_text().split("## Events", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(notifications:[a-z]+)` \|", section, re.M)


# Every documented event, heard on document (they bubble from the widget's element).
RECORDER = """(names) => {
  window.heard = [];
  for (const name of names) {
    document.addEventListener(name, (event) => {
      window.heard.push({ name, detail: JSON.parse(JSON.stringify(event.detail)) });
    });
  }
}"""


def summary(event):
    """An event as a tuple that says what matters of it."""
    name, detail = event["name"].removeprefix("notifications:"), event["detail"]
    if name == "received":
        return (name, detail["notification"]["id"], detail["notification"]["title"])
    if name == "changed":
        return (
            name,
            detail["ids"],
            detail["state"],
            detail["replaced"],
            detail["unreadCount"],
            detail["unseenCount"],
        )
    if name == "preferences":
        return (name, detail["mutedCategories"], detail["mutedLevels"])
    if name == "connection":
        return (name, detail["state"], detail["previous"])
    return (name, detail)


@database_sync_to_async
def counts(user):
    answer = Notification.objects.for_user(user).counts()
    return answer["unread_count"], answer["unseen_count"]


@database_sync_to_async
def ids_of(user, **filters):
    return list(
        Notification.objects.for_user(user)
        .filter(**filters)
        .order_by("id")
        .values_list("id", flat=True)
    )


@database_sync_to_async
def by_title(title):
    return Notification.objects.get(title=title).id


class Tabs:
    """Two tabs of one browser, the first the leader, and what each has heard so far."""

    def __init__(self, user, leader, follower):
        self.user = user
        self.pages = (leader, follower)
        self.barriers = 0

    async def listen(self):
        names = documented_events()
        assert set(names) == {
            "notifications:received",
            "notifications:changed",
            "notifications:preferences",
            "notifications:connection",
        }
        for page in self.pages:
            await page.evaluate(RECORDER, names)

    async def heard(self):
        return [
            [summary(event) for event in await page.evaluate("window.heard.splice(0)")]
            for page in self.pages
        ]

    async def barrier(self, title=None, **fields):
        """A notification sent now; returns what each tab should have heard of it, once both
        heard it."""
        self.barriers += 1
        title = title or f"Barrier {self.barriers}"
        await notify(self.user, title, **fields)
        for page in self.pages:
            await page.wait_for_function(
                "(title) => window.heard.some((e) => e.name === 'notifications:received'"
                " && e.detail.notification.title === title)",
                arg=title,
            )
        return [("received", await by_title(title), title)]

    async def expect(self, *changes, replaced=()):
        """Both tabs heard exactly these changes (ids, state), each once and in this order, with
        the counts the server has after them, and then the barrier's arrival."""
        unread, unseen = await counts(self.user)
        expected = [("changed", ids, state, [], unread, unseen) for ids, state in changes]
        received = await self.barrier()
        unread, unseen = await counts(self.user)
        expected += [*received, ("changed", [received[0][1]], "created", [], unread, unseen)]
        assert await self.heard() == [expected, expected]


async def until(check, doc):
    check.__doc__ = doc
    await eventually(check)


async def test_every_documented_event_fires_once_per_change_in_each_tab(open_widget, alice):
    first, second, third = [n.id for n in await create(alice, "First", "Second", "Third")]
    leader = await open_widget(alice)
    follower = await open_widget.new_tab(leader)
    for page in (leader, follower):
        await connected(page)
        await page.wait_for_function("window.notificationsWidget.notifications.length === 3")
    await expect(widget(follower)).to_have_attribute("data-role", "follower")
    tabs = Tabs(alice, leader, follower)
    await tabs.listen()

    # Opening the panel marks seen what it shows (a REST change made in the leader tab).
    await leader.locator(".nw-bell").click()
    await until(lambda: _none_unseen(alice), "everything is seen in the database")
    await tabs.expect(([first, second, third], "seen"))

    # Made in the leader tab.
    await (
        leader.locator(f'.nw-item[data-id="{third}"]')
        .get_by_role("button", name="Mark as read")
        .click()
    )
    await until(lambda: _is_read(third), "Third is read in the database")
    await tabs.expect(([third], "read"))

    # Made in the follower tab: it opens its panel (marking seen what came since), then marks
    # one unread and archives another.
    await follower.locator(".nw-bell").click()
    await until(lambda: _none_unseen(alice), "everything is seen in the database")
    await tabs.expect(([await by_title("Barrier 1"), await by_title("Barrier 2")], "seen"))
    await (
        follower.locator(f'.nw-item[data-id="{third}"]')
        .get_by_role("button", name="Mark as unread")
        .click()
    )
    await until(lambda: _is_read(third, False), "Third is unread in the database")
    await tabs.expect(([third], "unread"))
    await (
        follower.locator(f'.nw-item[data-id="{second}"]')
        .get_by_role("button", name="Archive")
        .click()
    )
    await expect(leader.locator(f'.nw-item[data-id="{second}"]')).to_have_count(0)
    await until(lambda: _is_archived(second), "Second is archived in the database")
    await tabs.expect(([second], "archived"))

    # Mark all as read, in the leader tab: exactly the ids the server changed (the archived one
    # too: archiving does not read).
    unread = await ids_of(alice, read_at__isnull=True)
    await leader.get_by_role("button", name="Mark all as read").click()
    await until(lambda: _none_unread(alice), "nothing is unread in the database")
    await tabs.expect((unread, "read"))

    # Made elsewhere (another device): heard from the server only.
    await database_sync_to_async(services.mark_unread)(alice, [first])
    await tabs.expect(([first], "unread"))
    await database_sync_to_async(services.unarchive)(alice, [second])
    await tabs.expect(([second], "unarchived"))
    await expect(follower.locator(f'.nw-item[data-id="{second}"]')).to_have_count(1)

    # A grouped notification replaces the unread one of its key: one arrival, naming it.
    replaced = await tabs.barrier("New comments", group_key="post-7")
    await tabs.heard()
    received = await tabs.barrier("New comments, again", group_key="post-7")
    unread, unseen = await counts(alice)
    expected = [
        *received,
        ("changed", [received[0][1]], "created", [replaced[0][1]], unread, unseen),
    ]
    assert await tabs.heard() == [expected, expected]

    # Preferences saved in the follower tab: said in both, and shown in the leader tab's open
    # view; saved again unchanged in the leader tab: said nowhere.
    await leader.get_by_role("button", name="Preferences").click()
    await expect(switch(leader, "Warning")).to_be_checked()
    await follower.get_by_role("button", name="Preferences").click()
    await switch(follower, "Warning").uncheck()
    await follower.get_by_role("button", name="Save").click()
    await expect(follower.locator(".nw-prefs-status")).to_have_text("Your preferences were saved.")
    await expect(switch(leader, "Warning")).not_to_be_checked()
    await leader.get_by_role("button", name="Save").click()
    await expect(leader.locator(".nw-prefs-status")).to_have_text("Your preferences were saved.")
    preferences = ("preferences", [], ["warning"])
    received = await tabs.barrier()
    unread, unseen = await counts(alice)
    expected = [
        preferences,
        *received,
        ("changed", [received[0][1]], "created", [], unread, unseen),
    ]
    assert await tabs.heard() == [expected, expected]

    # Signed out: the connection state changes once in each tab.
    cookies = {cookie["name"]: cookie["value"] for cookie in await leader.context.cookies()}
    await leader.request.post("/logout/", headers={"X-CSRFToken": cookies["csrftoken"]})
    for page in (leader, follower):
        await expect(widget(page)).to_have_attribute("data-connection", "signed-out")
    assert await tabs.heard() == [[("connection", "signed-out", "connected")]] * 2


@database_sync_to_async
def _none_unseen(user):
    return Notification.objects.for_user(user).unseen().count() == 0


@database_sync_to_async
def _none_unread(user):
    return Notification.objects.for_user(user).unread().count() == 0


@database_sync_to_async
def _is_read(id_, read=True):
    return (Notification.objects.get(id=id_).read_at is not None) == read


@database_sync_to_async
def _is_archived(id_):
    return Notification.objects.get(id=id_).archived_at is not None
