"""versions.peek(): the 304 path reads a version only if the cache holds one, and never fails."""

import secrets
from unittest import mock

from notifications import versions


def test_peek_is_none_until_the_version_exists_then_agrees_with_current():
    user_id = 10**9 + secrets.randbelow(10**9)  # no version yet, in whatever cache this is
    assert versions.peek(user_id) is None
    version = versions.current(user_id)
    assert versions.peek(user_id) == version
    versions.bump([user_id])
    assert versions.peek(user_id) not in (None, version)


def test_peek_is_none_when_the_cache_is_unreachable(caplog):
    broken = mock.Mock(get_many=mock.Mock(side_effect=ConnectionError("down")))
    with mock.patch.object(versions, "_cache", return_value=broken):
        assert versions.peek(7) is None
    assert "cache unreachable" in caplog.text
