"""The app's settings: every key of ``settings.NOTIFICATIONS`` declared once, on :class:`Settings`.

A declaration (:class:`Setting`) holds the key's default, the rule its value must follow, and
the line that explains it in docs/settings.md. From it ``app_settings.X`` reads the value,
checks.py validates what a project sets, and tests/test_conf.py holds docs/settings.md's tables
to it. A value is read from ``django.conf.settings`` on every access, never cached, so that
``override_settings`` works.

Settings are what a deploying user decides. Internal tuning is a constant next to the code it
tunes; keys that were settings once are listed in :data:`REMOVED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.http.request import split_domain_port

T = TypeVar("T")

# What a value must be, when it is not that ("a positive number"); None when it is fine.
Rule = Callable[[Any], str | None]

# The tables of docs/settings.md, in their order there.
API = "Inbox and REST API"
SENDING = "Sending"
RESUME = "Resume"
SOCKETS = "WebSocket limits"
PROCESSES = "Processes and Redis"
EMAIL = "Email"
PUSH = "Web Push"
FOLLOWING = "Following"


def positive(*, whole: bool = False, zero_means_off: bool = False) -> Rule:
    what = "a positive whole number" if whole else "a positive number"
    if zero_means_off:
        what += ", or 0 for off"
    kinds = int if whole else (int, float)

    def rule(value: Any) -> str | None:
        ok = (
            isinstance(value, kinds)
            and not isinstance(value, bool)
            and (value > 0 or (zero_means_off and value == 0))
        )
        return None if ok else what

    return rule


def optional(rule: Rule) -> Rule:
    """None, or what ``rule`` accepts."""

    def optional_rule(value: Any) -> str | None:
        problem = None if value is None else rule(value)
        return None if problem is None else f"None or {problem}"

    return optional_rule


# --- what a rate and an origin are: read by the checks here, by the throttle and the Origin check

SCOPES = ("ticket", "write")
_RATE = re.compile(r"^([0-9]+)/(s|sec|second|m|min|minute|h|hour|d|day)\Z")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: Any) -> tuple[int, int] | None:
    """``"30/minute"`` -> (30, 60); None for no limit. Raises ``ValueError`` for anything else."""
    if rate is None:
        return None
    match = _RATE.match(rate) if isinstance(rate, str) else None
    if match is None:
        raise ValueError(
            f"{rate!r} is not a rate: use None or 'N/second', 'N/minute', 'N/hour' or 'N/day'"
        )
    return int(match.group(1)), _SECONDS[match.group(2)[0]]


_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # (scheme, host, port): ("https", "example.com", 443)


def parse_origin(value: str) -> Origin | None:
    """An ``Origin`` value (or a setting's entry) as (scheme, host, port); None unless it is
    exactly ``http(s)://host[:port]``."""
    try:
        parts = urlsplit(value)
        explicit_port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.netloc
        or "@" in parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
        or "?" in value
        or "#" in value
    ):
        return None
    host, _ = split_domain_port(parts.netloc)
    if not host:
        return None
    return scheme, host, _DEFAULT_PORTS[scheme] if explicit_port is None else explicit_port


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def base_url(value: Any) -> str | None:
    ok = isinstance(value, str) and (value == "" or _is_site_url(value))
    return None if ok else "an http(s) URL such as 'https://example.com' (or '' for none)"


def _is_site_url(value: str) -> bool:
    """``http(s)://host[:port][/path]``: no credentials, query or fragment."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises for a port that is no number)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
        and "?" not in value
        and "#" not in value
    )


def string(value: Any) -> str | None:
    """Only the type: what a VAPID key or subject must be, push/keys.py checks
    (notifications.E012), where the reason can be told."""
    return None if isinstance(value, str) else "a string"


def push_hosts(value: Any) -> str | None:
    ok = isinstance(value, list | tuple) and all(
        isinstance(v, str) and (v == "*" or re.fullmatch(r"[a-z0-9.-]+", v)) for v in value
    )
    return None if ok else "a list of host names in lower case (or '*' for any host)"


def level_map(rule: Rule) -> Rule:
    """A dict from levels to what ``rule`` accepts; levels left out keep their default."""

    def map_rule(value: Any) -> str | None:
        from .models import Level

        if not isinstance(value, dict) or any(key not in Level.values for key in value):
            return f"a dict whose keys are among {', '.join(Level.values)}"
        for item in value.values():
            problem = rule(item)
            if problem:
                return f"a dict of levels to {problem}"
        return None

    return map_rule


URGENCIES = ("very-low", "low", "normal", "high")


def urgency(value: Any) -> str | None:
    return None if value in URGENCIES else f"one of {', '.join(URGENCIES)}"


def dotted_path(value: Any) -> str | None:
    ok = value is None or isinstance(value, str) and re.fullmatch(r"[\w.]+\.\w+", value)
    return None if ok else "None or the dotted path of a callable"


def model_labels(value: Any) -> str | None:
    ok = isinstance(value, list | tuple) and all(
        isinstance(v, str) and re.fullmatch(r"\w+\.\w+", v) for v in value
    )
    return None if ok else "a list of model labels such as 'docs.document'"


def site_path(value: Any) -> str | None:
    ok = isinstance(value, str) and value.startswith("/") and not value.startswith("//")
    return None if ok else "a path on the site, starting with a single /"


def levels(value: Any) -> str | None:
    from .models import Level  # the models read these settings: import when checked

    ok = isinstance(value, list | tuple) and all(level in Level.values for level in value)
    return None if ok else f"a list of levels among {', '.join(Level.values)}"


def text(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string"


def texts(value: Any) -> str | None:
    ok = isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)
    return None if ok else "a list of non-empty strings"


def secret(value: Any) -> str | None:
    return (
        None
        if isinstance(value, str) and len(value) >= 16
        else "a string of at least 16 characters"
    )


def origins(value: Any) -> str | None:
    ok = isinstance(value, list | tuple) and all(
        isinstance(v, str) and parse_origin(v) is not None for v in value
    )
    return None if ok else "a list of origins such as 'https://example.com:8443'"


def rates(value: Any) -> str | None:
    if not isinstance(value, dict) or any(scope not in SCOPES for scope in value):
        return f"a dict whose keys are among {', '.join(map(repr, SCOPES))}"
    try:
        for rate in value.values():
            parse_rate(rate)
    except ValueError:
        return "a dict of rates: None or 'N/second', 'N/minute', 'N/hour' or 'N/day'"
    return None


def _as_is(value: Any) -> Any:
    return value


class Setting(Generic[T]):
    """One key of ``settings.NOTIFICATIONS``, declared as an attribute of :class:`Settings`.

    ``default`` is the value as a project would write it, ``rule`` says what a project may write,
    ``doc`` is the key's row in the ``section`` table of docs/settings.md. ``convert`` turns the
    value into what the attribute gives (seconds into a ``timedelta``, say); ``key`` is the
    dict's key when it differs from the attribute's name.
    """

    def __init__(
        self,
        default: Any,
        rule: Rule,
        section: str,
        doc: str,
        *,
        key: str | None = None,
        convert: Callable[[Any], T] = _as_is,
    ) -> None:
        self.default = default
        self.rule = rule
        self.section = section
        self.doc = doc
        self.key = key or ""
        self.convert = convert

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = self.key or name

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...

    @overload
    def __get__(self, instance: Settings, owner: type) -> T: ...

    def __get__(self, instance: Settings | None, owner: type) -> Setting[T] | T:
        if instance is None:
            return self
        overrides = getattr(django_settings, "NOTIFICATIONS", None) or {}
        return self.convert(overrides.get(self.key, self.default))


_RATES = {"ticket": "30/minute", "write": "120/minute"}
_URGENCY = {"info": "low", "success": "low", "warning": "normal", "error": "high"}
_TTL = {"info": 43200, "success": 43200, "warning": 86400, "error": 86400}


class Settings:
    """Typed access to ``settings.NOTIFICATIONS``: one :class:`Setting` per key."""

    PAGE_SIZE = Setting[int](
        20, positive(whole=True), API, "notifications in one page of `GET /api/notifications/`"
    )
    MAX_PAGE_SIZE = Setting[int](
        100, positive(whole=True), API, "the most a client may ask for with `?page_size=`"
    )
    POLL_INTERVAL_SECONDS = Setting[float](
        15,
        positive(),
        API,
        "sent as `X-Poll-Interval`: how long a polling client (the widget without a WebSocket) "
        "waits between two unread-count requests",
    )
    UNMUTABLE_CATEGORIES = Setting[list[str]](
        [],
        texts,
        API,
        "categories users may not mute (security notices, say): muting one through the "
        "preferences API is a 400, and a send in such a category reaches every recipient: no "
        "mute applies to it, neither of the category (recorded before it became unmutable) nor "
        "of its level",
        convert=list,
    )
    THROTTLE_RATES = Setting[dict[str, str | None]](
        _RATES,
        rates,
        API,
        "rate limits per user on the REST API: `ticket` for `POST ws-ticket/`, `write` for every "
        "`POST`, `PUT` and `DELETE` (reads are not limited: the poll interval paces them). "
        '`"N/second"`, `"N/minute"`, `"N/hour"` or `"N/day"`; `None` lifts a limit; a dict here '
        "replaces only the scopes it names. Over the limit: `429` with `Retry-After` "
        "([api.md](api.md#rate-limits)). Counted in the `CACHE_ALIAS` cache, so Redis makes it "
        "one count across every process",
        convert=lambda value: {**_RATES, **(value or {})},
    )
    RETENTION_DAYS = Setting[int | None](
        None,
        optional(positive(whole=True)),
        API,
        "how old a notification must be for `manage.py prune_notifications` (without "
        "`--older-than`) to delete it; `None` keeps everything",
    )

    MAX_BODY_CHARS = Setting[int](
        10000,
        positive(whole=True),
        SENDING,
        "the longest `body` `notify()` accepts, in characters; longer raises `ValueError` naming "
        "`body` (the admin's send page shows it on the field). It bounds what one notification "
        "weighs in the table, the REST list and every pushed frame",
    )
    MAX_DATA_BYTES = Setting[int](
        16384,
        positive(whole=True),
        SENDING,
        "the largest `data` dict `notify()` accepts, measured as JSON; larger raises `ValueError`",
    )
    MAX_IDS_PER_MESSAGE = Setting[int](
        500,
        positive(whole=True),
        SENDING,
        "the most ids in one `mark_read`/`mark_unread` message or one call of the state-changing "
        "services; the admin's actions work in chunks of this size",
    )
    SEND_CONFIRM_ABOVE = Setting[int](
        1000,
        positive(whole=True),
        SENDING,
        "the admin's send page asks for confirmation before sending to more users than this "
        "([admin.md](admin.md))",
    )

    BACKLOG_LIMIT = Setting[int](
        100,
        positive(whole=True),
        RESUME,
        "the most notifications in one `backlog` answer to `resume`; beyond, `complete` is "
        "`false` and the client resumes again (or pages the REST API)",
    )
    RESUME_MARGIN = Setting[timedelta](
        60,
        positive(),
        RESUME,
        "how far before the client's last id a resume reaches back, measured on the database's "
        "own clock (`inserted_at`). Ids come from a sequence but transactions commit in their "
        "own order, so a row can become visible after a newer one was shown; the margin catches "
        "it (the client drops duplicates by id, and pages with `cursor`). It must exceed your "
        "longest transaction that sends a notification. Gap detection uses the same margin",
        key="RESUME_MARGIN_SECONDS",
        convert=lambda seconds: timedelta(seconds=seconds),
    )

    WEBSOCKET_ORIGINS = Setting[list[str] | None](
        None,
        optional(origins),
        SOCKETS,
        "the origins allowed to open a WebSocket with the session cookie, exactly: "
        '`["https://example.com", "https://app.example.com:8443"]` (scheme, host and port; the '
        "scheme's default port may be left out). `None`: any host of `ALLOWED_HOSTS`, with the "
        "socket's own scheme and port ([security.md](security.md#origins)). Ticket sockets need "
        "no origin",
        convert=lambda value: None if value is None else list(value),
    )
    MAX_SOCKETS_PER_USER = Setting[int](
        20,
        positive(whole=True, zero_means_off=True),
        SOCKETS,
        "open sockets one user may hold across all processes; one more is closed with 4409. "
        "`0`: no limit. The sockets of a process that died stop counting within 15 s",
    )
    IDLE_TIMEOUT_SECONDS = Setting[float](
        0,
        positive(zero_means_off=True),
        SOCKETS,
        "close a socket whose client sent nothing for this long, with 4408. `0`: never. The "
        "widget pings while it is open, so it is never idle",
    )
    MAX_MESSAGE_BYTES = Setting[int](
        4096,
        positive(whole=True),
        SOCKETS,
        "a larger client message closes the socket with 4413",
    )
    MESSAGES_PER_SECOND = Setting[float](
        10, positive(), SOCKETS, "client messages allowed per second on one socket, on average..."
    )
    MESSAGE_BURST = Setting[int](
        20,
        positive(whole=True),
        SOCKETS,
        "...and in a burst; beyond, the socket is closed with 4429",
    )
    TICKET_TTL_SECONDS = Setting[float](
        30,
        positive(),
        SOCKETS,
        "how long a ticket from `POST /api/notifications/ws-ticket/` stays valid (it is "
        "single-use)",
    )

    CACHE_ALIAS = Setting[str](
        "default",
        text,
        PROCESSES,
        "the cache (a key of `CACHES`) holding tickets, the per-user versions behind the `ETag`, "
        "and, when it is a Redis cache (Django's `RedisCache` or django-redis's, Sentinel "
        "included), the open-socket registry and counters that every process shares. With more "
        "than one process it must be shared by all of them: Redis "
        "([deployment.md](deployment.md)); any other cache keeps the registry per process, and "
        "system check W006 says so",
    )
    GAP_CHECK_SECONDS = Setting[float](
        30,
        positive(),
        PROCESSES,
        "a notification whose push was lost (or that another program wrote) reaches its user's "
        'open sockets within this long, as a `notification` frame with `"recovered": true`. '
        "Each process checks the table for its connected users twice per period, in two queries "
        "whatever the number of sockets ([realtime.md](realtime.md))",
    )
    CREDENTIALS_CHECK_SECONDS = Setting[float](
        60,
        positive(),
        PROCESSES,
        "how often each process checks every socket's session or token again, in a few queries "
        "whatever their number, for what no signal tells: a session that expired or was flushed "
        "by other code, a user changed behind the ORM's back. Sign-outs, user changes, token "
        "deletions and logins replacing a session are told at once "
        "([security.md](security.md#the-life-of-a-socket-after-its-credentials-change))",
    )
    GC_FREEZE_SECONDS = Setting[float](
        0,
        positive(zero_means_off=True),
        PROCESSES,
        "off (0), or: in a process holding sockets (daphne), move every live object into the "
        "garbage collector's permanent generation this often (`gc.freeze()`), so that full "
        "collections stop traversing the long-lived consumers and connections. At 5,000 sockets "
        "a full collection otherwise pauses every socket of the process for about a second, "
        "several times per burst of pushes. `10` suits a process holding thousands of sockets "
        "(`gc.freeze()` itself costs next to nothing). Every 15 minutes such a process unfreezes "
        "for one full collection (one pause), to reclaim what was frozen and has since become "
        "garbage; see [performance.md](performance.md)",
    )
    PUSH_TIMEOUT_SECONDS = Setting[float](
        1,
        positive(),
        PROCESSES,
        "the most a sender waits for Redis after its commit, for the version bump, who is online "
        "and the pushes together (the counts query between them is the database's and not "
        "counted). A Redis that accepts connections but never answers costs each `notify()` "
        "this much, not more; what was given up is named in one warning (logger "
        "`notifications.push`), and clients catch up from the database. The process's "
        "push loop is replaced when its thread is gone, its event loop stopped, or a job given "
        "to it did not even start while its sender waited (and the jobs it had not started go "
        "out from the new loop). A push that outlasts it (publishing 10,000 pushes took 0.5 s "
        "here, 50,000 took 3.5 s) is not cut off: the sender stops waiting and the push finishes "
        "in the background, within 10 s at most",
    )
    METRICS_TOKEN = Setting[str | None](
        None,
        optional(secret),
        PROCESSES,
        "the bearer token a Prometheus scraper sends to `api/notifications/metrics/` "
        "(`Authorization: Bearer ...`, at least 16 characters); `None`: only signed-in staff "
        "users may read the metrics ([deployment.md](deployment.md#observing-it))",
    )

    EMAIL_DIGESTS = Setting[bool](
        False,
        boolean,
        EMAIL,
        "email what users have not seen ([email.md](email.md)): needs `BASE_URL`, a `TASKS` "
        "backend that can run a task later (the database backend and `manage.py db_worker`, or "
        "RQ) and Django's email settings",
    )
    EMAIL_AFTER = Setting[timedelta](
        900,
        positive(),
        EMAIL,
        "seconds a notification must stay unseen (not seen in any tab, read or archived) "
        "before it goes into an email digest",
        key="EMAIL_AFTER_SECONDS",
        convert=lambda seconds: timedelta(seconds=seconds),
    )
    EMAIL_DIGEST_WINDOW = Setting[timedelta](
        3600,
        positive(),
        EMAIL,
        "at most one digest per user in this many seconds (emails sent at once do not count)",
        key="EMAIL_DIGEST_SECONDS",
        convert=lambda seconds: timedelta(seconds=seconds),
    )
    EMAIL_NOW_LEVELS = Setting[list[str]](
        [],
        levels,
        EMAIL,
        'levels emailed at once instead of waiting for a digest (`["error"]`, say)',
        convert=list,
    )
    EMAIL_NOW_CATEGORIES = Setting[list[str]](
        [],
        texts,
        EMAIL,
        'categories emailed at once instead of waiting for a digest (`["security"]`, say)',
        convert=list,
    )
    BASE_URL = Setting[str](
        "",
        base_url,
        EMAIL,
        "the site's address (`https://example.com`), which the links in emails start with",
        convert=lambda value: value.rstrip("/"),
    )
    PREFERENCES_PATH = Setting[str](
        "/#notifications-preferences",
        site_path,
        EMAIL,
        "where an email's preferences link points, after `BASE_URL`: by default any page with "
        "the widget, which opens its preferences at this fragment",
    )
    EMAIL_FROM = Setting[str | None](
        None,
        optional(text),
        EMAIL,
        "the digests' `From`; `None`: `DEFAULT_FROM_EMAIL`",
    )
    EMAIL_LANGUAGE = Setting[str | None](
        None,
        dotted_path,
        EMAIL,
        "the dotted path of a function `(user) -> language code or None` that says which "
        "language a user's emails are written in; `None`: the user's `language` attribute if it "
        "has one among `LANGUAGES`, else `LANGUAGE_CODE`",
    )
    EMAIL_BATCH_SIZE = Setting[int](
        100,
        positive(whole=True),
        EMAIL,
        "emails one task claims and sends over one connection to the mail server; more due "
        "users than this start another task at once, which another worker can take",
    )

    WEB_PUSH = Setting[bool](
        False,
        boolean,
        PUSH,
        "send a Web Push to the browsers a user subscribed, for each notification that arrives "
        "while they have no socket open ([push.md](push.md)): needs the three VAPID settings and "
        "a `TASKS` backend",
    )
    WEB_PUSH_VAPID_PUBLIC_KEY = Setting[str](
        "",
        string,
        PUSH,
        "the application server's public key (RFC 8292), base64url: `manage.py vapid_keys` "
        "makes a pair and prints the settings",
    )
    WEB_PUSH_VAPID_PRIVATE_KEY = Setting[str](
        "",
        string,
        PUSH,
        "its private key, base64url (the raw 32 bytes); keep it out of the repository (read it "
        "from the environment)",
    )
    WEB_PUSH_VAPID_SUBJECT = Setting[str](
        "",
        string,
        PUSH,
        "how a push service reaches you about your pushes: `mailto:you@example.com` or the "
        "site's `https://` URL",
    )
    WEB_PUSH_SERVICES = Setting[list[str]](
        [
            "fcm.googleapis.com",
            "updates.push.services.mozilla.com",
            "push.apple.com",
            "notify.windows.com",
        ],
        push_hosts,
        PUSH,
        "the push services a subscription's endpoint may be on: a host, or a domain whose "
        "subdomains count too. The server posts to every endpoint a user gives it, so this keeps "
        "users from making it post to your own network; `['*']` allows any https host",
        convert=list,
    )
    WEB_PUSH_ALLOW_LOOPBACK_HTTP = Setting[bool](
        False,
        boolean,
        PUSH,
        "accept `http://` endpoints on 127.0.0.1, `::1` or `localhost`: for a push service "
        "running beside tests, never in production",
    )
    WEB_PUSH_SERVICE_WORKER_URL = Setting[str | None](
        None,
        optional(site_path),
        PUSH,
        "the service worker the widget registers; `None`: the app's own, at "
        "`api/notifications/push/service-worker.js`. Set it to serve that one from the site's "
        "root, or to your own service worker that imports it ([push.md](push.md#the-browser-side))",
    )
    WEB_PUSH_MAX_SUBSCRIPTIONS = Setting[int](
        10,
        positive(whole=True),
        PUSH,
        "browsers one user may subscribe; a new one past this replaces the one least recently seen",
    )
    WEB_PUSH_BATCH_SIZE = Setting[int](
        500,
        positive(whole=True),
        PUSH,
        "notifications one push task sends; a larger send is split into several tasks, which "
        "several workers can run at once",
    )
    WEB_PUSH_URGENCY = Setting[dict[str, str]](
        _URGENCY,
        level_map(urgency),
        PUSH,
        "the `Urgency` (RFC 8030) of a push, by level: a device on battery may hold `low` ones "
        "back; a dict here replaces only the levels it names",
        convert=lambda value: {**_URGENCY, **value},
    )
    WEB_PUSH_TTL_SECONDS = Setting[dict[str, int]](
        _TTL,
        level_map(positive(whole=True, zero_means_off=True)),
        PUSH,
        "how long a push service keeps a push for a device that is offline, by level, in "
        "seconds (0: deliver now or never); a notification's `expires_at` shortens it; a dict "
        "here replaces only the levels it names",
        convert=lambda value: {**_TTL, **value},
    )

    FOLLOWABLE_MODELS = Setting[list[str]](
        [],
        model_labels,
        FOLLOWING,
        "the models whose objects users may follow through the REST API and the widget "
        "(`app_label.model`, in any case): none by default, so that no one follows what they "
        "may not see; Python code (`follow()`) may follow anything ([following.md](following.md))",
        convert=lambda value: [label.lower() for label in value],
    )
    FOLLOW_PERMISSION = Setting[str | None](
        None,
        dotted_path,
        FOLLOWING,
        "the dotted path of a function `(user, obj) -> bool` asked before a user follows or mutes "
        "an object through the REST API; `None`: any signed-in user may follow any object of "
        "`FOLLOWABLE_MODELS`",
    )


SETTINGS: tuple[Setting[Any], ...] = tuple(
    value for value in vars(Settings).values() if isinstance(value, Setting)
)

# The defaults by key, as a project would write them.
DEFAULTS: dict[str, Any] = {setting.key: setting.default for setting in SETTINGS}

# Keys that were settings once and are internal tuning now, with where each went: a project that
# still sets one is warned (notifications.W007), not broken.
REMOVED: dict[str, str] = {
    "PUSH_CONCURRENCY": "notifications.realtime.broker.PUSH_CONCURRENCY",
    "SHARED_BUMP_ABOVE": "notifications.versions.SHARED_BUMP_ABOVE",
    "SOCKET_STALE_SECONDS": "notifications.realtime.presence.SOCKET_STALE_SECONDS",
    "LAYER_CHECK_SECONDS": "notifications.realtime.watchdog.LAYER_CHECK_SECONDS",
    "GC_THAW_SECONDS": "notifications.realtime.gcfreeze.GC_THAW_SECONDS",
}


def markdown_tables() -> dict[str, str]:
    """docs/settings.md's tables, by section heading, as the declarations render them."""
    tables: dict[str, str] = {}
    for setting in SETTINGS:
        default = setting.default
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        row = f"| `{setting.key}` | `{shown}` | {setting.doc} |\n"
        tables.setdefault(setting.section, "| key | default | what |\n|---|---|---|\n")
        tables[setting.section] += row
    return tables


app_settings = Settings()
