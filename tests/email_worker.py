"""A management command in a process of its own, as a worker on another machine runs it, sending
to the test's mail server (tests/test_email_delivery.py starts these):

    python -m tests.email_worker send_email_digests
    python -m tests.email_worker db_worker --batch

The environment carries the rest, as for the daphne processes of the end-to-end tests:
``DJANGO_SETTINGS_MODULE``, ``DATABASE_URL`` (the test database) and ``TEST_NOTIFICATIONS``;
``TEST_EMAIL_PORT`` is the mail server's port on 127.0.0.1, and ``TEST_START_AT`` (a
``time.time()``) when to begin, so that workers started together also claim together.
"""

from __future__ import annotations

import os
import sys
import time

import django
from django.conf import settings
from django.core.management import execute_from_command_line


def main() -> None:
    django.setup()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = int(os.environ["TEST_EMAIL_PORT"])
    settings.EMAIL_TIMEOUT = 10
    # Django is loaded by now: what is left until the start is the same for every worker.
    time.sleep(max(float(os.environ.get("TEST_START_AT") or 0) - time.time(), 0))
    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
