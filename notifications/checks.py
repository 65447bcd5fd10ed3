"""System checks: the mistakes a new user makes, reported at start-up rather than in production.

Errors (``notifications.E00x``) stop ``runserver`` and ``migrate``; warnings (``W00x``) do not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from channels.auth import AuthMiddleware
from channels.security.websocket import OriginValidator
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from .auth import SessionAuthMiddleware, TicketAuthMiddleware
from .conf import REMOVED, SETTINGS, Settings
from .realtime.broker import in_memory
from .realtime.consumer import NotificationConsumer
from .realtime.presence import shared


@register(Tags.compatibility)
def check_installed_apps(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    missing = [
        app
        for app in ("django.contrib.auth", "django.contrib.contenttypes")
        if not apps.is_installed(app)
    ]
    return [
        Error(
            f"'{app}' must be in INSTALLED_APPS for notifications.",
            hint=f"Add '{app}' to INSTALLED_APPS.",
            id="notifications.E003",
        )
        for app in missing
    ]


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    overrides = getattr(settings, "NOTIFICATIONS", {})
    if not isinstance(overrides, dict):
        return [
            Error(
                f"settings.NOTIFICATIONS must be a dict (got {type(overrides).__name__}).",
                hint='Write it as NOTIFICATIONS = {"PAGE_SIZE": 50, ...}, or leave it out.',
                id="notifications.E006",
            )
        ]
    declared = {setting.key: setting for setting in SETTINGS}
    messages: list[CheckMessage] = []
    for key, value in overrides.items():
        setting = declared.get(key)
        if setting is not None:
            problem = setting.rule(value)
            if problem:
                messages.append(
                    Error(
                        f"settings.NOTIFICATIONS[{key!r}] must be {problem} (got {value!r}).",
                        hint=f"Leave it out for the default, {setting.default!r}; "
                        "see docs/settings.md.",
                        id="notifications.E002",
                    )
                )
        elif key in REMOVED:
            messages.append(
                Warning(
                    f"settings.NOTIFICATIONS[{key!r}] is no longer a setting and is ignored.",
                    hint=f"Remove it: it is internal tuning now ({REMOVED[key]}).",
                    id="notifications.W007",
                )
            )
        else:
            close = difflib.get_close_matches(str(key), declared, n=1)
            messages.append(
                Error(
                    f"settings.NOTIFICATIONS has an unknown key {key!r}.",
                    hint=f"Did you mean {close[0]!r}?"
                    if close
                    else f"Known keys: {', '.join(sorted(declared))}.",
                    id="notifications.E007",
                )
            )
    alias = overrides.get("CACHE_ALIAS", Settings.CACHE_ALIAS.default)
    if isinstance(alias, str) and alias not in settings.CACHES:
        messages.append(
            Error(
                f"settings.NOTIFICATIONS['CACHE_ALIAS'] names a cache {alias!r} that CACHES lacks.",
                hint=f"Use one of {', '.join(map(repr, settings.CACHES))}, or add {alias!r} to "
                "CACHES.",
                id="notifications.E008",
            )
        )
    return messages


@register(Tags.compatibility)
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    default = layers.get("default")
    if not default:
        if not _consumer_routed():
            # A REST-only project: nothing to push to, and W001 already says so.
            return []
        return [
            Error(
                "No default channel layer is configured: notifications cannot be pushed.",
                hint="Set CHANNEL_LAYERS['default'] (channels_redis in production; "
                "channels.layers.InMemoryChannelLayer for a single process).",
                id="notifications.E001",
            )
        ]
    backend = default.get("BACKEND", "")
    messages: list[Error | Warning] = []
    if in_memory() and not settings.DEBUG:
        messages.append(
            Warning(
                "The in-memory channel layer only reaches sockets of the process that sends: "
                "notifications sent from another process (a worker, the shell, a second daphne) "
                "will not be pushed.",
                hint="Use channels_redis with more than one process.",
                id="notifications.W003",
            )
        )
    if backend == "channels_redis.core.RedisChannelLayer":
        for host in default.get("CONFIG", {}).get("hosts", []) or [{}]:
            if not isinstance(host, dict) or host.get("socket_timeout", 0) is not None:
                messages.append(
                    Warning(
                        "With redis-py 8 an idle RedisChannelLayer receive() times out after "
                        'about 5 s unless each host entry sets "socket_timeout": None.',
                        hint='Use hosts like [{"address": REDIS_URL, "socket_timeout": None, '
                        '"max_connections": 1000}].',
                        id="notifications.W004",
                    )
                )
                break
    return messages


@register(Tags.security)
def check_websocket_origins(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    overrides = getattr(settings, "NOTIFICATIONS", {})
    explicit = isinstance(overrides, dict) and overrides.get("WEBSOCKET_ORIGINS") is not None
    if "*" not in settings.ALLOWED_HOSTS or explicit:
        return []
    return [
        Warning(
            "ALLOWED_HOSTS contains '*' and NOTIFICATIONS['WEBSOCKET_ORIGINS'] is not set: a page "
            "of any site (with the socket's scheme and port) can open a notifications WebSocket "
            "with your users' session cookies and read their notifications.",
            hint="Set NOTIFICATIONS['WEBSOCKET_ORIGINS'] to the origins your pages are served "
            "from, e.g. ['https://example.com'].",
            id="notifications.W005",
        )
    ]


# What gives a cookie socket its user: Channels' stack, or the one of WebSocketAuthStack.
SESSION_AUTH = (AuthMiddleware, SessionAuthMiddleware)


@register(Tags.compatibility)
def check_routing(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    path = getattr(settings, "ASGI_APPLICATION", None)
    not_wired = Warning(
        "The notifications WebSocket consumer is not routed: clients can only poll the REST API.",
        hint="Route notifications.routing.websocket_urlpatterns in the 'websocket' branch of the "
        "ASGI application named by settings.ASGI_APPLICATION (see the README). A project that "
        "uses only the REST API can silence this check.",
        id="notifications.W001",
    )
    if not path:
        return [not_wired]
    try:
        application = import_string(path)
    except ImportError as error:
        return [
            Error(
                f"settings.ASGI_APPLICATION {path!r} cannot be imported: {error}",
                id="notifications.E005",
            )
        ]
    chains = [
        chain
        for chain in _paths(application, ())
        if getattr(chain[-1], "consumer_class", None)
        and issubclass(chain[-1].consumer_class, NotificationConsumer)
    ]
    if not chains:
        return [not_wired]

    def ticket_branch(chain: tuple[Any, ...]) -> bool:
        return any(
            isinstance(outer, TicketAuthMiddleware) and inner is outer.inner
            for outer, inner in zip(chain, chain[1:], strict=False)
        )

    messages: list[Error | Warning] = []
    if any(
        not ticket_branch(chain) and not any(isinstance(step, SESSION_AUTH) for step in chain)
        for chain in chains
    ):
        messages.append(
            Error(
                "The notifications WebSocket route is not inside AuthMiddlewareStack: every "
                "socket would be anonymous and closed with 4401.",
                hint="Wrap the URLRouter in notifications.auth.WebSocketAuthStack.",
                id="notifications.E004",
            )
        )
    if any(
        not ticket_branch(chain) and not any(isinstance(step, OriginValidator) for step in chain)
        for chain in chains
    ):
        messages.append(
            Warning(
                "The notifications WebSocket route has no Origin check: another site could open "
                "a socket with your users' cookies (cross-site WebSocket hijacking).",
                hint="Wrap the URLRouter in notifications.auth.WebSocketAuthStack.",
                id="notifications.W002",
            )
        )
    return messages


def _consumer_routed() -> bool:
    """Whether the ASGI application routes the notifications consumer (False when unknown)."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    try:
        application = import_string(path) if path else None
    except ImportError:
        return False
    return (
        any(
            issubclass(getattr(chain[-1], "consumer_class", type), NotificationConsumer)
            for chain in _paths(application, ())
        )
        if application is not None
        else False
    )


_CHILDREN = (
    "application_mapping",
    "fallback",
    "application",
    "inner",
    "app",
    "routes",
    "url_patterns",
    "callback",
)


def _paths(node: Any, chain: tuple[Any, ...], depth: int = 0) -> Iterator[tuple[Any, ...]]:
    """Every chain of wrappers from the ASGI application down to a routed consumer."""
    chain = (*chain, node)
    if getattr(node, "consumer_class", None) is not None or depth > 30:
        yield chain
        return
    for attribute in _CHILDREN:
        child = getattr(node, attribute, None)
        if child is None:
            continue
        if isinstance(child, dict):
            for key, value in child.items():
                if attribute != "application_mapping" or key == "websocket":
                    yield from _paths(value, chain, depth + 1)
        elif isinstance(child, list | tuple):
            for item in child:
                yield from _paths(item, chain, depth + 1)
        else:
            yield from _paths(child, chain, depth + 1)


@register(Tags.caches)
def check_shared_registry(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default") or {}
    backend = layer.get("BACKEND", "")
    overrides = getattr(settings, "NOTIFICATIONS", None)
    alias = overrides.get("CACHE_ALIAS", "default") if isinstance(overrides, dict) else "default"
    if not backend or in_memory() or alias not in settings.CACHES:
        return []  # one process, or E002/E001 say what is wrong
    if shared(alias):
        return []
    return [
        Warning(
            f"The cache {alias!r} is not a Redis cache, so each process keeps its own socket "
            "registry: MAX_SOCKETS_PER_USER counts per process, the metrics show one process, "
            "and every send is pushed to all recipients (nobody knows who is online elsewhere).",
            hint="Use django.core.cache.backends.redis.RedisCache or django_redis.cache.RedisCache "
            "for NOTIFICATIONS['CACHE_ALIAS'] (the same Redis as the channel layer will do).",
            id="notifications.W006",
        )
    ]


@register()
def check_email(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """What email digests need, once a project turns them on."""
    from .conf import app_settings
    from .email.tasks import deferring_problem

    try:
        enabled = app_settings.EMAIL_DIGESTS is True
    except Exception:  # a NOTIFICATIONS that is no dict: E006 says so
        return []
    if not enabled:
        return []
    errors = []
    if not app_settings.BASE_URL:
        errors.append(
            Error(
                "EMAIL_DIGESTS is on but NOTIFICATIONS['BASE_URL'] is not set: the links in "
                "emails need the site's address.",
                hint="Set NOTIFICATIONS['BASE_URL'] = 'https://your.site'.",
                id="notifications.E009",
            )
        )
    problem = deferring_problem()
    if problem:
        errors.append(
            Error(
                f"EMAIL_DIGESTS is on but {problem}: digests are sent by a task that runs later.",
                hint="Use the database backend: TASKS = {'default': {'BACKEND': "
                "'django_tasks_db.DatabaseBackend'}}, add 'django_tasks_db' to INSTALLED_APPS "
                "and run manage.py db_worker (or use RQ or another backend that can defer).",
                id="notifications.E010",
            )
        )
    try:
        reverse("notifications-api:email-open", args=["x"])
    except NoReverseMatch:
        errors.append(
            Error(
                "EMAIL_DIGESTS is on but the links emails carry are not routed.",
                hint='Include notifications.api.urls: path("api/notifications/", '
                'include("notifications.api.urls")).',
                id="notifications.E011",
            )
        )
    return errors


@register()
def check_web_push(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """What Web Push needs, once a project turns it on."""
    from .conf import app_settings
    from .push import keys
    from .push.tasks import send_pushes

    try:
        enabled = app_settings.WEB_PUSH is True
    except Exception:  # a NOTIFICATIONS that is no dict: E006 says so
        return []
    if not enabled:
        return []
    messages: list[CheckMessage] = [
        Error(
            f"WEB_PUSH is on but {problem}.",
            hint="Run manage.py vapid_keys and paste what it prints into NOTIFICATIONS.",
            id="notifications.E012",
        )
        for problem in keys.problems()
    ]
    try:
        reverse("notifications-api:push-service-worker")
    except NoReverseMatch:
        messages.append(
            Error(
                "WEB_PUSH is on but the push API and its service worker are not routed.",
                hint='Include notifications.api.urls: path("api/notifications/", '
                'include("notifications.api.urls")).',
                id="notifications.E013",
            )
        )
    try:
        defers = send_pushes.get_backend().supports_defer
    except Exception as error:
        messages.append(
            Error(
                f"WEB_PUSH is on but the task backend {send_pushes.backend!r} does not load "
                f"({error}).",
                hint="Fix TASKS: pushes are sent by tasks.",
                id="notifications.E014",
            )
        )
    else:
        if not defers:
            messages.append(
                Warning(
                    "WEB_PUSH is on with a task backend that runs tasks at once: pushes are "
                    "sent inside the request that sent the notification, and never retried.",
                    hint="Use the database backend and manage.py db_worker, or RQ.",
                    id="notifications.W008",
                )
            )
    return messages


@register()
def check_following(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """That the models users may follow exist, and that the permission hook can be called."""
    from django.apps import apps
    from django.utils.module_loading import import_string

    from .conf import Settings, app_settings

    try:
        labels, hook = app_settings.FOLLOWABLE_MODELS, app_settings.FOLLOW_PERMISSION
    except Exception:  # a NOTIFICATIONS that is no dict: E006 says so
        return []
    # Values of the wrong form are E002's.
    if Settings.FOLLOWABLE_MODELS.rule(labels) is not None:
        labels = []
    if Settings.FOLLOW_PERMISSION.rule(hook) is not None:
        hook = None
    errors = []
    for label in labels:
        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(
                Error(
                    f"NOTIFICATIONS['FOLLOWABLE_MODELS'] names {label!r}, which is no installed "
                    "model.",
                    hint="Write each as 'app_label.model', e.g. 'docs.document'.",
                    id="notifications.E015",
                )
            )
    if isinstance(hook, str):
        try:
            function = import_string(hook)
        except ImportError as error:
            function, problem = None, f"does not import ({error})"
        else:
            problem = "" if callable(function) else "is not callable"
        if problem:
            errors.append(
                Error(
                    f"NOTIFICATIONS['FOLLOW_PERMISSION'] {hook!r} {problem}.",
                    hint="Give the dotted path of a function (user, obj) -> bool.",
                    id="notifications.E016",
                )
            )
    return errors
