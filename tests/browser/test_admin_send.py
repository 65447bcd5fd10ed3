"""Sending from the admin in a real browser: members of a group see the notification arrive live."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from playwright.async_api import expect

from notifications.models import Notification

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEND_URL = "/admin/notifications/notification/send/"


@database_sync_to_async
def create_people():
    users = get_user_model().objects
    staff = users.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["send_notification", "view_notification"])
    )
    team = Group.objects.create(name="Team")
    members = [users.create_user(name, password="pw") for name in ("ann", "ben")]
    team.user_set.add(*members)
    outsider = users.create_user("olga", password="pw")
    return staff, members, outsider


@database_sync_to_async
def recipients_of(title):
    return set(Notification.objects.filter(title=title).values_list("recipient_id", flat=True))


async def open_connected(open_page, user, path="/"):
    """The user's page, once its notification socket has said hello (whatever the page's script
    shows for it): a notification sent from now on can only arrive live."""
    page = await open_page(user, path=None)
    greeted = asyncio.Event()

    def watch(socket):
        if "/ws/notifications/" in socket.url:
            socket.on("framereceived", lambda payload: '"hello"' in payload and greeted.set())

    page.on("websocket", watch)
    await page.goto(path)
    await asyncio.wait_for(greeted.wait(), 10)
    return page


async def test_staff_sends_to_a_group_and_its_members_see_it_live(open_page):
    staff, members, outsider = await create_people()
    title = "Fire drill at <3pm> & no lifts"
    member_pages = [await open_connected(open_page, member) for member in members]
    for page in member_pages:
        await expect(page.locator("body")).not_to_contain_text(title)

    admin = await open_page(staff, SEND_URL)
    await admin.get_by_label("Active members of the selected groups").check()
    await admin.locator("#id_groups").select_option(label="Team")
    await admin.locator("#id_title").fill(title)
    await admin.locator("#id_body").fill("Meet at the car park.")
    await admin.locator("input[name=_send]").click()

    await expect(admin.locator(".messagelist")).to_contain_text("Sent the notification to 2 users.")
    for page in member_pages:
        await expect(page.locator("body")).to_contain_text(title)
    assert await recipients_of(title) == {member.pk for member in members}
    assert outsider.pk not in await recipients_of(title)


async def test_the_preview_shows_the_notification_as_text(open_page):
    staff, members, _outsider = await create_people()
    admin = await open_page(staff, SEND_URL)
    await admin.get_by_label("Active members of the selected groups").check()
    await admin.locator("#id_groups").select_option(label="Team")
    await admin.locator("#id_title").fill("<img src=x onerror=alert(1)> hi")
    await admin.locator("input[name=_preview]").click()

    preview = admin.locator(".notification-preview")
    await expect(preview.locator(".notification-title")).to_have_text(
        "<img src=x onerror=alert(1)> hi"
    )
    assert await preview.locator("img").count() == 0
    await expect(admin.locator("#recipient-count")).to_contain_text("2 users")
    assert await recipients_of("<img src=x onerror=alert(1)> hi") == set()
