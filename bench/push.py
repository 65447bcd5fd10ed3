"""Web Push: the time to push one notification to 10,000 subscriptions, through
``notifications.push``, against ``pywebpush.webpush()`` in a loop (what django-webpush does).

``make bench`` or ``.venv/bin/python -m bench.push [--subscriptions 10000] [--repeat 3]
[--databases sqlite postgresql]``: per database a fresh one, migrated; ``bench.push_sink`` in a
process of its own stands in for the push service (it accepts and counts); 10,000 users, each
with one subscription to it, and one notification to all of them. Rounds (order rotated) of:
``delivery.send()`` over the ids in ``WEB_PUSH_BATCH_SIZE`` chunks in one worker process, the
chunks split between two at once, ``notify()`` end to end through the database task queue to
one and to two ``manage.py db_worker`` processes, and the baseline (no database work in its
clock); round 1 of the first database also runs the baseline without a ``requests.Session``. Into
``bench/results/push.md``. ``--profile FILE``: one more one-worker run under py-spy (not counted),
summed up into FILE.
"""

import argparse
import hashlib
import http.client
import json
import math
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.lib import report
from bench.lib.databases import POSTGRES, scratch_database
from bench.lib.processes import (
    BIN,
    HOST,
    ROOT,
    BenchError,
    Process,
    cpu_seconds,
    django_env,
    free_port,
    main,
    run_checked,
)
from bench.lib.report import RESULTS, median

PYTHON = str(BIN / "python")
RUNS = {  # name: (kind, processes); the baseline is what the ratios are against
    "ours: delivery.send(), 1 worker": ("send", 1),
    "ours: delivery.send(), 2 workers at once": ("send", 2),
    "end to end: notify() → task queue, 1 db_worker": ("queue", 1),
    "end to end: notify() → task queue, 2 db_workers": ("queue", 2),
    "baseline: pywebpush.webpush() loop, one requests.Session": ("baseline", 1),
}
BASELINE = "baseline: pywebpush.webpush() loop, one requests.Session"
SESSIONLESS = "baseline without a session (once: round 1, first database)"
QUEUE_TIMEOUT = 600  # seconds for the db_workers to push everything
STALL = 60  # seconds without a push accepted: the db_workers are stuck


class Sink:
    """``bench.push_sink`` in a process of its own, and its counters over HTTP."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        port = free_port()
        command = [PYTHON, "-m", "bench.push_sink", "--port", str(port)]
        self.process = Process(command, env, log, port).start()
        self.url = f"http://{HOST}:{port}"

    def _ask(self, method: str, path: str) -> dict[str, Any]:
        connection = http.client.HTTPConnection(HOST, self.process.port, timeout=30)
        try:
            connection.request(method, path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def stats(self) -> dict[str, Any]:
        return self._ask("GET", "/stats")

    def reset(self) -> None:
        self._ask("POST", "/reset")


@contextmanager
def database(kind: str, args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """A fresh database of ``kind`` (its URL), and a folder for the logs."""
    with tempfile.TemporaryDirectory(prefix="notif-push-bench-") as folder:
        if kind == "sqlite":
            yield f"sqlite:///{folder}/push.sqlite3", Path(folder)
            return
        with scratch_database(args.database, args.postgres_url) as url:
            yield url, Path(folder)


def checked(name: str, stats: dict[str, Any], count: int) -> None:
    """Every push accepted, none refused: or the run is worthless."""
    if stats["accepted"] != count or stats["refused"]:
        raise BenchError(
            f"{name}: the sink accepted {stats['accepted']} and refused {stats['refused']}, "
            f"not {count} and 0"
        )


def outcome(name: str, answers: list[dict], stats: dict[str, Any], count: int) -> dict[str, Any]:
    """The figures of a run from its workers' answers and the sink's counters."""
    checked(name, stats, count)
    t0 = min(answer["t0"] for answer in answers)
    seconds = stats["last"] - t0
    batches = [queries for answer in answers for queries in answer.get("batches", [])]
    return {
        "seconds": seconds,
        "per_second": count / seconds,
        "cpu_per_1000": sum(answer["cpu"] for answer in answers) / count * 1000,
        "batches": batches,
        "first": stats["first"] - t0,
        "kilobytes": stats["bytes"] / count / 1024,
    }


class Bench:
    """The processes of one database's measurement, and each kind of run."""

    def __init__(self, stack: ExitStack, url: str, folder: Path, args: argparse.Namespace):
        from notifications.push.keys import generate

        self.folder, self.count, self.stack = folder, args.subscriptions, stack
        self.sink = Sink(django_env(url), folder / "sink.log")  # not Django: for the path
        stack.callback(self.sink.process.stop)
        public, private = generate()
        self.env = django_env(
            url,
            BENCH_PUSH_PUBLIC_KEY=public,
            BENCH_PUSH_PRIVATE_KEY=private,
            BENCH_PUSH_SINK=self.sink.url,
        )
        run_checked([PYTHON, "manage.py", "migrate", "--noinput"], self.env)
        self.workers = []
        for n in range(2):
            command = [PYTHON, "-m", "bench.push_worker"]
            worker = Process(command, self.env, folder / f"worker{n}.log").start()
            stack.callback(worker.stop)
            self.workers.append(worker)
        seeded = self.workers[0].call({"cmd": "seed", "count": self.count})
        self.check_due(seeded)
        ids, size = seeded["ids"], seeded["batch_size"]
        self.chunks = [ids[start : start + size] for start in range(0, len(ids), size)]
        self.vendor = self.workers[0].ready["vendor"]
        self.started = 0

    def check_due(self, answer: dict[str, Any]) -> None:
        if answer["due"] != self.count or answer["subscriptions"] != self.count:
            raise BenchError(
                f"{answer['due']} notifications to push and {answer['subscriptions']} "
                f"subscriptions, not {self.count} of each"
            )

    def run(self, name: str) -> dict[str, Any]:
        kind, processes = RUNS.get(name, ("sessionless", 1))
        self.check_due(self.workers[0].call({"cmd": "due"}))
        self.sink.reset()
        if kind == "send":
            return self.send(name, processes)
        if kind == "queue":
            return self.queue(name, processes)
        command = {"cmd": "baseline", "session": kind == "baseline"}
        answer = self.workers[0].call(command)
        if answer["sent"] != self.count:
            raise BenchError(f"{name}: webpush() called {answer['sent']} times")
        return outcome(name, [answer], self.sink.stats(), self.count)

    def send(self, name: str, processes: int) -> dict[str, Any]:
        shares = [self.chunks[n::processes] for n in range(processes)]
        with ThreadPoolExecutor(processes) as pool:
            calls = zip(self.workers, shares, strict=False)
            answers = list(pool.map(lambda c: c[0].call({"cmd": "send", "chunks": c[1]}), calls))
        sent = sum(answer["sent"] for answer in answers)
        others = {k: sum(a[k] for a in answers) for k in ("gone", "failed", "late", "retry")}
        if sent != self.count or any(others.values()):
            raise BenchError(f"{name}: {sent} sent, {others}")
        return outcome(name, answers, self.sink.stats(), self.count)

    def queue(self, name: str, processes: int) -> dict[str, Any]:
        self.check_due(self.workers[0].call({"cmd": "clean"}))
        self.started += 1
        db_workers = [self.db_worker(f"{self.started}-{n}") for n in range(processes)]
        try:
            cpu0 = [cpu_seconds(worker.pid) for worker in db_workers]
            answer = self.workers[0].call({"cmd": "notify"})
            if answer["rows"] != self.count:
                raise BenchError(f"{name}: notify() wrote {answer['rows']} notifications")
            tasks = self.wait_for_tasks(name, db_workers)
            cpu = sum(cpu_seconds(w.pid) - c for w, c in zip(db_workers, cpu0, strict=True))
        finally:
            for worker in db_workers:
                worker.stop()
        reported = tasks["reported"]
        if reported.get("sent") != self.count or any(
            reported.get(k) for k in ("gone", "failed", "late", "retry")
        ):
            raise BenchError(f"{name}: the tasks reported {reported}")
        per_task = []
        for worker in db_workers:
            for line in worker.log_path.read_text().splitlines():
                if line.startswith("bench-task "):
                    per_task.append(json.loads(line.removeprefix("bench-task "))["queries"])
        stats = self.sink.stats()
        result = outcome(name, [{**answer, "cpu": cpu, "batches": per_task}], stats, self.count)
        result |= {
            "notify_seconds": answer["t1"] - answer["t0"],
            "notify_queries": answer["queries"],
            "notify_cpu": answer["cpu"],
        }
        self.check_due(self.workers[0].call({"cmd": "clean"}))
        return result

    def db_worker(self, tag: str) -> Process:
        """A ``manage.py db_worker`` of the run, started and polling the queue."""
        command = [PYTHON, "-m", "bench.push_worker", "db_worker", "--no-startup-delay"]
        worker = Process(command, self.env, self.folder / f"db_worker-{tag}.log").start()
        self.stack.callback(worker.stop)
        deadline = time.monotonic() + 60
        while "Starting worker" not in worker.log_path.read_text(errors="replace"):
            worker.check("at start")
            if time.monotonic() > deadline:
                raise BenchError(f"the db_worker did not start\n{worker.log()}")
            time.sleep(0.05)
        return worker

    def wait_for_tasks(self, name: str, db_workers: list[Process]) -> dict[str, Any]:
        """Once the sink has them all, the tasks' outcome, when every one has finished. A task
        that fails (its db_worker logs it), or a sink that takes nothing for ``STALL`` seconds,
        ends the run with the db_workers' logs."""
        expected = math.ceil(self.count / len(self.chunks[0]))
        deadline, accepted, progress = time.monotonic() + QUEUE_TIMEOUT, -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - progress < STALL:
            for worker in db_workers:
                worker.check()
                if "state=FAILED" in worker.log_path.read_text(errors="replace"):
                    raise BenchError(f"{name}: a send_pushes task failed\n{worker.log()}")
            if (now := self.sink.stats()["accepted"]) != accepted:
                accepted, progress = now, time.monotonic()
            if accepted >= self.count:
                tasks = self.workers[0].call({"cmd": "tasks"})
                statuses = tasks["statuses"]
                if statuses.get("SUCCESSFUL", 0) + statuses.get("FAILED", 0) == expected:
                    if statuses != {"SUCCESSFUL": expected}:
                        raise BenchError(f"{name}: tasks {statuses}, not all succeeded")
                    return tasks
            time.sleep(0.05)
        logs = "\n".join(worker.log() for worker in db_workers)
        raise BenchError(f"{name}: stuck at {self.sink.stats()}\n{logs}")

    def profile(self, output: Path) -> None:
        """One more one-worker ``send`` run, sampled by py-spy (``--gil``: where the CPU that
        the posting threads and the main thread share goes); its summary into ``output``."""
        from bench.lib.profiling import summarise

        py_spy = BIN / "py-spy"
        if not py_spy.exists():
            raise BenchError(f"py-spy is missing: {BIN / 'pip'} install py-spy")
        raw = output.with_suffix(".raw.txt")
        worker = self.workers[0]
        command = [str(py_spy), "record", "--pid", str(worker.pid), "--rate", "250"]
        command += ["--format", "raw", "--gil", "--threads", "-o", str(raw)]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)  # py-spy attaches
        try:
            self.check_due(worker.call({"cmd": "due"}))
            self.sink.reset()
            result = self.send("profiled run", 1)
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has, and exits
            _, errors = spy.communicate(timeout=60)
        if spy.returncode or not raw.exists():
            raise BenchError(f"py-spy failed ({spy.returncode}): {errors.decode()[-2000:]}")
        keys = [
            ("main thread: delivery.send()", "send", "notifications/push/delivery.py"),
            ("  the batch's queries: Django ORM", "", "django/db/models/"),
            ("    of which the database driver's execute", "execute", "django/db/backends/"),
            ("  the payload: payload.message", "message", "notifications/push/payload.py"),
            ("    of which the open link: email.links.open_path", "open_path", "links.py"),
            ("  preparing headers: _prepare", "_prepare", "notifications/push/delivery.py"),
            ("    of which VAPID: Signer.authorization", "authorization", "push/keys.py"),
            ("  handing pushes to the threads and back", "map|submit|result.*", "concurrent/"),
            ("  bookkeeping: _record", "_record", "notifications/push/delivery.py"),
            ("posting threads: _post", "_post", "notifications/push/delivery.py"),
            ("  encrypting: http_ece.encrypt", "encrypt", "http_ece"),
            ("  posting: urllib3 PoolManager.request", "request", "urllib3/"),
            ("    of which http.client", "", "http/client.py"),
        ]
        text = [
            f"# py-spy --gil on one worker: delivery.send() over {self.count:,} subscriptions",
            "",
            f"{self.vendor}; {result['seconds']:.2f} s under the profiler, "
            f"{result['cpu_per_1000']:.2f} CPU s per 1,000 pushes. Raw stacks: `{raw}`.",
            "",
            summarise(raw, keys),
        ]
        output.write_text("\n".join(text))
        print(f"profile written to {output}", flush=True)


def measure(kind: str, args: argparse.Namespace) -> tuple[dict[str, list[dict]], str]:
    """Every run of RUNS, ``args.repeat`` rounds, on a fresh database of ``kind``."""
    with database(kind, args) as (url, folder), ExitStack() as stack:
        bench = Bench(stack, url, folder, args)
        print(f"{kind}: seeded {args.subscriptions:,} users, sink at {bench.sink.url}", flush=True)
        results: dict[str, list[dict]] = {name: [] for name in [*RUNS, SESSIONLESS]}
        names = list(RUNS)
        for round_ in range(args.repeat):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            if round_ == 0 and kind == args.databases[0] and not args.no_sessionless:
                order.append(SESSIONLESS)
            for name in order:
                result = bench.run(name)
                results[name].append(result)
                print(
                    f"  round {round_ + 1} {name}: {result['seconds']:.2f} s, "
                    f"{result['cpu_per_1000']:.2f} CPU s / 1,000",
                    flush=True,
                )
        if args.profile and kind == args.databases[0]:
            bench.profile(Path(args.profile).resolve())
        return results, bench.vendor


def rows(results: dict[str, list[dict]], kind: str) -> Iterator[str]:
    base = [r["seconds"] for r in results[BASELINE]]
    for name, rounds in results.items():
        if not rounds:
            continue
        seconds = [r["seconds"] for r in rounds]
        ratios = report.paired(seconds, base)
        ratio = report.spread(ratios, "{:.2f}") if name != BASELINE else "1 (baseline)"
        batches = [queries for r in rounds for queries in r["batches"]]
        per_batch = f"{median(batches):.0f}; {max(batches)}" if batches else "— (no database)"
        yield (
            f"| {kind} | {name} | {report.spread(seconds, '{:.2f}')} | "
            f"{report.spread([r['per_second'] for r in rounds])} | {ratio} | "
            f"{report.spread([r['cpu_per_1000'] for r in rounds], '{:.2f}')} | {per_batch} |"
        )


def queue_rows(results: dict[str, list[dict]], kind: str) -> Iterator[str]:
    for name, rounds in results.items():
        if not rounds or RUNS.get(name, ("",))[0] != "queue":
            continue
        notify_seconds = report.spread([r["notify_seconds"] for r in rounds], "{:.2f}")
        notify_cpu = report.spread([r["notify_cpu"] for r in rounds], "{:.2f}")
        notify_queries = report.spread([r["notify_queries"] for r in rounds])
        first = report.spread([r["first"] for r in rounds], "{:.2f}")
        yield f"| {kind} | {name} | {notify_seconds} | {notify_cpu} | {notify_queries} | {first} |"


def source_digest() -> str:
    """A digest of the app's code (the checkout is shared: it may change during a run)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "notifications").rglob("*.py")):
        digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--database", default="notif_push_bench", help="PostgreSQL's, dropped")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument(
        "--no-sessionless", action="store_true", help="skip the baseline without a session"
    )
    parser.add_argument("--profile", metavar="FILE", help="py-spy summary of one more run")
    args = parser.parse_args()
    if args.database in ("notifications", "notifications_scratch") or args.database.startswith(
        "test_"
    ):
        parser.error(f"{args.database!r} is another user's database: it would be dropped")
    code = source_digest()
    measured = {kind: measure(kind, args) for kind in args.databases}
    if source_digest() != code:
        raise BenchError("notifications/ changed during the run: its figures mix two versions")
    lines = report.header(
        f"Web Push: one notification to {args.subscriptions:,} subscriptions, to a push sink",
        "bench.push",
        "PUSH_BENCH_ARGS",
    )
    first = measured[args.databases[0]][0]
    lines += [
        f"- code: {report.code_version()}; push service: `bench.push_sink` in its own process "
        f"(HTTP/1.1 keep-alive, accepting and counting); WEB_PUSH_BATCH_SIZE default (500), "
        f"16 posting threads per worker (delivery.CONCURRENCY); {args.repeat} rounds, order "
        "rotated",
        "",
        "| database | run | seconds, median (min–max) | pushes/s accepted | ours / baseline"
        " (per-round pairs) | worker CPU s per 1,000 pushes | SQL per batch of 500 (median;"
        " most) |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, (results, _) in measured.items():
        lines += rows(results, kind)
    lines += [
        "",
        "End to end, where its time goes (same rounds):",
        "",
        "| database | run | notify() call, s | notify() CPU s | notify() SQL statements |"
        " first push accepted after, s |",
        "|---|---|---|---|---|---|",
    ]
    for kind, (results, _) in measured.items():
        lines += queue_rows(results, kind)
    size = first[BASELINE][0]["kilobytes"] * 1024
    lines += [
        "",
        f"Each push {size:.0f} bytes encrypted (aes128gcm, one record). Seconds: from the first"
        " call (`delivery.send()`, `notify()`, the first `webpush()`) to the sink's"
        f" {args.subscriptions:,}th acceptance; the sink accepted exactly that many and refused"
        " none, every run (checked, as are the workers' and tasks' reports: all sent, none"
        " late, failed, gone or retried). Ratio: time, ours / the baseline of the same round."
        " Baseline: `pywebpush.webpush(subscription_info, data, vapid_private_key=<the raw"
        ' key as a string>, vapid_claims={"sub": ...}, ttl=...)` per subscription, as'
        " django-webpush calls it (a JWT signed per push), with the same payload bytes as ours"
        " (made by `payload.message()` before its clock), one after another in one process."
        " CPU: user + system of the worker process(es), all threads (`getrusage`; the"
        " db_workers' from /proc), per 1,000 pushes. SQL per batch: statements of one"
        " `delivery.send()` call; end to end, of one `send_pushes` task from `task_started` to"
        " `task_finished` (the task and marking it done; not the claim nor the polling).",
        "",
        "End to end: `notify()` in a worker process with `TASKS` on `django_tasks_db."
        "DatabaseBackend`; its receiver (`targets.notifications_to_push`) queues one"
        " `send_pushes` task per 500 notifications, which one or two `manage.py db_worker"
        " --no-startup-delay` processes (default `--interval`, 1 s, started before the clock)"
        " claim and run. Who is online: no Redis, so the in-memory registry of the notifying"
        " process: nobody, every subscriber gets a push. The db_workers poll once a second"
        " when idle: the first push waits up to that long for the first claim.",
        "",
        "Machine: shared with other jobs, 2 cores; the sink, the worker(s), the database and"
        " this script share them, so two workers cannot double one's speed, and the spread"
        " between rounds is partly other jobs' load.",
    ]
    report.write(RESULTS / "push.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    main(run)
