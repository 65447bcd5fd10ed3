"""Profiling: py-spy on a running process, and its stacks summed up into where the time went."""

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from bench.lib.processes import BIN, ROOT, BenchError


@contextlib.asynccontextmanager
async def sampled(targets: Sequence[tuple], seconds: float, rate: int = 200) -> AsyncIterator[None]:
    """py-spy on each ``(pid, raw output, its flags)`` for ``seconds``, while the block runs (at
    least that long); raw stacks in the collapsed format, for speedscope or flamegraph.pl."""
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        raise BenchError(f"py-spy is missing: {BIN / 'pip'} install py-spy")
    spies = []
    for pid, raw, mode in targets:
        command = f"record --pid {pid} --duration {int(seconds)} --rate {rate} --format raw"
        command += f" --threads {mode} -o {raw}"
        spies.append(await asyncio.create_subprocess_exec(str(py_spy), *command.split()))
    try:
        await asyncio.sleep(0.5)  # py-spy attaches
        yield
        async with asyncio.timeout(seconds + 60):
            for spy in spies:
                if await spy.wait():
                    raise BenchError(f"py-spy failed ({spy.returncode})")
    finally:
        for spy in spies:
            if spy.returncode is None:
                spy.kill()
                await spy.wait()


def summarise(raw: Path, key_frames: Sequence[tuple], threads: Callable | None = None) -> str:
    """Shares of the samples by thread; of those ``threads`` accepts, ``key_frames``: a
    ``(label, function, fragment)`` counts a sample with that function (a regular expression
    on its name or last part; "": any) in a file whose path holds ``fragment``; then where the
    leaf frames are, and the functions with most inclusive and self time."""
    thread_of: Counter[str] = Counter()
    keys, place, inclusive, leaf = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        parts = stack.split(";")
        # py-spy: "thread (0x7F01ABCD): ThreadPoolExecutor-56_0", then "function (file:line)"
        thread = next((p.partition(": ")[2] for p in parts if p.startswith("thread (")), "?")
        frames = [re.match(r"(.*) \((.*?)(?::\d+)?\)$", p) for p in parts if p[:7] != "thread "]
        located = [("/" + f[2], f[1]) for f in frames if f]
        if not count.isdigit() or not located:
            continue
        thread_of[re.sub(r"\d+", "N", thread)] += int(count)
        if threads is not None and not threads(re.sub(r"\d+", "N", thread)):
            continue
        labels = [f"{name} ({_short(path)})" for path, name in located]
        for label, function, fragment in key_frames:
            if any(fragment in path and _is(name, function) for path, name in located):
                keys[label] += int(count)
        where = _short(located[-1][0]).split("/")  # the leaf's package (Django's: and module)
        place["/".join(where[: 2 if where[0] == "django" else 1])] += int(count)
        leaf[labels[-1]] += int(count)
        inclusive.update(dict.fromkeys(set(labels), int(count)))
    samples, total = sum(place.values()), sum(thread_of.values())
    if not samples:
        return "(no samples)\n"

    def shares(counts: Sequence[tuple[str, int]], of: int = samples) -> list[str]:
        return [f"- {100 * n / of:5.1f} %  {what}" for what, n in counts]

    out = [f"{total} samples in all; by thread (N: any number):", ""]
    out += shares(thread_of.most_common(8), total)
    if threads is not None:
        out += ["", f"Of the {samples} samples of the threads summarised below:"]
    out += ["", "Key costs (inclusive: a sample counts for every row with a frame on its stack):"]
    out += ["", *shares([(label, keys[label]) for label, _, _ in key_frames])]
    out += ["", "Self time by the leaf frame's package:", "", *shares(place.most_common(15))]
    out += ["", "Top 25 functions by inclusive time:", "", *shares(inclusive.most_common(25))]
    out += ["", "Top 15 functions by self time:", "", *shares(leaf.most_common(15))]
    return "\n".join(out) + "\n"


def _short(path: str) -> str:
    for marker in ("site-packages/", "/python3.11/", f"{ROOT}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.lstrip("/")


def _is(name: str, pattern: str) -> bool:
    last = name.rpartition(".")[2]
    return not pattern or bool(re.fullmatch(pattern, name) or re.fullmatch(pattern, last))
