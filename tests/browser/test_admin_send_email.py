"""The send page's channel choice in a real browser, on a phone's width (EMAIL_DIGESTS on)."""

import os
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from playwright.async_api import expect

from notifications.models import Notification
from tests.live import serving

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEND_URL = "/admin/notifications/notification/send/"
PHONE = {"width": 360, "height": 740}
EMAIL_ON = {"EMAIL_DIGESTS": True, "BASE_URL": "http://127.0.0.1"}


@pytest.fixture(scope="module")
def server(request, django_db_setup, tmp_path_factory):
    """tests.live's daphne, with email digests on."""
    with serving(request, tmp_path_factory, EMAIL_ON) as daphne:
        yield daphne


@database_sync_to_async
def create_people():
    users = get_user_model().objects
    staff = users.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["send_notification", "view_notification"])
    )
    return staff, users.create_user("ann", password="pw", email="ann@example.com")


@database_sync_to_async
def email_of(title):
    return list(Notification.objects.filter(title=title).values_list("email", flat=True))


async def test_the_channel_choice_on_a_phone(open_page, tmp_path):
    staff, ann = await create_people()
    admin = await open_page(staff, f"{SEND_URL}?users={ann.pk}", viewport=PHONE)
    choices = admin.locator("input[name=email]")
    await expect(choices).to_have_count(4)
    await expect(admin.get_by_label("As the site decides")).to_be_checked()
    for label in (
        "As the site decides",
        "In-app only",
        "In-app, and email if still unseen (digest)",
        "In-app and email at once",
    ):
        box = await admin.get_by_text(label, exact=True).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    target = Path(os.environ.get("NOTIFICATIONS_SCREENSHOTS", tmp_path))
    # The admin's own fieldset (Django 6 also wraps the radio group in one of its own).
    await admin.locator("fieldset.module", has=choices.first).screenshot(
        path=target / "admin-send-channels-360.png"
    )

    await admin.get_by_label("In-app and email at once").check()
    await admin.locator("#id_title").fill("Server restart at noon")
    await admin.locator("input[name=_preview]").click()
    await expect(admin.locator("#send-channels")).to_have_text("Channels: In-app and email at once")
    await admin.locator("input[name=_send]").click()
    await expect(admin.locator(".messagelist")).to_contain_text("Sent the notification to 1 user.")
    assert await email_of("Server restart at noon") == ["now"]
