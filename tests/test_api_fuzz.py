"""Property-based fuzzing of the REST API from its own OpenAPI schema.

schemathesis reads the schema the demo project serves at ``/api/schema/`` (in process, through
WSGI) and, for every operation in it, sends requests that fit the schema and requests that break it
(positive and negative modes): first its coverage phase (boundary values, missing or wrongly typed
parameters, unsupported methods and media types, no credentials), then a hypothesis search of at
most ``MAX_EXAMPLES`` cases per operation, derandomized so that CI is repeatable. Each case runs as
alice, authenticated with a DRF token, in a savepoint rolled back afterwards, so every case sees the
same inbox: notifications of hers, and of bob's (whose ids must be a 404).

Every response must pass schemathesis's checks (never a 5xx; status code, content type, headers
and body as documented; invalid input refused, valid input accepted; credentials enforced) and
ours: every 4xx has a JSON body, and a 400 names the offending field (or, when there is none to
name, such as a malformed body, says why in ``detail``).

Beyond the schema, ``test_any_body_is_answered_in_json`` and
``test_any_query_value_is_answered_in_json`` send what no schema describes: JSON nested up to
100,000 levels, numbers of thousands of digits, bodies past Django's size limit, thousands of
form fields, NUL bytes and lone surrogates (escaped in JSON, raw in bytes that are no UTF-8),
non-ASCII digits, unknown charsets and media types, to every operation. The answer must be JSON:
a 2xx, or a 4xx whose body is an object; never a 5xx.

The served schema leaves some things undocumented that the API legitimately does (its error
responses, above all): ``documented()`` adds them here, only where the schema does not already say
something, and each addition is what the schema should say itself. The bugs it found (a 500 on
a cursor whose position is no number, an HTML 404 for an id with a dot) are fixed and pinned in
tests/test_api.py.
"""

from __future__ import annotations

import base64
import copy
import json
import traceback
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import schemathesis
from django.core.signals import got_request_exception, request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from notifications import services
from notifications.push import keys

MAX_EXAMPLES = 50
BASE = "/api/notifications/"
APP = get_wsgi_application()

# --- the schema -----------------------------------------------------------------------------------

ERROR_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# DRF's validation errors: {"field": ["message", ...]}, or {"detail": "..."} for a bad body; a
# list field's errors are keyed by position: {"field": {"0": ["message"]}}.
MESSAGES = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
FIELD_ERRORS = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {
        "anyOf": [*MESSAGES["anyOf"], {"type": "object", "additionalProperties": MESSAGES}]
    },
}
# Optional query parameters that DRF reads as absent when blank (``?level=`` lists everything).
BLANK_IS_ABSENT = {"after", "archived", "category", "level", "unread"}


def _error(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def documented(raw: dict[str, Any]) -> dict[str, Any]:
    """The served schema plus what it leaves out and the API does (see the module docstring)."""
    raw = copy.deepcopy(raw)
    for path, item in raw["paths"].items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                if parameter["name"] in BLANK_IS_ABSENT:
                    parameter.setdefault("allowEmptyValue", True)
                if parameter["name"] == "page_size":
                    # NotificationCursorPagination refuses 0 and less with a 400.
                    parameter["schema"].setdefault("minimum", 1)
            # Every operation needs credentials: none or a wrong token is a 401, a session
            # without its CSRF token a 403.
            responses.setdefault("401", _error("Not authenticated", ERROR_DETAIL))
            responses.setdefault("403", _error("Forbidden", ERROR_DETAIL))
            if "{id}" in path:
                responses.setdefault(
                    "404", _error("Not one of the user's notifications", ERROR_DETAIL)
                )
            takes_input = "requestBody" in operation or any(
                parameter["in"] == "query" for parameter in operation.get("parameters", [])
            )
            if takes_input:
                responses.setdefault("400", _error("Bad input, by field", FIELD_ERRORS))
            if "requestBody" in operation:
                responses.setdefault("415", _error("Unsupported media type", ERROR_DETAIL))
    return raw


SERVED = schemathesis.openapi.from_wsgi("/api/schema/", APP)
SCHEMA = schemathesis.openapi.from_dict(documented(SERVED.raw_schema))
SCHEMA.app = APP


def _input_names(raw: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """What a 400 may name, per operation: its parameters and the properties of its body."""
    schemas = raw.get("components", {}).get("schemas", {})
    names: dict[tuple[str, str], set[str]] = {}
    for path, item in raw["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            found = {parameter["name"] for parameter in operation.get("parameters", [])}
            for media in operation.get("requestBody", {}).get("content", {}).values():
                body = media.get("schema", {})
                if "$ref" in body:
                    body = schemas[body["$ref"].rsplit("/", 1)[-1]]
                found |= set(body.get("properties", {}))
            names[method.upper(), path] = found | {"detail", "non_field_errors"}
    return names


INPUT_NAMES = _input_names(SCHEMA.raw_schema)

# --- the inbox every case sees --------------------------------------------------------------------

# Filled by the `inbox` fixture, read by the hooks below while hypothesis draws cases.
LIVE: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    """Hundreds of cases per operation, as one user: the fuzz is about what each endpoint does
    with its input (tests/test_throttling.py is about the limits, and their 429 is documented)."""
    settings.NOTIFICATIONS = {"THROTTLE_RATES": {"ticket": None, "write": None}}


@pytest.fixture
def inbox(make_user, settings):
    public, private = keys.generate()
    settings.NOTIFICATIONS = {  # the push subscriptions' routes answer for real
        "WEB_PUSH": True,
        "WEB_PUSH_VAPID_PUBLIC_KEY": public,
        "WEB_PUSH_VAPID_PRIVATE_KEY": private,
        "WEB_PUSH_VAPID_SUBJECT": "mailto:ops@example.com",
    }
    alice, bob = make_user("alice"), make_user("bob")
    authorization = f"Token {Token.objects.create(user=alice).key}"
    mine = [services.notify(alice, f"mine {i}", category="c").ids[0] for i in range(4)]
    services.mark_read(alice, mine[:1])
    services.archive(alice, mine[1:2])
    theirs = [services.notify(bob, f"theirs {i}").ids[0] for i in range(2)]
    # The current ETag, so that If-None-Match can hit a 304 (this also caches the token for it).
    etag = Client().get(f"{BASE}unread-count/", HTTP_AUTHORIZATION=authorization)["ETag"]
    LIVE.update(
        authorization=authorization,
        mine=mine,
        theirs=theirs,
        etag=etag,
        cursors=_next_cursors(authorization),
    )
    # Requests through the WSGI handler would close the test's connection, its transaction with
    # it, at each request's end: disconnect that as Django's test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield LIVE
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    LIVE.clear()


def _next_cursors(authorization: str) -> list[str]:
    """The cursors of the first page's links (one item a page, so there is a next page)."""
    page = Client().get(BASE, {"page_size": 1}, HTTP_AUTHORIZATION=authorization).json()
    links = [page[key] for key in ("next", "previous") if page[key]]
    return [parse_qs(urlsplit(link).query)["cursor"][0] for link in links]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@SCHEMA.hook
def flatmap_path_parameters(context, path_parameters):
    """Ids that exist: alice's (including a read and an archived one), and bob's (a 404)."""
    if not LIVE or not _is_int((path_parameters or {}).get("id")):
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.sampled_from(LIVE["mine"] + LIVE["theirs"]).map(
            lambda nid: {**path_parameters, "id": nid}
        ),
    )


# What a cursor decodes to in DRF: a query string with an offset, a direction and a position.
_CURSOR_VALUES = st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=8))
CRAFTED_CURSORS = st.dictionaries(st.sampled_from(["o", "r", "p"]), _CURSOR_VALUES, min_size=1).map(
    lambda tokens: base64.b64encode(urlencode(tokens).encode()).decode()
)


@SCHEMA.hook
def flatmap_query(context, query):
    """Cursors the API issued, and cursors that decode but hold nonsense."""
    if not LIVE or not isinstance((query or {}).get("cursor"), str):
        return st.just(query)
    return st.one_of(
        st.just(query),
        st.sampled_from(LIVE["cursors"]).map(lambda cursor: {**query, "cursor": cursor}),
        CRAFTED_CURSORS.map(lambda cursor: {**query, "cursor": cursor}),
    )


@SCHEMA.hook
def flatmap_headers(context, headers):
    """If-None-Match: the current ETag (a 304), or a list holding it."""
    if not LIVE or not isinstance((headers or {}).get("If-None-Match"), str):
        return st.just(headers)
    etag = LIVE["etag"]
    return st.one_of(
        st.just(headers),
        st.sampled_from([etag, f"W/{etag}", f'"x", {etag}']).map(
            lambda value: {**headers, "If-None-Match": value}
        ),
    )


# --- our checks -----------------------------------------------------------------------------------


def error_has_a_json_body(ctx, response, case):
    """Every 4xx explains itself in JSON."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} with Content-Type {content_type!r}, not JSON"
    )
    assert isinstance(json.loads(response.content), dict), "a 4xx body is not a JSON object"
    return None


def bad_input_names_the_field(ctx, response, case):
    """A 400 says which field is wrong: one the operation takes (or `detail` when none is); a
    nested field by its dotted path (`channels.email.enabled`), which starts with one."""
    if response.status_code != 400:
        return None
    named = {name.split(".")[0] for name in json.loads(response.content)}
    allowed = INPUT_NAMES[case.operation.method.upper(), case.operation.path]
    assert named and named <= allowed, f"a 400 names {sorted(named)}, not among {sorted(allowed)}"
    return None


# --- the fuzzer -----------------------------------------------------------------------------------


def _is_form(case) -> bool:
    return "form" in (case.media_type or "")


def _form_field_is_null(case) -> bool:
    """A form cannot carry a JSON null: schemathesis sends the text ``null``, no integer."""
    return (
        _is_form(case)
        and isinstance(case.body, dict)
        and any(value is None for value in case.body.values())
    )


def _one_of_type_and_id(case) -> bool:
    query = case.query or {}
    return case.path.endswith("/subscriptions/") and (("type" in query) != ("id" in query))


def _has_a_whole_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_has_a_whole_float(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_a_whole_float(item) for item in value)
    return False


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # The inbox is made once per operation and each case is rolled back: sharing it is the point.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, inbox):
    excluded = []
    # Valid by the schema, yet refused for a reason no schema can express: a cursor must be one
    # the API issued; and a form field cannot be null.
    # So is a push subscription on a host that is no known push service, or with keys that are
    # no P-256 point and 16-byte secret; and the subscriptions' `type` filter without `id`.
    if (
        (case.query or {}).get("cursor") is not None
        or _form_field_is_null(case)
        or (case.method == "POST" and case.path.endswith("/push-subscriptions/"))
        or _one_of_type_and_id(case)
    ):
        excluded.append(positive_data_acceptance)
    # Invalid by the schema, yet the same on the wire as something valid, so rightly accepted:
    # - a form carries text only, and DRF reads it by HTML rules: a blank field is null or absent,
    #   "0.0" an integer, and a body that is no object (schemathesis sends its text outside any
    #   part) an empty form, that is no body;
    # - 2.0 is an integer for DRF, as for JSON Schema since draft 6 and for JavaScript; only the
    #   draft-4 rules of OpenAPI 3.0 say otherwise.
    if _is_form(case) or _has_a_whole_float([case.query, case.body]):
        excluded.append(negative_data_rejection)
    validate = True
    raised: list[str] = []

    def record(sender, request=None, **kwargs):
        raised.append(traceback.format_exc())

    headers = {"Authorization": inbox["authorization"]}
    got_request_exception.connect(record)
    try:
        with transaction.atomic():
            try:
                if validate:
                    case.call_and_validate(
                        headers=headers,
                        additional_checks=[error_has_a_json_body, bad_input_names_the_field],
                        excluded_checks=excluded,
                    )
                else:
                    case.call(headers=headers)
            except FailureGroup as exc:
                if raised:
                    raise AssertionError(f"{exc}\nThe server raised:\n{raised[0]}") from exc
                raise
            finally:
                transaction.set_rollback(True)
    finally:
        got_request_exception.disconnect(record)
    assert not validate or not raised, f"The server raised:\n{raised[0]}"


# --- beyond the schema: hostile bodies and query values -----------------------------------------


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def _nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
).map(json.dumps)
DEPTHS = st.sampled_from([1, 2, 31, 32, 33, 999, 5_000, 100_000])
# A value that fits nowhere: escapes Python reads as a NUL or half a surrogate pair, digits it
# reads as numbers, numbers past any column.
ODD_VALUE = st.sampled_from(
    [
        '"\\u0000"',
        '"\\ud800"',
        '"\\udfff x"',
        '"\u0663"',
        '"\u00b2"',
        "9" * 5_000,
        "1e400",
        "-1e400",
        str(2**63),
        "-0",
        '"1"',
        "[]",
        "{}",
        "null",
        "true",
        '""',
    ]
)
JSON_BODIES = st.one_of(
    DEPTHS.map(_nested),
    DEPTHS.map(_nested_objects),
    st.tuples(st.sampled_from(["up_to", "muted_categories", "muted_levels", "x"]), ODD_VALUE).map(
        lambda pair: f'{{"{pair[0]}": {pair[1]}}}'
    ),
    st.tuples(st.sampled_from(["up_to", "muted_categories"]), DEPTHS).map(
        lambda pair: f'{{"{pair[0]}": {_nested(pair[1])}}}'
    ),
    ODD_VALUE.map(lambda value: f'{{"muted_categories": [{value}], "muted_levels": []}}'),
    st.sampled_from(["", "{", "[1,", "nul\x00", '{"a": 1}' * 1000]),
    st.sampled_from([1_000_000, 3_000_000]).map(lambda size: '{"x": "' + "a" * size + '"}'),
    JSON_TEXT,
)
FORM_BODIES = st.one_of(
    st.sampled_from([10, 999, 1_001, 3_000]).map(lambda n: "&".join(f"f{i}=1" for i in range(n))),
    ODD_VALUE.map(lambda value: "up_to=" + quote(value)),
    st.sampled_from(["up_to=%00", "up_to=%ED%A0%80", "up_to=%FF", "up_to=" + "9" * 3_000_000]),
)
BODIES = st.one_of(
    st.tuples(JSON_BODIES, st.sampled_from(["application/json", "application/json; charset=utf-8",
                                            "application/json; charset=bz2_codec",
                                            "application/json; charset=latin-1",
                                            "application/json; charset=nonsense"])),
    st.tuples(FORM_BODIES, st.just("application/x-www-form-urlencoded")),
    st.tuples(
        st.sampled_from(["", "--b\r\n", "--b--\r\n", "junk"]),
        st.sampled_from(["multipart/form-data; boundary=b", "multipart/form-data"]),
    ),
    st.tuples(JSON_BODIES, st.sampled_from(["text/plain", "application/xml", ""])),
)  # fmt: skip

OPERATIONS = [
    (method.upper(), path)
    for path, item in SCHEMA.raw_schema["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and "responses" in operation
]
WRITES = [(method, path) for method, path in OPERATIONS if method in ("POST", "PUT", "DELETE")]
QUERIED = [
    (method, path, parameter["name"])
    for path, item in SCHEMA.raw_schema["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict)
    for parameter in operation.get("parameters", [])
    if parameter["in"] == "query"
]
QUERY_VALUES = st.one_of(
    st.sampled_from(["%00", "1%00", "%ED%A0%80", "%FF", "%C2%B2", "%D9%A3", "%EF%BC%91",
                     "9" * 5_000, str(2**63), str(2**64), "1e400", "-0", "%5B%5D", "%7B%7D"]),
    st.text(max_size=10).map(lambda text: quote(text.encode("utf-8", "surrogatepass"))),
)  # fmt: skip


def answered_in_json(method: str, url: str, body: bytes = b"", content_type: str = "") -> None:
    """One request as alice (token), rolled back after; the answer must be JSON, never a 5xx."""
    raised: list[str] = []

    def record(sender, request=None, **kwargs):
        raised.append(traceback.format_exc())

    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=LIVE["authorization"])
    got_request_exception.connect(record)
    try:
        with transaction.atomic():
            try:
                response = client.generic(method, url, body, content_type=content_type)
            finally:
                transaction.set_rollback(True)
    finally:
        got_request_exception.disconnect(record)
    where = f"{method} {url[:200]} ({content_type}, {len(body)} bytes: {body[:80]!r})"
    assert not raised, f"{where} raised:\n{raised[0]}"
    assert response.status_code < 500, f"{where}: {response.status_code}"
    if response.status_code in (204, 304):
        return
    assert response["Content-Type"].startswith("application/json"), (
        f"{where}: {response.status_code} {response['Content-Type']}"
    )
    answer = json.loads(response.content)
    if response.status_code >= 400:
        assert isinstance(answer, dict) and answer, f"{where}: {answer!r}"


def _url(path: str) -> str:
    return path.replace("{id}", str(LIVE["mine"][2]))


HOSTILE = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
@HOSTILE
@given(body=BODIES)
def test_any_body_is_answered_in_json(inbox, method, path, body):
    text, content_type = body
    answered_in_json(method, _url(path), text.encode("utf-8", "surrogatepass"), content_type)


@pytest.mark.parametrize(
    ("method", "path", "name"), QUERIED, ids=[f"{m} {p} {n}" for m, p, n in QUERIED]
)
@settings(HOSTILE, max_examples=15)
@given(value=QUERY_VALUES)
def test_any_query_value_is_answered_in_json(inbox, method, path, name, value):
    answered_in_json(method.upper(), f"{_url(path)}?{name}={value}")


METRICS = "/api/notifications/metrics/"
AUTHORIZATIONS = st.one_of(
    st.sampled_from(
        ["", "Bearer", "Bearer ", "Token x", "Bearer \u00e9\u00ff", "Bearer " + "a" * 10_000]
    ),
    st.text(max_size=20).map(lambda text: text.encode("utf-8", "surrogatepass").decode("latin-1")),
)


@pytest.mark.parametrize("token", ["", "a-metrics-token-of-32-characters"], ids=["staff", "token"])
@HOSTILE
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
    authorization=AUTHORIZATIONS,
    body=BODIES,
)
def test_the_metrics_view_answers_any_request(inbox, settings, token, method, authorization, body):
    """Outside the schema (a plain Django view): a 2xx of metrics text, or a JSON 4xx. (No query
    string: the view reads none, and Django itself fails on one with a charset such as
    bz2_codec, before any view runs.)"""
    settings.NOTIFICATIONS = {"METRICS_TOKEN": token} if token else {}
    text, content_type = body
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=authorization)  # as a scraper
    response = client.generic(method, METRICS, text.encode("utf-8", "surrogatepass"), content_type)
    assert response.status_code in (200, 401, 403, 405, 503)
    if response.status_code >= 400 and method != "HEAD":  # a HEAD answer has no body
        assert isinstance(json.loads(response.content), dict)
