"""The API's request parsers, and the answers to bodies that cannot be read at all.

Python's JSON decoder recurses once per nesting level, so a 10 KB body of ``[[[[...`` raised
``RecursionError`` through DRF's parser (a 500). No body of this API nests deeper than two
levels: anything deeper than ``MAX_JSON_DEPTH`` is refused before a serializer sees it. Django's
own limits on a body (``DATA_UPLOAD_MAX_MEMORY_SIZE``, ``DATA_UPLOAD_MAX_NUMBER_FIELDS``...)
raise exceptions that DRF leaves to Django, which answers them with an HTML page:
:func:`api_exception` turns them into JSON answers like every other error of the API.
"""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import UnreadablePostError
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.settings import api_settings

MAX_JSON_DEPTH = 32
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if json_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise ParseError(TOO_DEEP)
        return data


def json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), counted up to ``limit + 1``.

    Iterative, so that measuring a deep document cannot itself exhaust the stack.
    """
    deepest = 0
    pending = [(value, 1)]
    while pending and deepest <= limit:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item)
    return deepest


def parser_classes() -> list[type[parsers.BaseParser]]:
    """The project's DRF parsers (DRF's defaults unless it set its own), with DRF's JSON parser
    replaced by the one above."""
    # The stubs type the setting as it is written (dotted paths); DRF has imported them by now.
    configured = cast("list[type[parsers.BaseParser]]", api_settings.DEFAULT_PARSER_CLASSES)
    return [JSONParser if parser is parsers.JSONParser else parser for parser in configured]


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def api_exception(error: Exception) -> Exception:
    """The API's answer to a body Django refused to read, or ``error`` itself."""
    if isinstance(error, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(error, TooManyFieldsSent | TooManyFilesSent):
        return ParseError("The request body has too many fields or files.")
    if isinstance(error, UnreadablePostError):
        return ParseError("The request body could not be read.")
    return error
