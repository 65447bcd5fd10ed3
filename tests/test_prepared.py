"""Statements built once with markers, run with each call's values (notifications/prepared.py)."""

import pytest
from django.db import connection

from notifications.models import Notification
from notifications.prepared import Prepared, Slot

pytestmark = pytest.mark.django_db


def titled(using, *, title, level=None):
    rows = Notification.objects.using(using).filter(title=title)
    if level is not None:
        rows = rows.filter(level=level)
    return rows.values("id").query.get_compiler(using).as_sql()


TITLED = Prepared(titled, title=Slot("marker-title"), level=Slot("marker-level"))


def run(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def test_each_call_runs_with_its_own_values_in_the_shape_it_gives(alice):
    first = Notification.objects.create(recipient=alice, title="a", level="info")
    second = Notification.objects.create(recipient=alice, title="b", level="error")
    assert run(*TITLED.sql("default", title="a")) == [first.pk]
    assert run(*TITLED.sql("default", title="b")) == [second.pk]
    assert run(*TITLED.sql("default", title="b", level="info")) == []
    assert run(*TITLED.sql("default", title="b", level="error")) == [second.pk]


def test_a_marker_that_is_no_parameter_of_the_statement_is_refused():
    def ignores_the_level(using, *, level):
        return Notification.objects.values("id").query.get_compiler(using).as_sql()

    with pytest.raises(ValueError, match="level"):
        Prepared(ignores_the_level, level=Slot("marker-level")).sql("default", level="info")
