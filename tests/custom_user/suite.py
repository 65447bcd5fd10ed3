"""Everything that means "active users", with a user model that has no ``is_active`` field.

Not collected by the main run (the name does not start with ``test_``): ``AUTH_USER_MODEL`` must
be chosen before Django starts, so ``tests/test_custom_user_model.py`` runs this file in a pytest
of its own, with ``--ds tests.custom_user.settings``, on the same database server and Redis.
"""

from io import StringIO

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from notifications import services
from notifications.admin.forms import SendNotificationForm
from notifications.auth import user_for_ticket
from notifications.models import Notification
from notifications.realtime import tickets
from notifications.users import active_users, has_active_field
from project.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def members(db):
    model = get_user_model()
    return [model.objects.create_user(f"m{i}@example.com", "pw") for i in range(3)]


def recipients():
    return sorted(Notification.objects.values_list("recipient_id", flat=True))


def test_the_user_model_really_has_no_is_active_field():
    model = get_user_model()
    assert model._meta.label == "custom_user.Member"
    with pytest.raises(FieldDoesNotExist):
        model._meta.get_field("is_active")
    assert not has_active_field(model)


def test_every_member_is_an_active_user(members):
    assert sorted(active_users().values_list("pk", flat=True)) == [m.pk for m in members]


async def test_a_ticket_logs_a_member_in(members):
    ticket = await database_sync_to_async(tickets.issue)(members[0].pk)
    user, credential = await user_for_ticket(ticket)
    assert user.pk == members[0].pk and credential is None


async def test_a_members_sockets_close_when_the_member_is_deleted(members):
    """Credentials are checked with this user model too (no is_active, a pk of its own)."""
    from notifications.realtime.credentials import Credential, verdicts

    def check():
        client = APIClient()
        client.force_login(members[0])
        session = Credential("session", client.cookies["sessionid"].value)
        pk = members[0].pk
        before = verdicts([(pk, session)])
        members[0].delete()
        return before, verdicts([(pk, session)])

    assert await database_sync_to_async(check)() == ([None], [4401])


async def test_a_ticket_socket_says_hello_and_gets_pushes(members):
    def ticket_from_the_api():
        client = APIClient()
        client.force_login(members[0])
        return client.post("/api/notifications/ws-ticket/").json()["ticket"]

    ticket = await database_sync_to_async(ticket_from_the_api)()
    communicator = WebsocketCommunicator(application, f"/ws/notifications/?ticket={ticket}")
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
    batch = await database_sync_to_async(services.notify)(members[0], "for a member")
    pushed = await communicator.receive_json_from(timeout=3)
    assert pushed["notification"]["id"] == batch.ids[0]
    await communicator.disconnect()


def test_notify_a_group_reaches_its_members(members):
    team = Group.objects.create(name="team")
    team.user_set.add(members[0], members[2])
    assert sorted(services.notify(team, "Team news").recipient_ids) == [
        members[0].pk,
        members[2].pk,
    ]


def test_the_admin_sends_to_all_and_to_a_group(members):
    team = Group.objects.create(name="team")
    team.user_set.add(members[1])
    staff = get_user_model().objects.create_superuser("staff@example.com", "pw")
    client = Client()
    client.force_login(staff)
    send = "/admin/notifications/notification/send/"
    data = {"title": "Hello", "body": "", "level": "info", "_send": "Send"}

    response = client.post(send, {**data, "audience": "all"})
    assert response.status_code == 302
    assert recipients() == sorted([*(m.pk for m in members), staff.pk])

    Notification.objects.all().delete()
    response = client.post(send, {**data, "audience": "groups", "groups": [team.pk]})
    assert response.status_code == 302
    assert recipients() == [members[1].pk]


def test_the_send_form_counts_every_member(members):
    form = SendNotificationForm(data={"audience": "all", "title": "Hi", "level": "info"})
    assert form.is_valid(), form.errors
    assert form.recipients().count() == len(members)


def test_manage_py_notify_all_and_group(members):
    team = Group.objects.create(name="team")
    team.user_set.add(members[2])
    call_command("notify", "--all", "--title", "Maintenance tonight", stdout=StringIO())
    assert recipients() == [m.pk for m in members]
    Notification.objects.all().delete()
    call_command("notify", "--group", "team", "--title", "Team news", stdout=StringIO())
    assert recipients() == [members[2].pk]


def test_the_polling_etag_works_for_a_member(members):
    client = Client()
    client.force_login(members[0])
    services.notify(members[0], "one")
    first = client.get("/api/notifications/unread-count/")
    assert first.status_code == 200 and first.json()["unread_count"] == 1
    again = client.get("/api/notifications/unread-count/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
