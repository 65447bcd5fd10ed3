"""The benchmark's sender: a separate Django process calling ``notifications.services.notify``.

``python -m bench.ws_sender`` with ``DJANGO_SETTINGS_MODULE=bench.ws_settings``, ``DATABASE_URL``,
``REDIS_URL`` and ``CHANNEL_LAYER`` set as for daphne; driven over stdin by ``bench.websocket``
(JSON lines, see ``bench.ws_common``). Commands:

- ``burst``: ``rounds`` transactions, each sending one notification to every user of ids
  ``lo..hi``: ``per_user`` calls ``notify()`` once per user inside one ``atomic()``; ``queryset``
  calls ``notify()`` once with the QuerySet of those users (the app's "broadcast": one row each);
- ``paced``: ``count`` single notifications to the users ``ids`` in turn, one every ``interval``
  s (never two at once: a late one starts when the previous returns); ``data.t`` is the clock just
  before ``notify()``, so clients measure ``notify()``-to-receipt.

``data`` holds ``b``: the delivery's tag, by which clients tell late messages of an earlier
delivery from this one's. Answers carry ``t0`` (``time.monotonic()`` before the first
``notify()``) and ``t_end``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.ws_settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402

from bench.ws_common import BODY, CATEGORY, TITLE, URL, raise_nofile, reply  # noqa: E402
from notifications.services import notify  # noqa: E402


def send(recipients: Any, data: dict[str, Any]) -> None:
    notify(recipients, TITLE, BODY, category=CATEGORY, url=URL, data=data)


def burst(mode: str, lo: int, hi: int, rounds: int, tag: str) -> dict[str, Any]:
    users = get_user_model().objects.filter(pk__range=(lo, hi))
    t0 = time.monotonic()
    ends = []
    for round_ in range(rounds):
        data = {"t": time.monotonic(), "b": tag, "round": round_}
        if mode == "per_user":
            with transaction.atomic():
                for user_id in range(lo, hi + 1):
                    send(user_id, data)
        elif mode == "queryset":
            send(users, data)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        ends.append(time.monotonic())
    return {"t0": t0, "t_end": time.monotonic(), "round_ends": ends}


def paced(ids: list[int], count: int, interval: float, tag: str) -> dict[str, Any]:
    durations = []
    start = time.monotonic()
    for k in range(count):
        delay = start + k * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        send(ids[k % len(ids)], {"t": t0, "b": tag, "seq": k})
        durations.append(time.monotonic() - t0)
    return {"t0": start, "t_end": time.monotonic(), "durations": durations}


def handle(command: dict[str, Any]) -> dict[str, Any] | None:
    name = command["cmd"]
    if name == "quit":
        return None
    if name == "burst":
        return burst(
            command["mode"], command["lo"], command["hi"], command["rounds"], command["tag"]
        )
    if name == "paced":
        return paced(command["ids"], command["count"], command["interval"], command["tag"])
    raise ValueError(f"unknown command {name!r}")


def main() -> None:
    raise_nofile()
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    reply({"ready": True, "pid": os.getpid(), "layer": layer})
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
            continue
        if answer is None:
            reply({"ok": True})
            break
        reply(answer)


if __name__ == "__main__":
    main()
