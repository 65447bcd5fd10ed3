"""Email digests: 10,000 users each with a due notification, sent through ``send_batch`` to a
real SMTP server, against Django sending the same messages over one connection.

``make bench`` or ``.venv/bin/python -m bench.digests [--users 10000] [--repeat 3]
[--databases sqlite postgresql]``: per database a fresh one, migrated; aiosmtpd in a process of
its own accepts and counts; rounds (order rotated) of: ``send_batch()`` loops in one worker
process, in two at once, and the baselines with no database work (Django's SMTP backend, one
connection: the messages built from pre-rendered parts inside the clock; and rendered with the
app's templates inside it). Into ``bench/results/digests.md``.
"""

import argparse
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.lib import report
from bench.lib.databases import POSTGRES, scratch_database
from bench.lib.processes import BIN, HOST, BenchError, Process, django_env, main, run_checked
from bench.lib.report import RESULTS, median

RUNS = {  # name: (workers, command); the first baseline is the one ratios are against
    "ours: send_batch loop, 1 worker": (1, {"cmd": "send"}),
    "ours: send_batch loop, 2 workers at once": (2, {"cmd": "send"}),
    "baseline: Django, one connection, no database": (1, {"cmd": "baseline", "render": False}),
    "baseline + rendering (app's templates)": (1, {"cmd": "baseline", "render": True}),
}
BASELINE = "baseline: Django, one connection, no database"


@contextmanager
def database(kind: str, args: argparse.Namespace):
    """A fresh, migrated database of ``kind``: its URL."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="notif-digests-bench-") as folder:
            yield f"sqlite:///{folder}/digests.sqlite3", Path(folder)
        return
    with (
        scratch_database(args.database, args.postgres_url) as url,
        tempfile.TemporaryDirectory(prefix="notif-digests-bench-") as folder,
    ):
        yield url, Path(folder)


def one_round(name: str, workers: list[Process], sink: Process, users: int) -> dict[str, Any]:
    count, command = RUNS[name]
    due = workers[0].call({"cmd": "reset"})["due"]
    if due != users:
        raise BenchError(f"{due} notifications due after the reset, not {users}")
    sink.call({"cmd": "reset"})
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda worker: worker.call(command), workers[:count]))
    accepted = sink.call({"cmd": "count"})
    sent = sum(answer["sent"] for answer in answers)
    if sent != users or accepted["messages"] != users:
        raise BenchError(f"{name}: {sent} sent, {accepted['messages']} accepted, not {users}")
    seconds = max(a["t1"] for a in answers) - min(a["t0"] for a in answers)
    batches = [queries for answer in answers for queries in answer["batches"]]
    return {
        "seconds": seconds,
        "per_second": accepted["messages"] / seconds,
        "queries": sum(batches),
        "batches": len(batches),
        "per_batch": median(batches[:-1] or batches),  # the last one finds little or nothing
        "per_batch_max": max(batches, default=0),
        "kilobytes": accepted["bytes"] / users / 1024,
    }


def measure(kind: str, args: argparse.Namespace) -> tuple[dict[str, list[dict]], str]:
    """Every run of RUNS, ``args.repeat`` rounds, on a fresh database of ``kind``."""
    with database(kind, args) as (url, folder), ExitStack() as stack:
        sink_command = [str(BIN / "python"), "-m", "bench.smtp_sink"]
        sink = Process(sink_command, django_env(url), folder / "smtp.log")  # not Django: the path
        port = sink.start().ready["port"]
        stack.callback(sink.stop)
        env = django_env(url, EMAIL_HOST=HOST, EMAIL_PORT=str(port))
        run_checked([str(BIN / "python"), "manage.py", "migrate", "--noinput"], env)
        workers = []
        for n in range(2):
            log = folder / f"worker{n}.log"
            worker = Process([str(BIN / "python"), "-m", "bench.digest_worker"], env, log).start()
            stack.callback(worker.stop)
            workers.append(worker)
        workers[0].call({"cmd": "seed", "count": args.users})
        vendor = workers[0].ready["vendor"]
        print(f"{kind}: seeded {args.users:,} users, SMTP server on port {port}", flush=True)
        results: dict[str, list[dict]] = {name: [] for name in RUNS}
        names = list(RUNS)
        for round_ in range(args.repeat):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                result = one_round(name, workers, sink, args.users)
                results[name].append(result)
                print(f"  round {round_ + 1} {name}: {result['seconds']:.2f} s", flush=True)
        return results, vendor


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--database", default="notif_digests_bench", help="PostgreSQL's, dropped")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    args = parser.parse_args()
    measured = {kind: measure(kind, args) for kind in args.databases}
    lines = report.header(
        f"Email digests: {args.users:,} users, one due notification each, to a real SMTP server",
        "bench.digests",
        "DIGESTS_BENCH_ARGS",
    )
    lines += [
        f"- code: {report.code_version()}; SMTP server: aiosmtpd in its own process, accepting "
        f"and counting; EMAIL_BATCH_SIZE default; {args.repeat} rounds, order rotated",
        "",
        "| database | run | seconds, median (min–max) | messages/s accepted | ours / baseline"
        " (per-round pairs) | queries in all | queries per batch (median; most) |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, (results, _) in measured.items():
        base = [r["seconds"] for r in results[BASELINE]]
        for name, rounds in results.items():
            seconds = [r["seconds"] for r in rounds]
            ratios = report.paired(seconds, base)
            ratio = report.spread(ratios, "{:.2f}") if name != BASELINE else "1 (baseline)"
            has_batches = rounds[0]["batches"] > 0
            queries = report.spread([r["queries"] for r in rounds]) if has_batches else "0"
            per_batch = (
                f"{median([r['per_batch'] for r in rounds]):.0f}; "
                f"{max(r['per_batch_max'] for r in rounds)}"
                if has_batches
                else "—"
            )
            lines.append(
                f"| {kind} | {name} | {report.spread(seconds, '{:.2f}')} | "
                f"{report.spread([r['per_second'] for r in rounds])} | {ratio} | {queries} | "
                f"{per_batch} |"
            )
    size = measured[args.databases[0]][0][BASELINE][0]["kilobytes"]
    lines += [
        "",
        f"Each message {size:.1f} KB (text and HTML parts). Seconds: from the first worker's start"
        " to the last one's end; messages/s: what the SMTP server accepted over those seconds"
        " (all of them, every run: checked). Ratio: time, ours / the baseline of the same round"
        " (Django's SMTP backend, one connection, the messages built from pre-rendered parts in"
        " the clock). Queries: SQL statements of the workers' `send_batch()` calls (claim,"
        " contents, outcome; SQLite's BEGIN counts), the last, near-empty batch included in all"
        " but not in the median. Machine: shared, 2 cores; the SMTP server, the workers and"
        " the database share them.",
    ]
    report.write(RESULTS / "digests.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    main(run)
