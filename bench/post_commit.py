"""What a sender pays after its commit, against a healthy Redis and against one that hangs.

``.venv/bin/python -m bench.post_commit [--sends 50] [--hung-sends 10]``: ``notify()`` to a user
with a socket open on daphne (SQLite), then with the cache and the layer pointed at a server that
never answers; the after-commit work of each send timed by ``AfterCommit``.
"""

import argparse
import copy
import logging
import logging.handlers
import math
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.lib.databases import sign_in
from bench.lib.processes import become_django, daphne, django_env, main
from bench.lib.timing import AfterCommit

AFTER_COMMIT = AfterCommit().connect_first()  # before django.setup(): see AfterCommit
PREFIX = {"BENCH_LAYER_PREFIX": "notif-post-commit-bench"}


def sends(label: str, user: Any, count: int, give_up_after: float) -> str:
    from notifications.services import notify

    totals, spans, warned = [], len(AFTER_COMMIT.spans), len(WARNINGS.buffer)
    for n in range(count):
        start, done = time.perf_counter(), threading.Event()

        def send(n: int = n, done: threading.Event = done) -> None:
            notify(user, f"{label} {n}")
            done.set()

        threading.Thread(target=send, daemon=True).start()
        if not done.wait(give_up_after):
            break
        totals.append(time.perf_counter() - start)
    after = [1000 * (end - begin) for begin, end in AFTER_COMMIT.spans[spans:]][: len(totals)]
    RESULTS[label] = statistics.median(after) if after and len(totals) == count else math.nan
    # the senders' own warnings (others come later, from the calls they left behind)
    logged = [record.getMessage() for record in WARNINGS.buffer[warned:]]
    warnings = [message for message in logged if "gave up waiting" in message]
    stuck = f"a send did not return within {give_up_after:g} s" if len(totals) < count else ""
    if not totals:
        return f"{label:<8} {stuck}"
    return (
        f"{label:<8} after commit: median {RESULTS[label]:8.1f} ms, max {max(after):8.1f} ms |"
        f" notify(): median {1000 * statistics.median(totals):8.1f} ms | {len(warnings)} senders'"
        f" warnings in {len(totals)} sends"
        + (f"; then {stuck}" if stuck else "")
        + (f"\n         the warning: {warnings[0]}" if warnings else "")
    )


WARNINGS = logging.handlers.BufferingHandler(capacity=10**6)  # every warning the app logs
RESULTS: dict[str, float] = {}  # after commit, median ms, by label


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=50)
    parser.add_argument("--hung-sends", type=int, default=10)
    parser.add_argument("--give-up-after", type=float, default=30)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="the healthy one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="notif-post-commit-bench-") as folder:
        url = f"sqlite:///{folder}/bench.sqlite3"
        become_django(url, args.redis_url, **PREFIX)
        AFTER_COMMIT.connect_last()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test.utils import override_settings
        from websockets.sync.client import connect

        from notifications.conf import app_settings
        from tests.hung import HungServer

        logging.getLogger("notifications").setLevel(logging.WARNING)
        logging.getLogger("notifications").addHandler(WARNINGS)
        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("bench-reader", password="x")
        server = daphne(django_env(url, args.redis_url, **PREFIX), Path(folder) / "daphne.log")
        cookie = {"Cookie": f"sessionid={sign_in([user])[0]}"}
        url = f"ws://127.0.0.1:{server.port}/ws/notifications/"
        with connect(url, origin=server.url, additional_headers=cookie) as socket:
            assert '"hello"' in socket.recv(timeout=30), "the user's socket is open"
            timeout = app_settings.PUSH_TIMEOUT_SECONDS
            print(f"PUSH_TIMEOUT_SECONDS: {timeout}; sends to one user, autocommit")
            print(sends("healthy", user, args.sends, args.give_up_after))
        server.stop()
        hung = HungServer()
        caches, layers = copy.deepcopy(settings.CACHES), copy.deepcopy(settings.CHANNEL_LAYERS)
        caches["default"]["LOCATION"] = hung.url
        layers["default"]["CONFIG"]["hosts"] = [{"address": hung.url}]
        with override_settings(CACHES=caches, CHANNEL_LAYERS=layers):
            print(sends("hung", user, args.hung_sends, args.give_up_after))
        hung.close()
        if RESULTS["hung"] == RESULTS["hung"]:  # not NaN: every hung send returned
            ratio = RESULTS["hung"] / RESULTS["healthy"]
            print(f"hung / healthy, after commit (median): {ratio:.0f}x")
    return 0


if __name__ == "__main__":
    main(run)
