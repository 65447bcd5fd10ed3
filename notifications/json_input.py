"""How deeply JSON a client sent may nest: one limit for REST bodies (api/parsers.py) and socket
frames (realtime/consumer.py).

Python's JSON decoder recurses once per nesting level: before Python 3.12 a few thousand
brackets raised ``RecursionError``, since then they parse. No message of the API or the socket
nests deeper than two levels, so anything deeper than ``MAX_JSON_DEPTH`` is refused, on every
Python, before a serializer or a handler sees it.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 32
TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels"


def too_deep(value: Any) -> bool:
    """Whether ``value`` (decoded JSON) nests lists and objects deeper than ``MAX_JSON_DEPTH``."""
    return json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH


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
