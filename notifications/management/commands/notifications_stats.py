import json

from django.core.management.base import BaseCommand

from notifications.realtime.presence import LocalRegistry, registry


class Command(BaseCommand):
    help = (
        "Print the app's counters (connects, auth failures, pushes, resumes, drops) and the "
        "number of open sockets, across every process sharing the Redis cache."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        current = registry()
        stats = current.snapshot()
        if options["json"]:
            self.stdout.write(json.dumps(stats, sort_keys=True))
            return
        if isinstance(current, LocalRegistry):
            self.stderr.write(
                "The cache is not Redis: these are this process's figures only (zero). Point "
                "CACHES at Redis (REDIS_URL in the demo) to see every process's."
            )
        width = max(map(len, stats))
        for name, value in stats.items():
            self.stdout.write(f"{name:<{width}}  {value}")
