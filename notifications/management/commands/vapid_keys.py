"""Make the server's VAPID key pair for Web Push and print the settings that use it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...push import keys


class Command(BaseCommand):
    help = (
        "Generate a VAPID key pair (P-256) for Web Push and print the NOTIFICATIONS settings "
        "to paste, or the environment variables to set. Generating a new pair invalidates every "
        "browser subscribed with the old one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--subject",
            default="mailto:admin@example.com",
            help="how push services reach you: mailto:you@example.com or https://your.site",
        )
        parser.add_argument(
            "--format",
            choices=["settings", "env"],
            default="settings",
            help="settings: lines for NOTIFICATIONS; env: KEY=value lines for the environment",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        subject = options["subject"]
        if not keys.is_subject(subject):
            raise CommandError(
                f"--subject {subject!r} is neither a mailto: address nor an https:// origin"
            )
        public, private = keys.generate()
        values = {
            "WEB_PUSH_VAPID_PUBLIC_KEY": public,
            "WEB_PUSH_VAPID_PRIVATE_KEY": private,
            "WEB_PUSH_VAPID_SUBJECT": subject,
        }
        if options["format"] == "env":
            for key, value in values.items():
                self.stdout.write(f"{key}={value}")
            return
        self.stdout.write(
            "# In settings.NOTIFICATIONS. Keep the private key out of the repository: read it "
            "from the environment."
        )
        self.stdout.write('"WEB_PUSH": True,')
        for key, value in values.items():
            self.stdout.write(f"{json.dumps(key)}: {json.dumps(value)},")
