"""Test settings: the demo's, with a file-backed SQLite test database by default (daphne in the
end-to-end tests must see the same database as the test process), and the run's own prefix on
every Redis key (tests/redis_keys.py)."""

import json
import os
from pathlib import Path

from project.settings import *  # noqa: F403
from project.settings import CHANNEL_LAYERS, DATABASES
from tests.redis_keys import prefixed

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not Django's in-memory default), named after the database: test_db.sqlite3.
    name = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(name.with_name(f"test_{name.name}"))}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECRET_KEY = "tests-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"

# The app's defaults, not the demo's (which emails digests): a test that wants emails opts in.
# The daphne processes of the end-to-end tests take NOTIFICATIONS from the environment.
NOTIFICATIONS = json.loads(os.environ.get("TEST_NOTIFICATIONS") or "{}")
# Never the demo's folder of sent emails in the checkout (the test process uses locmem anyway;
# this is for the servers it starts).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# With REDIS_URL, every key in Redis starts with the run's prefix (tests/redis_keys.py).
prefixed(globals().get("CACHES", {}), CHANNEL_LAYERS)
