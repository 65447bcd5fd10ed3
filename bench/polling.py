"""The polling path, ``GET /api/notifications/unread-count/``, against a trivial view on daphne.

``make bench`` or ``.venv/bin/python -m bench.polling [--profile]``: one user with a DRF token
and 1,000 notifications; rounds of requests/s of the trivial view (the baseline), the unread
count's 200 and its 304 (``If-None-Match``: the ETag of a 200), order rotated. Into
``bench/results/polling.md``; ``--profile`` samples daphne (``profile-polling.md``).
"""

import argparse
import asyncio
import functools
import json
from collections import Counter
from pathlib import Path

from bench.lib import profiling, report
from bench.lib.databases import POSTGRES, django_database, redis_counters, seed
from bench.lib.load import Round, fetch, interleave, request, run_round
from bench.lib.processes import BenchError, Process, daphne, main
from bench.lib.report import RESULTS, median, percentile

COUNT = "/api/notifications/unread-count/"
WARMUP, LIMIT = 2.0, 500_000  # seconds of warm-up per path; requests per round at most
# path, status, and the target of /work/shared/brief/performance.md ("Polling"): the 304 at
# least 80 % of a trivial view's requests/s (the 200 against hq is bench.peers' part).
PATHS = {
    "trivial": ("/bench/trivial/", 200, None, "baseline"),
    "unread-count 200": (COUNT, 200, None, ">= 3x django-notifications-hq (not measured here)"),
    "unread-count 304": (COUNT, 304, 0.80, ">= 0.80 of trivial"),
}
KEY_FRAMES = (  # as bench.lib.profiling.summarise has them, but found anywhere in the name
    ("daphne/twisted: HTTP parsing (dataReceived)", "dataReceived", "twisted/"),
    ("daphne: response writing (handle_reply)", "handle_reply", "daphne/"),
    ("Django ASGI handler, whole request", r"ASGIHandler\.handle", "django/core/handlers/"),
    ("sync_to_async hop (SyncToAsync.__call__)", r"SyncToAsync\.__call__", "asgiref/sync"),
    ("  of which: a new thread per request (Thread.start)", r"Thread\.start", "threading"),
    ("  of which: executor shutdown (ThreadSensitiveContext.__aexit__)", "__aexit__", "asgiref/"),
    ("Django middleware chain incl. view (MiddlewareMixin)", r"MiddlewareMixin\.__", "django/"),
    ("DRF dispatch (APIView.dispatch), incl. the view", r"APIView\.dispatch", "rest_framework/"),
    ("DRF content negotiation", "perform_content_negotiation", "rest_framework/"),
    ("DRF finalize_response + rendering", "finalize_response", "rest_framework/"),
    ("authentication (DRF authenticators)", "_authenticate", "rest_framework/"),
    ("  of which: the token's database query", "authenticate_credentials", "rest_framework/"),
    ("the 304 check (not_modified)", "not_modified", "notifications/"),
    ("Django cache calls (RedisCache.*)", r"RedisCache\.", "django/core/cache/"),
    ("  of which: a new Redis connection (get_connection)", "get_connection", "redis/"),
    ("  of which: redis-py version lookup (importlib.metadata)", "version", "importlib/metadata"),
    ("  of which: redis-py deprecated_args signature checks", "_get_filterable_args", "/redis/"),
    ("database (psycopg)", "", "/psycopg/"),
    ("database (Django ORM / backend)", "", "/django/db/"),
    ("the view itself (unread_count)", "unread_count", "notifications/"),
)


async def measure(args: argparse.Namespace, server: Process, seeded: dict) -> tuple[dict, str]:
    port, auth = server.port, {"Authorization": f"Token {seeded['token']}"}

    async def etag() -> str:  # from a 200, which refreshes the token's note as a poller's would
        status, headers, body = await fetch(port, request(COUNT, port, auth))
        counts = json.loads(body) if status == 200 else {}
        if any(counts.get(key) != seeded[key] for key in ("unread_count", "unseen_count")):
            raise BenchError(f"unread-count answered {status} {body[:500]!r}\n{server.log()}")
        return headers[b"etag"].decode()

    async def one(name: str, seconds: float) -> Round:
        path, status, _, _ = PATHS[name]
        headers = {**auth, "If-None-Match": await etag()} if status == 304 else auth
        before = redis_counters(args.redis_url)
        load = {"connections": args.connections, "limit": LIMIT, "server": server.pid}
        r = await run_round(port, request(path, port, headers), status, seconds, **load)
        after = redis_counters(args.redis_url)
        r.redis_connections, r.redis_commands = after[0] - before[0], after[1] - before[1]
        return r

    print(f"daphne pid {server.pid} on port {port}; warm-up: {WARMUP} s per path", flush=True)
    measure = {name: functools.partial(one, name) for name in PATHS}
    results = await interleave(measure, args.rounds, args.seconds, WARMUP)
    sections = []
    for name in ("trivial", "unread-count 304", "unread-count 200") if args.profile else ():
        raw = RESULTS / f"profile-polling-{name.rpartition(' ')[2]}.txt"
        async with profiling.sampled([(server.pid, raw, "--gil")], args.profile_seconds):
            r = await one(name, args.profile_seconds + 1)
        sections.append(
            f"## {name} under load ({r.rps:,.0f} req/s while sampled, errors {dict(r.errors) or 0})"
            f"\n\nRaw stacks: `bench/results/{raw.name}`. py-spy --gil: where the one core daphne"
            " can use goes; waits on sockets without the GIL do not show.\n\n"
            + profiling.summarise(raw, [(k, f".*{f}.*", p) for k, f, p in KEY_FRAMES])
        )
    return results, "\n".join(sections)


def table(args: argparse.Namespace, results: dict[str, list[Round]]) -> str:
    rows, notes, base = [], [], [r.rps for r in results["trivial"]]
    for name, (_, status, threshold, target) in PATHS.items():
        rounds, rps = results[name], [r.rps for r in results[name]]
        ratios, lat = report.paired(rps, base), [x for r in rounds for x in r.latencies]
        met = "—" if threshold is None else "yes" if median(ratios) >= threshold else "**no**"
        requests = max(1, sum(r.requests for r in rounds))
        commands = sum((r.redis_commands for r in rounds), Counter())
        # Other users of the Redis server add a little: less than 0.1 a request is theirs.
        used = [f"{k} {n / requests:.2f}" for k, n in commands.most_common() if n > requests / 10]
        notes.append(f"- Redis commands per request, {name}: {', '.join(used) or 'none'}")
        row = [f"{name} (→{status})", f"{median(rps):,.0f}", f"{min(rps):,.0f}–{max(rps):,.0f}"]
        row += [f"{median(base):,.0f}", report.spread(ratios, "{:.2f}"), target, met]
        row += [f"{1000 * percentile(lat, 0.5):.1f} / {1000 * percentile(lat, 0.99):.1f}"]
        row += [f"{median(r.server_cpu for r in rounds):.0%}"]
        row += [f"{median(r.client_cpu for r in rounds):.0%}"]
        row += [f"{sum(r.redis_connections for r in rounds) / requests:.2f}"]
        rows.append(row + [sum(sum(r.errors.values()) for r in rounds)])
    header = "path|req/s median|spread (min–max)|baseline: trivial req/s median|ratio median"
    header += " (per-round min–max)|target|met|p50 / p99 ms|daphne CPU|client CPU"
    header += "|new Redis conns / request|errors"
    notes.append(f"\n{args.rounds} interleaved rounds per path (order rotated each round); {NOTE}")
    return f"{report.table(header.split('|'), rows)}\n\n" + "\n".join(notes) + "\n"


NOTE = (
    "ratio = path / trivial in the same round. CPU: share of one core (median); a client far"
    " below 100 % is not the bottleneck. Redis figures are the server's (INFO), others add noise."
)


def run() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the unread-count polling path.")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round")
    parser.add_argument("--notifications", type=int, default=1000)
    parser.add_argument("--database", default="notif_bench")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="flushed")
    parser.add_argument("--profile", action="store_true", help="also sample daphne with py-spy")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "polling.md")
    args = parser.parse_args()
    title = "Polling benchmark: unread-count under daphne"
    lines = report.header(title, "bench.polling", "BENCH_ARGS")
    with django_database(args.database, args.postgres_url, args.redis_url) as (env, folder):
        seeded = seed(env, folder, "poller", args.notifications)
        server = daphne(env, folder / "daphne.log")
        results, profile = asyncio.run(measure(args, server, seeded))
        server.check()
    lines.append(
        f"- setup: one daphne process, DJANGO_DEBUG=0, PostgreSQL (Django pool) + Redis cache;"
        f" {args.connections} keep-alive connections from one asyncio process; {args.rounds} rounds"
        f" × {args.seconds:g} s per path (cap {LIMIT:,} requests per round); 1 user,"
        f" {args.notifications} notifications; DRF token auth"
    )
    report.write(args.output, "\n".join(lines) + "\n\n" + table(args, results))
    if profile:
        title = "Where daphne's time goes: trivial view, unread-count 304 and 200"
        heading = report.header(title, "bench.polling", "BENCH_ARGS")
        report.write(RESULTS / "profile-polling.md", "\n".join(heading) + "\n\n" + profile)
    return 1 if any(r.errors for rounds in results.values() for r in rounds) else 0


if __name__ == "__main__":
    main(run)
