"""The demo's settings plus the benchmark's URLs (a trivial view as the baseline).

Everything else (database, Redis cache, middleware, DRF) is exactly the demo's, so the trivial view
and the polling endpoint pay the same server, middleware and thread-hop costs.
"""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
