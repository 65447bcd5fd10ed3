"""``bench.websocket``'s tables: each target of performance.md's WebSocket part as a ratio to
the bare reference of the same repetition, per server and channel layer; then the figures
behind the ratios, and where the time and memory went."""

from collections import Counter
from collections.abc import Iterator
from typing import Any

from bench.lib import report
from bench.lib.report import median, percentile
from bench.ws_run import BROADCAST, EVERYONE, LATENCY, PER_USER, REFERENCE, Run

RATE, RSS = ("{:,.0f}", "{:.3f}"), ("{:,.0f}", "{:.2f}")  # the value's format, the ratio's


def figures(run: Run, name: str) -> Iterator[tuple]:
    """(number, figure, the app's values, the reference's, (their format, the ratio's), target,
    the deliveries) of one app server: a target above 0 is a least ratio, below 0 a most."""
    args, results, n = run.args, run.results, run.args.users
    for number, scenario in (("1a", PER_USER), ("1b", BROADCAST)):
        app, ref = results[(scenario, name)], results[(scenario, REFERENCE)]
        rounds = args.per_user_rounds if scenario == PER_USER else args.rounds
        how = "a notify() per user" if scenario == PER_USER else "one notify() to all users"
        figure = f"{scenario} ({how}): delivered msg/s, {n:,} sockets, {rounds} × {n:,} msgs"
        yield number, figure, [d.rate for d in app], [d.rate for d in ref], RATE, 0.25, app
    app, ref = results[(LATENCY, name)], results[(LATENCY, REFERENCE)]
    for q, limit in ((0.5, 2), (0.99, 3)):
        sends = f"{args.latency_reps} × {args.paced} paced sends, 1 per {1000 * args.interval:g} ms"
        figure = f"latency p{100 * q:.0f}: notify() to receipt, ms ({sends}, {n:,} idle sockets)"
        values = [[1000 * percentile(d.latencies, q) for d in ds] for ds in (app, ref)]
        yield "2", figure, *values, ("{:.1f}", "{:.2f}"), -limit, app
    app, ref = results[(EVERYONE, name)], results[(EVERYONE, f"{REFERENCE} ({name}'s turn)")]
    figure = f"{EVERYONE}: s until the last of {args.broadcast_users:,} sockets holds it"
    values = [[d.elapsed for d in ds] for ds in (app, ref)]
    yield "3", figure, *values, ("{:.3f}", "{:.1f}"), -2, app
    figure = f"memory: RSS bytes per idle socket ({n:,} sockets)"
    yield "4", figure, run.memory[name], run.memory[REFERENCE], RSS, -1.5, []


def verdict(ratios: list[float], target: float, ds: list[Any]) -> tuple[bool, str]:
    """Met or not (the median ratio, and nothing lost), and what went wrong on the way."""
    ratio, lost = median(ratios), sum(d.missing for d in ds)
    closed, codes = sum(d.lost_sockets for d in ds), sum((d.codes for d in ds), Counter())
    ok = (ratio >= target if target > 0 else ratio <= -target) and not lost
    notes = [f"{lost:,} of {sum(d.expected for d in ds):,} lost"] if lost else []
    if extra := sum(max(0, d.received - d.expected) for d in ds):
        notes.append(f"{extra:,} more received than sent (some twice)")
    if closed:
        notes.append(f"server closed {closed:,} sockets (codes {dict(codes)})")
    if nothing := sum(d.last is None for d in ds if d.scenario == EVERYONE):
        notes.append(f"{nothing} of {len(ds)} broadcasts delivered nothing")
    return ok, "; ".join(notes)


def goal(target: float) -> str:
    return f"≥ {target:g} of bare, nothing lost" if target > 0 else f"≤ {-target:g}x bare"


def tables(run: Run) -> str:
    """The targets (rows) by server and layer (columns), then the figures behind them."""
    args, apps, matrix, rows, notes = run.args, run.apps, {}, [], []
    for name in apps:
        for number, figure, app, ref, (fmt, ratio_fmt), target, ds in figures(run, name):
            ratios = report.paired(app, ref)
            ok, trouble = verdict(ratios, target, ds)
            short = figure.split(":")[0]
            cell = f"{report.spread(ratios, ratio_fmt)} {'met' if ok else '**missed**'}"
            if trouble:
                notes.append(f"{number} {short}, {name}: {trouble}")
                cell += f" ({len(notes)})"
            matrix.setdefault((number, short, goal(target)), []).append(cell)
            row = [number, figure, name, report.spread(app, fmt), report.spread(ref, fmt)]
            rows.append(row + [report.spread(ratios, ratio_fmt), goal(target), ("no", "yes")[ok]])
    header = ["#", "target", *apps, "target: ratio app / bare"]
    summary = [[number, short, *cells, aim] for (number, short, aim), cells in matrix.items()]
    text = [
        "Each cell: the ratio app / bare `websockets` of the same repetition, median (min–max)"
        f" over {args.reps} repetitions ({args.latency_reps} for latency), then whether the median"
        " meets the target.",
        "",
        report.table(header, summary),
        "",
        *[f"{n}. {note}" for n, note in enumerate(notes, 1)],
        *([] if notes else ["Nothing lost, no socket closed by a server."]),
        "",
        "The figures behind the ratios:",
        "",
    ]
    header = ["#", "figure", "server/layer", "app: median (min–max)", "bare: median (min–max)"]
    text += [report.table(header + ["ratio: median (min–max)", "target", "met?"], rows)]
    return "\n".join(text + ["", NOTE, "", details(run)])


def details(run: Run) -> str:
    args, rows = run.args, []
    for (scenario, name), ds in run.results.items():
        values = [d.elapsed if scenario == EVERYONE else d.rate for d in ds]
        value = median(x for x in values if x == x)  # not NaN: a delivery that got nothing
        row = [scenario, name, f"{value:.3f} s" if scenario == EVERYONE else f"{value:,.0f} msg/s"]
        for key in ("server_cpu", "sender_cpu", "sent", "cpu"):
            row.append(f"{median(getattr(d, key) for d in ds):.2f}")
        rows.append(row + [sum(d.missing for d in ds), sum(d.stale for d in ds)])
    header = "scenario|server|msg/s or s|server CPU s|sender CPU s|send call s|client CPU s"
    text = ["Details (medians over repetitions):", ""]
    text += [report.table((header + "|missing|late").split("|"), rows), ""]
    for name in run.servers:
        took = [x for d in run.results[(LATENCY, name)] for x in d.durations]
        what = "(INSERT, commit, send)" if name == REFERENCE else "(the notify() call)"
        p50, p99 = 1000 * percentile(took, 0.5), 1000 * percentile(took, 0.99)
        text.append(f"- {name}: one paced send takes p50 {p50:.1f} ms, p99 {p99:.1f} ms {what}")
    for name, server in run.servers.items():
        rss = ", ".join(f"{n:,} sockets {b / 2**20:.1f} MiB" for n, b in sorted(server.rss.items()))
        per = ", ".join(f"{b:,.0f}" for b in run.memory[name])
        seconds = run.connect_seconds[name]
        text.append(
            f"- {name}: RSS {rss}; {args.users:,} connects took {seconds:.1f} s;"
            f" bytes per idle socket by repetition: {per}"
        )
    return "\n".join(text + ["", "Run log:", "", "```", *run.log, "```", ""])


NOTE = (
    "Ratios are app / bare `websockets` in the same repetition. Fan-out msg/s = messages received"
    " / (last receipt − first send); the app's (1a) is one `notify()` per user in one transaction"
    " per round, its (1b) one `notify()` to the users' QuerySet (a row, an event and a frame per"
    " user either way); the reference's (1a) sends each socket its JSON, (1b)"
    " `websockets.broadcast`. Latency: the reference commits one row to the same PostgreSQL"
    " database (autocommit), then sends it to one client. Memory: RSS growth from opening the"
    " idle sockets (after a warm-up), the first repetition on the run's servers, the others on"
    " a fresh process of each, started for it."
)
