"""The API's request parsers, and the answers to bodies that cannot be read at all.

A 10 KB body of ``[[[[...`` raised ``RecursionError`` through DRF's parser (a 500): bodies that
nest deeper than ``MAX_JSON_DEPTH`` are refused before a serializer sees them (protocol.py).
Django's own limits on a body (``DATA_UPLOAD_MAX_MEMORY_SIZE``,
``DATA_UPLOAD_MAX_NUMBER_FIELDS``...) raise exceptions that DRF leaves to Django, which answers
them with an HTML page: :func:`api_exception` turns them into JSON answers like every other
error of the API.
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

from .. import protocol

TOO_DEEP = f"JSON parse error - {protocol.TOO_DEEP}."


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if protocol.too_deep(data):
            raise ParseError(TOO_DEEP)
        return data


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
