"""The demo's documents in two browsers: bob comments on alice's document, and alice's bell
shows it live; muted from the bell's item menu, the document's next comment does not reach her.
NOTIFICATIONS_SCREENSHOTS=<directory> keeps the screenshots of the pages."""

import os
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from playwright.async_api import expect

from notifications import services
from notifications.models import Notification
from project.models import Document

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def alices_document(alice) -> Document:
    document = Document.objects.create(title="Launch plan", body="Monday.", author=alice)
    services.follow(alice, document, reason="author")
    return document


@database_sync_to_async
def notifications_of(user) -> int:
    return Notification.objects.filter(recipient=user).count()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    target = Path(os.environ.get("NOTIFICATIONS_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


async def test_bobs_comment_reaches_alices_bell_live(open_page, alice, bob, screenshots):
    document = await alices_document(alice)
    path = f"/documents/{document.pk}/"
    errors: list[str] = []
    alices = await open_page(alice, path)
    bobs = await open_page(bob, path)
    for page in (alices, bobs):
        page.on("pageerror", lambda error: errors.append(str(error)))
        widget = page.locator("[data-notifications-widget]")
        await expect(widget).to_have_attribute("data-connection", "connected")
    await expect(alices.locator(".following-status")).to_contain_text("You follow this document")

    await bobs.get_by_label("Add a comment").fill("Looks good to me.\nShip it on Monday.")
    await bobs.get_by_role("button", name="Comment", exact=True).click()
    comment = bobs.locator(".comment-body")
    await expect(comment).to_have_text("Looks good to me.\nShip it on Monday.", use_inner_text=True)
    await expect(bobs.locator(".followers")).to_contain_text("bob participated")
    await expect(bobs.get_by_role("button", name="Unfollow")).to_be_visible()

    # Alice's page was not reloaded: her bell hears of it over its socket.
    await expect(alices.locator(".nw-badge")).to_have_text("1")
    await alices.locator(".nw-bell").click()
    newest = alices.locator(".nw-item").first
    await expect(newest.locator(".nw-item-link")).to_have_text("bob commented on Launch plan")
    await expect(newest.locator(".nw-item-body")).to_contain_text("Ship it on Monday.")
    await expect(bobs.locator(".nw-badge")).to_be_hidden()  # the commenter hears nothing

    await alices.reload()
    await expect(alices.locator(".followers li")).to_have_count(2)
    await expect(alices.locator(".followers")).to_contain_text("alice author")
    await alices.set_viewport_size({"width": 1280, "height": 900})
    await alices.screenshot(path=screenshots / "document-desktop.png", full_page=True)
    await alices.set_viewport_size({"width": 360, "height": 780})
    await alices.screenshot(path=screenshots / "document-360.png", full_page=True)
    await alices.emulate_media(color_scheme="dark")
    await alices.screenshot(path=screenshots / "document-360-dark.png", full_page=True)
    overflow = await alices.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"at 360 px the page scrolls sideways by {overflow} px"
    await alices.goto("/documents/")
    await expect(alices.locator(".document-list")).to_contain_text("by alice · 1 comment")
    await alices.screenshot(path=screenshots / "documents-360-dark.png", full_page=True)

    # "Mute this thread" in the bell's item menu mutes the document: bob's next comment reaches
    # nobody, and the document's page says so.
    await alices.locator(".nw-bell").click()
    newest = alices.locator(".nw-item").first
    await newest.get_by_role("button", name="More actions").click()
    await newest.get_by_role("menuitem", name="Mute this thread").click()
    await expect(newest.locator(".nw-item-note-text")).to_contain_text("Thread muted")
    await bobs.get_by_label("Add a comment").fill("Anyone?")
    await bobs.get_by_role("button", name="Comment", exact=True).click()
    await expect(bobs.locator(".comment-body")).to_have_count(2)
    assert await notifications_of(alice) == 1
    await alices.goto(path)
    await expect(alices.locator(".following-status")).to_contain_text("You muted this document")
    await expect(alices.get_by_role("button", name="Unmute")).to_be_visible()
    assert not errors, errors
