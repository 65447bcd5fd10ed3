"""The benchmarks' settings: the demo's, ``/bench/trivial/``, and from the environment a channel
layer prefix of the run's own (Redis pub/sub channels ignore database numbers: other runs would
hear the pushes), ``GC_FREEZE_SECONDS``, and the cache timing its calls (``bench.lib.timing``).
"""

import os

from project.settings import *  # noqa: F403
from project.settings import CHANNEL_LAYERS

ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_LAYER_PREFIX") and "CONFIG" in CHANNEL_LAYERS["default"]:
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = os.environ["BENCH_LAYER_PREFIX"]
NOTIFICATIONS = {"GC_FREEZE_SECONDS": float(os.environ.get("BENCH_GC_FREEZE_SECONDS", "0"))}
if os.environ.get("BENCH_TIMED_CACHE") and os.environ.get("REDIS_URL"):
    CACHES["default"]["BACKEND"] = "bench.lib.timing.TimedRedisCache"  # noqa: F405
