"""The demo's ASGI application (``project.asgi``), able to dump a tracemalloc snapshot on demand.

``bench.socket_memory`` serves it with daphne or uvicorn under ``PYTHONTRACEMALLOC``: on SIGUSR1
the main thread (the server's, where either imports this module) collects garbage, then dumps a
snapshot to ``$BENCH_SNAPSHOT_DIR/snapshot-<n>.pickle`` (n counting from 0) and, last, writes
``snapshot-<n>.json`` with tracemalloc's traced size: its appearance says the dump is complete.
"""

import gc
import json
import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

from project.asgi import application

__all__ = ["application"]
_dumped = 0


def dump(signum: int, frame: FrameType | None) -> None:
    global _dumped
    folder = Path(os.environ["BENCH_SNAPSHOT_DIR"])
    stem, _dumped = folder / f"snapshot-{_dumped}", _dumped + 1
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0]
    snapshot = tracemalloc.take_snapshot()
    snapshot.dump(str(stem.with_suffix(".pickle")))
    overhead = tracemalloc.get_tracemalloc_memory()
    stem.with_suffix(".tmp").write_text(json.dumps({"traced": traced, "overhead": overhead}))
    stem.with_suffix(".tmp").rename(stem.with_suffix(".json"))


if tracemalloc.is_tracing() and os.environ.get("BENCH_SNAPSHOT_DIR"):
    signal.signal(signal.SIGUSR1, dump)
