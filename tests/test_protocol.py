"""notifications/protocol.py, the one source of the wire protocol: the exact text of every frame,
how client messages are read and refused, ids, and that the consumer speaks all of it."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from notifications import protocol
from notifications.realtime.consumer import NotificationConsumer

MAX = 2**63 - 1


def test_every_frame_is_the_exact_text_clients_read():
    notification = {"id": 42, "title": "Invoice paid"}
    frames = [
        (
            protocol.hello_frame(3, 2, 42),
            '{"type": "hello", "unread_count": 3, "unseen_count": 2, "last_id": 42}',
        ),
        (
            protocol.hello_frame(0, 0, None),
            '{"type": "hello", "unread_count": 0, "unseen_count": 0, "last_id": null}',
        ),
        (
            protocol.notification_frame(notification, 1, 1),
            '{"type": "notification", "notification": {"id": 42, "title": "Invoice paid"}, '
            '"unread_count": 1, "unseen_count": 1}',
        ),
        (
            protocol.notification_frame(notification, 1, 1, recovered=True),
            '{"type": "notification", "notification": {"id": 42, "title": "Invoice paid"}, '
            '"unread_count": 1, "unseen_count": 1, "recovered": true}',
        ),
        (
            protocol.changed_frame([4, 5], "read", 0, 2),
            '{"type": "changed", "ids": [4, 5], "state": "read", "up_to": null, "count": 2, '
            '"unread_count": 0, "unseen_count": 2}',
        ),
        (
            protocol.changed_frame([], "read", 3, 3, up_to=200417, count=200000),
            '{"type": "changed", "ids": [], "state": "read", "up_to": 200417, "count": 200000, '
            '"unread_count": 3, "unseen_count": 3}',
        ),
        (
            protocol.backlog_frame([notification], True),
            '{"type": "backlog", "notifications": [{"id": 42, "title": "Invoice paid"}], '
            '"complete": true}',
        ),
        (
            protocol.backlog_frame([{"id": 41}, {"id": 43}], False),
            '{"type": "backlog", "notifications": [{"id": 41}, {"id": 43}], "complete": false, '
            '"cursor": 43}',
        ),
        (protocol.pong_frame(), '{"type": "pong"}'),
        (protocol.pong_frame(7), '{"type": "pong", "id": 7}'),
        (protocol.pong_frame("\ud800\x00"), '{"type": "pong", "id": "\\ud800\\u0000"}'),
        (
            protocol.error_frame(protocol.UNAVAILABLE, protocol.UNAVAILABLE_DETAIL),
            '{"type": "error", "code": "unavailable", '
            '"detail": "The server cannot reach its database; try again shortly."}',
        ),
    ]
    for frame, text in frames:
        assert protocol.encode(frame) == text
        assert frame["type"] in protocol.SERVER_FRAMES


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"type": "resume", "after": 0}', protocol.Resume(0)),
        ('{"type": "resume", "after": 7, "cursor": 9}', protocol.Resume(7, 9)),
        ('{"type": "resume", "after": 7, "cursor": null}', protocol.Resume(7)),
        ('{"type": "mark_read", "ids": [1, 2]}', protocol.MarkRead([1, 2])),
        ('{"type": "mark_unread", "ids": []}', protocol.MarkUnread([])),
        ('{"type": "mark_all_read"}', protocol.MarkAllRead()),
        (
            '{"type": "mark_all_read", "up_to": 9223372036854775807}',
            protocol.MarkAllRead(2**63 - 1),
        ),
        ('{"type": "mark_seen", "up_to": 5, "extra": "ignored"}', protocol.MarkSeen(5)),
        ('{"type": "ping"}', protocol.Ping()),
        ('{"type": "ping", "id": "abc"}', protocol.Ping("abc")),
        ('{"type": "ping", "id": 0}', protocol.Ping(0)),
    ],
)
def test_client_messages_are_read_into_their_fields(raw, message):
    assert protocol.parse(raw) == message
    assert message.type == json.loads(raw)["type"]


RANGE = ": must be an integer from 0 to 2**63-1"
PING_ID = "id: a string of at most 64 characters or an integer."

# The details are part of what a client sees, as much as the codes.
REFUSED = [
    ("not json", "invalid_json", "The message is not valid JSON."),
    ("[" * 4000, "invalid_json", "The message is not valid JSON."),
    (
        '{"type": "ping", "x": ' + "[" * 33 + "]" * 33 + "}",
        "invalid_json",
        "The message is nested deeper than 32 levels.",
    ),
    ("[1, 2]", "invalid_message", 'A message is a JSON object with a "type".'),
    ('{"type": 5}', "invalid_message", 'A message is a JSON object with a "type".'),
    ('{"type": "' + "x" * 80 + '"}', "unknown_type", f"Unknown message type {'x' * 50!r}."),
    ('{"type": "resume"}', "invalid_field", "after: this field is required."),
    ('{"type": "resume", "after": null}', "invalid_field", "after: this field is required."),
    ('{"type": "resume", "after": true}', "invalid_field", "after" + RANGE),
    ('{"type": "resume", "after": 0, "cursor": -1}', "invalid_field", "cursor" + RANGE),
    ('{"type": "mark_read", "ids": "1,2"}', "invalid_field", "ids: must be a list of integers"),
    ('{"type": "mark_read", "ids": [1.5]}', "invalid_field", "ids" + RANGE),
    ('{"type": "mark_seen", "up_to": 9223372036854775808}', "invalid_field", "up_to" + RANGE),
    ('{"type": "ping", "id": null}', "invalid_field", PING_ID),
    ('{"type": "ping", "id": "' + "x" * 65 + '"}', "invalid_field", PING_ID),
]


@pytest.mark.parametrize(("raw", "code", "detail"), REFUSED)
def test_what_cannot_be_read_is_refused_with_a_code_and_a_detail(raw, code, detail):
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse(raw)
    assert (refused.value.code, refused.value.detail) == (code, detail)
    assert code in protocol.ERROR_CODES
    assert refused.value.frame() == {"type": "error", "code": code, "detail": detail}


def test_binary_frames_are_refused():
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse(None, b"\x00")
    assert (refused.value.code, refused.value.detail) == (
        "binary_not_supported",
        "Send JSON text frames.",
    )


def test_ids_run_from_0_to_the_largest_bigint(settings):
    assert protocol.MAX_ID == MAX
    assert protocol.clean_id(0) == 0 and protocol.clean_id(protocol.MAX_ID) == protocol.MAX_ID
    for wrong in (-1, protocol.MAX_ID + 1, True, 1.0, "1", None):
        with pytest.raises(ValueError, match="up_to: must be an integer from 0 to 2\\*\\*63-1"):
            protocol.clean_id(wrong, "up_to")
    settings.NOTIFICATIONS = {"MAX_IDS_PER_MESSAGE": 2}
    assert protocol.clean_ids((1, 2)) == [1, 2]
    with pytest.raises(ValueError, match="ids: at most 2 ids at a time"):
        protocol.clean_ids([1, 2, 3])


def test_rest_ids_take_ascii_digits_only_up_to_the_same_largest():
    field = protocol.IdField()
    assert field.run_validation("42") == 42
    assert field.run_validation(str(MAX)) == MAX
    for wrong, message in [
        ("\u0663", "A valid integer is required."),
        (str(MAX + 1), f"Ensure this value is less than or equal to {MAX}."),
        ("-1", "Ensure this value is greater than or equal to 0."),
    ]:
        with pytest.raises(ValidationError) as refused:
            field.run_validation(wrong)
        assert refused.value.detail == [message]


def test_every_client_message_is_read_and_handled():
    assert set(protocol._READERS) == set(protocol.CLIENT_MESSAGES)
    assert set(NotificationConsumer.handlers) == set(protocol.CLIENT_MESSAGES)


def test_close_codes_are_distinct_and_ones_daphne_sends():
    codes = [value for name, value in vars(protocol).items() if name.startswith("CLOSE_")]
    assert len(codes) == len(set(codes)) and all(4000 <= code < 5000 for code in codes)


# --- the widget speaks this protocol -----------------------------------------------------------

WIDGET = Path(protocol.__file__).parent / "static" / "notifications" / "widget"
# What the widget passes around besides the server's frames: counts and a fresh first page, both
# from polling (sync.js says so).
WIDGET_OWN = {"counts", "refresh"}


def widget(name: str) -> str:
    return (WIDGET / name).read_text()


def method(source: str, opening: str) -> str:
    """The body of the class method that starts with ``opening`` (two-space indented)."""
    start = source.index(f"\n  {opening}")
    return source[start : source.index("\n  }\n", start)]


def test_the_widget_names_protocol_py_as_its_one_source():
    for name in ("sync.js", "socket.js", "controller.js"):
        header = widget(name).split("\nimport ")[0].split("\nexport ")[0]
        assert "notifications/protocol.py" in header, name


def test_the_widgets_close_code_is_protocol_pys():
    named = re.findall(r"^const (CLOSE_\w+) = (\d+);", widget("sync.js"), re.MULTILINE)
    assert named == [("CLOSE_UNAUTHENTICATED", "4401")]
    for name, value in named:
        assert int(value) == getattr(protocol, name)


def test_the_widget_handles_every_server_frame_and_sends_only_client_messages():
    sync, socket = widget("sync.js"), widget("socket.js")
    handled = set(re.findall(r'case "(\w+)":', method(sync, "received(message)")))
    handled |= set(re.findall(r'message\?\.type !== "(\w+)"', socket))  # pong, answered there
    assert handled == set(protocol.SERVER_FRAMES)
    sent = set(re.findall(r'send\(\{ type: "(\w+)"', sync + socket))
    assert sent == {protocol.RESUME, protocol.PING}
    applied = set(re.findall(r'case "(\w+)":', method(widget("controller.js"), "apply(message")))
    assert applied - WIDGET_OWN <= set(protocol.SERVER_FRAMES) and protocol.CHANGED in applied
    delivered = set(re.findall(r'deliver\(\{ type: "(\w+)"', sync))
    assert delivered - WIDGET_OWN <= set(protocol.SERVER_FRAMES)


def test_docs_websocket_md_documents_every_frame_message_error_and_close_code():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "websocket.md").read_text()
    section = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", docs, re.M | re.S))
    first_column = r"^\| `(\w+)` \|"
    assert re.findall(first_column, section["Server to client"], re.M) == list(
        protocol.SERVER_FRAMES
    )
    # mark_read and mark_unread share a row.
    client = re.findall(r"^\| `(\w+)`(?: / `(\w+)`)? \|", section["Client to server"], re.M)
    assert {name for row in client for name in row if name} == set(protocol.CLIENT_MESSAGES)
    errors = re.findall(first_column, section["Errors (`error.code`)"], re.M)
    assert errors == list(protocol.ERROR_CODES)
    documented = dict(re.findall(r"^\| (\d{4}) \| `(CLOSE_\w+)` \|", section["Close codes"], re.M))
    close_codes = {
        str(value): name for name, value in vars(protocol).items() if name.startswith("CLOSE_")
    }
    assert documented == close_codes
    assert "`notifications/protocol.py` is the one source of this protocol" in docs


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    shape=st.dictionaries(st.text(), json_values, max_size=6),
    nid=st.integers(min_value=1, max_value=2**63 - 1),
    unread=st.integers(min_value=0, max_value=10**9),
    unseen=st.integers(min_value=0, max_value=10**9),
)
def test_notification_frames_are_the_text_encode_gives(shape, nid, unread, unseen):
    """The hub's frames, from a shape encoded once, are exactly what encoding each frame gives
    (NUL bytes, surrogates, nesting and an empty shape included)."""
    shape = {"id": None, **shape}
    frames = protocol.NotificationFrames(shape)
    expected = protocol.encode(protocol.notification_frame({**shape, "id": nid}, unread, unseen))
    assert frames(nid, unread, unseen) == expected
