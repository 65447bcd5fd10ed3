"""Reports: medians and spreads, ratios against a baseline of the same run, markdown tables, and
the header saying when, where and how a table was made."""

import datetime as dt
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.lib.processes import ROOT

RESULTS = ROOT / "bench" / "results"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if values else float("nan")


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    """``median (min–max)`` of the values that are numbers."""
    values = [value for value in values if value == value]  # not NaN
    if len(values) < 2:
        return fmt.format(values[0]) if values else "—"
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def bracketed(values: Sequence[float], digits: int = 2, unit: float = 1) -> str:
    """``median [min-max]`` (the in-process benchmarks' console tables)."""
    values = [value * unit for value in values] or [0]
    return f"{median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def paired(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Each value against the baseline of its own round: rounds share the machine's mood."""
    pairs = zip(values, baselines, strict=False)
    return [value / base for value, base in pairs if base and base == base]  # base not 0 or NaN


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def header(title: str, module: str, make_variable: str) -> list[str]:
    """The title, then the date, the machine and the command that ran the benchmark (as
    ``make bench`` or by hand)."""
    cpu = Path("/proc/cpuinfo").read_text().partition("model name")[2].split("\n")[0].strip(" \t:")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    python = Path(sys.executable)
    python = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
    command = shlex.join([str(python), "-m", module, *sys.argv[1:]])
    if os.environ.get("MAKELEVEL"):
        given = f" {make_variable}={shlex.quote(shlex.join(sys.argv[1:]))}" if sys.argv[1:] else ""
        command = f"make bench{given} (runs: {command})"
    when = f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    where = f"- machine: {os.cpu_count()} CPUs, {cpu}; load average at start {load}; Python"
    return [
        f"# {title}",
        "",
        when,
        f"{where} {platform.python_version()}",
        f"- command: `{command}`",
    ]


def code_version() -> str:
    """The commit, ``-dirty`` if the checkout differs from it."""
    git = ["git", "describe", "--always", "--dirty"]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read only: not even the index is refreshed
    return subprocess.run(git, cwd=ROOT, capture_output=True, text=True, env=env).stdout.strip()


def write(path: Path, text: str) -> None:
    print(f"\n{text}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
