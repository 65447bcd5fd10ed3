"""A user model without ``is_active``: ticket login, ``notify(group)``, the admin's send to
everyone and ``manage.py notify --all`` all work with it (``notifications.users.active_users``).

The model must be ``AUTH_USER_MODEL`` before Django starts, so its tests
(``tests/custom_user/suite.py``) run in a pytest of their own, on the same database server and
Redis as this run, with a test database of their own.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_user_model_without_is_active_works_everywhere():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--ds",
            "tests.custom_user.settings",
            "tests/custom_user/suite.py",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
