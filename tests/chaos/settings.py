"""Settings of the chaos test's server and sender processes: the test settings, with the channel
layer and the cache on the test's private Redis servers, and time and size limits shrunk so that
a run of a minute exercises them.

Environment: ``CHAOS_LAYER_URL`` (the channel layer's Redis), ``CHAOS_CACHE_URL`` (the cache's
Redis), ``DATABASE_URL`` (the test database).
"""

import copy
import os

from notifications.conf import DEFAULTS
from tests import settings as base
from tests.settings import *  # noqa: F403

LAYER_URL = os.environ.get("CHAOS_LAYER_URL", "redis://127.0.0.1:6379/0")
CACHE_URL = os.environ.get("CHAOS_CACHE_URL", LAYER_URL)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": LAYER_URL}]},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "OPTIONS": {"pool_class": "notifications.cache.SharedConnectionPool"},
    }
}

# Three servers and several senders share PostgreSQL with the rest of the machine.
DATABASES = copy.deepcopy(base.DATABASES)
if "pool" in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["OPTIONS"]["pool"]["max_size"] = 4

CHAOS_NOTIFICATIONS = {
    # Small pages, so that a client that was away a few seconds pages its backlog.
    "BACKLOG_LIMIT": 20,
    # Longer than the senders' longest transaction (2.5 s). Short, so that the senders'
    # background traffic stays under BACKLOG_LIMIT rows per user and margin, and the bursts
    # (three times BACKLOG_LIMIT inside the margin) go over it.
    "RESUME_MARGIN_SECONDS": 10,
    # Small enough that sockets the chaos leaks show, large enough for a user's three clients,
    # their reconnects and the ghosts of one killed server.
    "MAX_SOCKETS_PER_USER": 8,
    # Gap detection (issue 12), once the app has the setting.
    "GAP_CHECK_SECONDS": 2,
}
NOTIFICATIONS = {name: value for name, value in CHAOS_NOTIFICATIONS.items() if name in DEFAULTS}

# Timestamps and process ids on the app's log lines, to line them up with the test's fault log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "stamped": {"format": "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "stamped"}},
    "loggers": {
        "notifications": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
