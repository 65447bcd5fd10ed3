"""Sending to an object's followers from the admin in a real browser: staff choose "Followers of
an object", its type and id, confirm, and a follower sees it arrive live; one who muted the
object does not get it.

NOTIFICATIONS_SCREENSHOTS=<directory> keeps the screenshots of the page (desktop and 360 px).
"""

import os
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from playwright.async_api import expect

from notifications import services
from notifications.models import Notification
from tests.browser.test_admin_send import open_connected
from tests.live import serving

# Between tests the tables are emptied and the content types written again, under new ids,
# while the server process keeps the ids it read in its ContentType cache: only the module's first
# test may have the server look a followed object's type up (followers(), the preview's count).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEND_URL = "/admin/notifications/notification/send/"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
GROUP_TYPE = "Group (Authentication and Authorization)"


@pytest.fixture(scope="module")
def server(request, django_db_setup, tmp_path_factory):
    """tests.live's daphne, asking for a confirmation above one recipient."""
    with serving(request, tmp_path_factory, {"SEND_CONFIRM_ABOVE": 1}) as daphne:
        yield daphne


@pytest.fixture
def screenshots(tmp_path):
    target = Path(os.environ.get("NOTIFICATIONS_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@database_sync_to_async
def create_people():
    """A team that ann and ben follow, and that cat followed then muted; olga follows nothing."""
    users = get_user_model().objects
    staff = users.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["send_notification", "view_notification"])
    )
    team = Group.objects.create(name="Team")
    people = {
        name: users.create_user(name, password="pw") for name in ("ann", "ben", "cat", "olga")
    }
    services.follow(people["ann"], team, reason="author")
    services.follow(people["ben"], team, reason="participated")
    services.follow(people["cat"], team)
    services.mute_object(people["cat"], team)
    return staff, team, people


@database_sync_to_async
def sent(title):
    rows = Notification.objects.filter(title=title)
    return {row.recipient.username: (row.target_object_id, row.target_content_type.model)
            for row in rows.select_related("recipient", "target_content_type")}  # fmt: skip


async def choose_the_team(admin, team, title):
    await admin.get_by_label("Followers of an object").check()
    await admin.locator("#id_object_type").select_option(label=GROUP_TYPE)
    await admin.locator("#id_object_id").fill(str(team.pk))
    await admin.locator("#id_title").fill(title)


async def test_staff_send_to_an_objects_followers_and_a_follower_sees_it_live(
    open_page, screenshots
):
    staff, team, people = await create_people()
    title = "Team <meeting> moved & shortened"
    ann_page = await open_connected(open_page, people["ann"])
    cat_page = await open_connected(open_page, people["cat"])

    admin = await open_page(staff, SEND_URL)
    await choose_the_team(admin, team, title)
    await admin.locator("input[name=_send]").click()

    # Two followers: above SEND_CONFIRM_ABOVE, so the page asks first.
    await expect(admin.locator("#notification-preview h2")).to_have_text("Confirm the send")
    await expect(admin.locator("#recipient-count")).to_contain_text("2 users")
    await expect(admin.locator("#send-target")).to_contain_text("They follow group “Team”")
    await admin.locator("#notification-preview").screenshot(
        path=screenshots / "admin-send-followers-confirm.png"
    )
    assert await sent(title) == {}
    await admin.get_by_role("button", name="Yes, send to 2 users").click()

    await expect(admin.locator(".messagelist")).to_contain_text("Sent the notification to 2 users.")
    await expect(ann_page.locator("body")).to_contain_text(title)
    assert await sent(title) == {"ann": (str(team.pk), "group"), "ben": (str(team.pk), "group")}
    await expect(cat_page.locator("body")).not_to_contain_text(title)


async def test_the_page_with_followers_chosen_fits_a_desktop_and_a_phone(open_page, screenshots):
    staff, team, _people = await create_people()
    for name, viewport in (("desktop", DESKTOP), ("360", PHONE)):
        admin = await open_page(staff, SEND_URL, viewport=viewport)
        await choose_the_team(admin, team, "Hello")
        for field in ("#id_object_type", "#id_object_id", "#id_audience_3"):
            box = await admin.locator(field).bounding_box()
            assert box is not None and box["x"] >= 0, field
            assert box["x"] + box["width"] <= viewport["width"], field
        # No sideways scrolling of the page.
        width = await admin.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], name
        await admin.screenshot(
            path=screenshots / f"admin-send-followers-{name}.png", full_page=True
        )
