"""Settings of the WebSocket benchmark's daphne and sender: the polling benchmark's settings (the
demo's, unchanged) with a channel-layer prefix of this run's own.

Redis pub/sub channels are not scoped by database number: without a prefix of its own, another
benchmark's daphne on the same Redis would hear this run's pushes (and spend CPU on them). The
prefix comes from ``WSBENCH_LAYER_PREFIX``, which ``bench.websocket`` sets for every process it
starts, so that daphne and the sender agree on it; ``GC_FREEZE_SECONDS`` from
``WSBENCH_GC_FREEZE_SECONDS`` (``--gc-freeze``).
"""

import os

from bench.settings import *  # noqa: F403
from bench.settings import CHANNEL_LAYERS

_prefix = os.environ.get("WSBENCH_LAYER_PREFIX")
if _prefix and "CONFIG" in CHANNEL_LAYERS["default"]:
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = _prefix

# The garbage collector's setting for processes holding many sockets (docs/deployment.md).
NOTIFICATIONS = {"GC_FREEZE_SECONDS": float(os.environ.get("WSBENCH_GC_FREEZE_SECONDS", "0"))}
