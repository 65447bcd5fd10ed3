"""The test settings with ``custom_user.Member`` (no ``is_active`` field) as the user model, on a
test database of its own (the main run's may be open at the same time)."""

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.custom_user"]
AUTH_USER_MODEL = "custom_user.Member"

_test = DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _test["NAME"] = _test["NAME"].replace("test_", "test_custom_user_", 1)
else:
    _test["NAME"] = f"test_{DATABASES['default']['NAME']}_custom_user"
