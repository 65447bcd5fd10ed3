"""What a sender pays after its commit, against a healthy Redis and against one that hangs.

``.venv/bin/python -m bench.post_commit [--sends 50] [--hung-sends 10] [--give-up-after 30]``

1. migrates a scratch SQLite database in a temporary folder and makes one user;
2. for each Redis (the healthy one at ``REDIS_URL``, default ``redis://127.0.0.1:6379/12``, then
   a server of the benchmark's own that accepts connections and never answers), points the
   cache (hence the socket registry) and the pub/sub channel layer at it, marks the user online
   (on the healthy one: so that each send publishes), and sends ``--sends`` notifications to the
   user (``--hung-sends`` to the hung one), one ``notify()`` each, in autocommit;
3. times each ``notify()`` and, inside it, the step after commit (the outbox's flush: version
   bump, who is online, the counts query, the push), and counts the warnings logged;
4. prints the median and the largest of each, and the ratio hung / healthy.

A send that has not returned after ``--give-up-after`` seconds is reported as such, and the
benchmark moves on (it runs in a daemon thread). Nothing is written to the healthy Redis but the
user's version token, one registry entry and the counters, under the demo's cache prefix.
"""

from __future__ import annotations

import os
import tempfile

_folder = tempfile.mkdtemp(prefix="notif-post-commit-bench-")
os.environ["DATABASE_URL"] = f"sqlite:///{_folder}/bench.sqlite3"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import argparse  # noqa: E402
import functools  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from notifications import outbox, services  # noqa: E402
from notifications.conf import DEFAULTS  # noqa: E402
from notifications.registry import registry  # noqa: E402
from tests.hung import HungServer  # noqa: E402


class Timings:
    """Seconds of each outbox flush (the step after commit), in order."""

    def __init__(self) -> None:
        self.flushes: list[float] = []
        original = outbox._Outbox.flush

        @functools.wraps(original)
        def timed(box: outbox._Outbox) -> None:
            start = time.perf_counter()
            try:
                original(box)
            finally:
                self.flushes.append(time.perf_counter() - start)

        outbox._Outbox.flush = timed  # type: ignore[method-assign]


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def given_up(self) -> list[str]:
        """The senders' own warnings (the others come later, from the calls left behind)."""
        return [message for message in self.messages if "gave up waiting" in message]


def redis_settings(url: str) -> dict:
    return {
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "OPTIONS": {"pool_class": "notifications.cache.SharedConnectionPool"},
            }
        },
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": url}], "prefix": "notif-post-commit-bench"},
            }
        },
    }


def run(label: str, url: str, user, sends: int, give_up_after: float, online: bool) -> dict:
    timings = Timings()
    warnings = Warnings()
    logging.getLogger("notifications").addHandler(warnings)
    totals: list[float] = []
    stuck = False
    with override_settings(**redis_settings(url)):
        if online:
            async_to_sync(registry().claim)(user.pk, "bench.post_commit!socket")
        for n in range(sends):
            done = threading.Event()

            def send(n: int = n, done: threading.Event = done) -> None:
                services.notify(user, f"{label} {n}")
                done.set()

            start = time.perf_counter()
            threading.Thread(target=send, daemon=True).start()
            if not done.wait(give_up_after):
                stuck = True
                break
            totals.append(time.perf_counter() - start)
    logging.getLogger("notifications").removeHandler(warnings)
    return {
        "label": label,
        "totals": totals,
        "after_commit": timings.flushes[: len(totals)],
        "warnings": len(warnings.given_up()),
        "example": warnings.given_up()[0] if warnings.given_up() else "",
        "stuck": stuck,
    }


def describe(result: dict, give_up_after: float) -> str:
    if result["stuck"] and not result["totals"]:
        return f"{result['label']:<8} a send did not return within {give_up_after:g} s"
    after, total = result["after_commit"], result["totals"]
    line = (
        f"{result['label']:<8} after commit: median {statistics.median(after) * 1000:8.1f} ms,"
        f" max {max(after) * 1000:8.1f} ms | notify(): median"
        f" {statistics.median(total) * 1000:8.1f} ms | {result['warnings']} senders' warnings"
        f" in {len(total)} sends"
    )
    if result["stuck"]:
        line += f"; then a send did not return within {give_up_after:g} s"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=50)
    parser.add_argument("--hung-sends", type=int, default=10)
    parser.add_argument("--give-up-after", type=float, default=30)
    args = parser.parse_args()
    try:
        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("bench-reader", password="x")
        logging.getLogger("notifications").setLevel(logging.WARNING)
        logging.getLogger("notifications").propagate = False
        timeout = getattr(settings, "NOTIFICATIONS", {}).get(
            "PUSH_TIMEOUT_SECONDS", DEFAULTS.get("PUSH_TIMEOUT_SECONDS")
        )
        print(f"PUSH_TIMEOUT_SECONDS: {timeout}; sends to one user, autocommit")
        url = os.environ["REDIS_URL"]
        healthy = run("healthy", url, user, args.sends, args.give_up_after, True)
        print(describe(healthy, args.give_up_after))
        server = HungServer()
        try:
            hung = run("hung", server.url, user, args.hung_sends, args.give_up_after, False)
        finally:
            server.close()
        print(describe(hung, args.give_up_after))
        if hung["example"]:
            print(f"         the warning: {hung['example']}")
        if hung["totals"] and not hung["stuck"]:
            ratio = statistics.median(hung["after_commit"]) / statistics.median(
                healthy["after_commit"]
            )
            print(f"hung / healthy, after commit (median): {ratio:.0f}x")
    finally:
        shutil.rmtree(_folder, ignore_errors=True)


if __name__ == "__main__":
    main()
