"""The app's settings: one object over ``settings.NOTIFICATIONS``, read afresh on every access.

Reading ``django.conf.settings`` each time (not caching) keeps ``override_settings`` working.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings

# Settings for which 0 means "off" rather than a mistake.
ZERO_MEANS_OFF = frozenset({"MAX_SOCKETS_PER_USER", "IDLE_TIMEOUT_SECONDS", "GC_FREEZE_SECONDS"})

DEFAULTS: dict[str, Any] = {
    # preferences: categories users may not mute (security notices, say)
    "UNMUTABLE_CATEGORIES": [],
    # retention: prune_notifications deletes what is older than this many days; None: keep all
    "RETENTION_DAYS": None,
    # REST API
    "PAGE_SIZE": 20,
    "MAX_PAGE_SIZE": 100,
    # resume / backlog
    "BACKLOG_LIMIT": 100,
    # Ids come from a sequence, but transactions commit in their own order: a row can become
    # visible after a newer one was already shown. Resume reaches back this far (measured from the
    # client's last id) so such a row is not skipped. It must exceed the longest transaction that
    # sends a notification.
    "RESUME_MARGIN_SECONDS": 60,
    # polling: clients wait this many seconds between unread-count requests (X-Poll-Interval)
    "POLL_INTERVAL_SECONDS": 15,
    # WebSocket tickets for clients without cookies
    "TICKET_TTL_SECONDS": 30,
    # REST rate limits per user, shared by every process through the cache: "N/second|minute|
    # hour|day", or None for no limit; a dict here replaces only the scopes it names
    "THROTTLE_RATES": {"ticket": "30/minute", "write": "120/minute"},
    # the cache holding per-user versions (ETags) and tickets; must be shared by all processes
    "CACHE_ALIAS": "default",
    # the origins allowed to open a WebSocket with the session cookie, exactly ("https://host"
    # or "https://host:port"); None: any host of ALLOWED_HOSTS with the socket's own scheme and
    # port (see realtime/origins.py)
    "WEBSOCKET_ORIGINS": None,
    # WebSocket limits
    "MAX_SOCKETS_PER_USER": 20,  # 0: no limit
    "SOCKET_STALE_SECONDS": 180,  # a socket not heard of this long no longer counts
    "IDLE_TIMEOUT_SECONDS": 0,  # close sockets whose client sent nothing this long; 0: never
    "MAX_MESSAGE_BYTES": 4096,
    "MESSAGES_PER_SECOND": 10,
    "MESSAGE_BURST": 20,
    "MAX_IDS_PER_MESSAGE": 500,
    # notify()
    "MAX_BODY_CHARS": 10000,
    "MAX_DATA_BYTES": 16384,
    # a send to more users than this replaces one shared version token, not one per user
    "SHARED_BUMP_ABOVE": 1000,
    # how often each process checks that its channel layer delivers (see realtime/watchdog.py)
    "LAYER_CHECK_SECONDS": 1,
    # a notification whose push was lost reaches its user's open sockets within this long
    # (see realtime/gaps.py): each process checks the table twice per period
    "GAP_CHECK_SECONDS": 30,
    # every socket's session or token is checked again this often, for what no signal tells
    # (a session expired or flushed by other code); see realtime/credential_checks.py
    "CREDENTIALS_CHECK_SECONDS": 60,
    # processes holding sockets: freeze long-lived objects out of the garbage collector's reach
    # this often (0: off), and thaw them for one full collection this often (see gcfreeze.py)
    "GC_FREEZE_SECONDS": 0,
    "GC_THAW_SECONDS": 900,
    # push: how many group sends run concurrently while a batch fans out
    "PUSH_CONCURRENCY": 100,
    # the most a sender waits for Redis after its commit: version bump, who is online and the
    # pushes together (see realtime/budget.py); what is cut is logged, and clients catch up
    "PUSH_TIMEOUT_SECONDS": 1,
    # metrics (api/notifications/metrics/): the bearer token a scraper sends; None: staff only
    "METRICS_TOKEN": None,
    # admin: a send to more recipients than this asks for confirmation first
    "SEND_CONFIRM_ABOVE": 1000,
}


class Settings:
    """Typed access to ``settings.NOTIFICATIONS`` over :data:`DEFAULTS`."""

    def _get(self, name: str) -> Any:
        overrides = getattr(django_settings, "NOTIFICATIONS", {}) or {}
        return overrides.get(name, DEFAULTS[name])

    @property
    def UNMUTABLE_CATEGORIES(self) -> list[str]:
        return list(self._get("UNMUTABLE_CATEGORIES"))

    @property
    def RETENTION_DAYS(self) -> int | None:
        return self._get("RETENTION_DAYS")

    @property
    def PAGE_SIZE(self) -> int:
        return self._get("PAGE_SIZE")

    @property
    def MAX_PAGE_SIZE(self) -> int:
        return self._get("MAX_PAGE_SIZE")

    @property
    def BACKLOG_LIMIT(self) -> int:
        return self._get("BACKLOG_LIMIT")

    @property
    def RESUME_MARGIN(self) -> timedelta:
        return timedelta(seconds=self._get("RESUME_MARGIN_SECONDS"))

    @property
    def POLL_INTERVAL_SECONDS(self) -> int:
        return self._get("POLL_INTERVAL_SECONDS")

    @property
    def TICKET_TTL_SECONDS(self) -> int:
        return self._get("TICKET_TTL_SECONDS")

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:
        return {**DEFAULTS["THROTTLE_RATES"], **(self._get("THROTTLE_RATES") or {})}

    @property
    def CACHE_ALIAS(self) -> str:
        return self._get("CACHE_ALIAS")

    @property
    def WEBSOCKET_ORIGINS(self) -> list[str] | None:
        origins = self._get("WEBSOCKET_ORIGINS")
        return None if origins is None else list(origins)

    @property
    def MAX_SOCKETS_PER_USER(self) -> int:
        return self._get("MAX_SOCKETS_PER_USER")

    @property
    def SOCKET_STALE_SECONDS(self) -> float:
        return self._get("SOCKET_STALE_SECONDS")

    @property
    def IDLE_TIMEOUT_SECONDS(self) -> float:
        return self._get("IDLE_TIMEOUT_SECONDS")

    @property
    def MAX_MESSAGE_BYTES(self) -> int:
        return self._get("MAX_MESSAGE_BYTES")

    @property
    def MESSAGES_PER_SECOND(self) -> float:
        return self._get("MESSAGES_PER_SECOND")

    @property
    def MESSAGE_BURST(self) -> int:
        return self._get("MESSAGE_BURST")

    @property
    def MAX_IDS_PER_MESSAGE(self) -> int:
        return self._get("MAX_IDS_PER_MESSAGE")

    @property
    def MAX_BODY_CHARS(self) -> int:
        return self._get("MAX_BODY_CHARS")

    @property
    def MAX_DATA_BYTES(self) -> int:
        return self._get("MAX_DATA_BYTES")

    @property
    def SHARED_BUMP_ABOVE(self) -> int:
        return self._get("SHARED_BUMP_ABOVE")

    @property
    def LAYER_CHECK_SECONDS(self) -> float:
        return self._get("LAYER_CHECK_SECONDS")

    @property
    def GAP_CHECK_SECONDS(self) -> float:
        return self._get("GAP_CHECK_SECONDS")

    @property
    def CREDENTIALS_CHECK_SECONDS(self) -> float:
        return self._get("CREDENTIALS_CHECK_SECONDS")

    @property
    def GC_FREEZE_SECONDS(self) -> float:
        return self._get("GC_FREEZE_SECONDS")

    @property
    def GC_THAW_SECONDS(self) -> float:
        return self._get("GC_THAW_SECONDS")

    @property
    def PUSH_CONCURRENCY(self) -> int:
        return self._get("PUSH_CONCURRENCY")

    @property
    def PUSH_TIMEOUT_SECONDS(self) -> float:
        return self._get("PUSH_TIMEOUT_SECONDS")

    @property
    def METRICS_TOKEN(self) -> str | None:
        return self._get("METRICS_TOKEN")

    @property
    def SEND_CONFIRM_ABOVE(self) -> int:
        return self._get("SEND_CONFIRM_ABOVE")


app_settings = Settings()
