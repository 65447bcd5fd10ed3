"""A user's version as the 304 path reads it (``keys()``, then ``from_found()``): never created."""

import secrets
from unittest import mock

from django.core.cache import caches

from notifications import versions
from notifications.conf import app_settings


def read(user_id):
    found = caches[app_settings.CACHE_ALIAS].get_many(versions.keys(user_id))
    return versions.from_found(user_id, found)


def test_a_version_is_none_until_it_exists_then_agrees_with_current_until_a_bump():
    user_id = 10**9 + secrets.randbelow(10**9)  # no version yet, in whatever cache this is
    assert read(user_id) is None
    assert read(user_id) is None  # reading did not create it
    version = versions.current(user_id)
    assert read(user_id) == version
    versions.bump([user_id])
    assert read(user_id) not in (None, version)


def test_half_a_version_is_none():
    own_key, shared_key = versions.keys(5)
    assert versions.from_found(5, {own_key: "a"}) is None
    assert versions.from_found(5, {shared_key: "b"}) is None
    assert versions.from_found(5, {own_key: "a", shared_key: "b"}) == ("a", "b")


def test_a_cache_that_is_down_gives_a_fresh_version_each_time_and_bumps_nothing(caplog):
    broken = mock.Mock(
        get_many=mock.Mock(side_effect=ConnectionError("down")),
        set=mock.Mock(side_effect=ConnectionError("down")),
        set_many=mock.Mock(side_effect=ConnectionError("down")),
    )
    with mock.patch.object(versions, "_cache", return_value=broken):
        assert versions.current(7) != versions.current(7)
        versions.bump([7])
    assert "cache unreachable" in caplog.text
    assert "could not bump" in caplog.text


def test_a_bump_of_one_user_and_of_several_makes_each_one_stale():
    first = 10**9 + secrets.randbelow(10**9)
    users = [first, first + 1, first + 2]
    before = [versions.current(user_id) for user_id in users]
    versions.bump(users[:1])
    assert [read(user_id) != version for user_id, version in zip(users, before, strict=True)] == [
        True,
        False,
        False,
    ]
    versions.bump(users)
    assert all(read(user_id) not in (None, before[n]) for n, user_id in enumerate(users))
