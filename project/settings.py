"""Demo project settings. Everything that differs between machines comes from the environment:

- ``DATABASE_URL``: default a SQLite file beside manage.py; ``postgres://...`` for PostgreSQL.
- ``REDIS_URL``: default the in-memory channel layer (one process); set it to use Redis for the
  channel layer and the cache, so that any number of daphne processes behave as one.
- ``CHANNEL_LAYER``: ``pubsub`` (default) or ``core``, which channels-redis layer to use.
- ``EVENT_LOG``: ``1`` prints the app's event log (a line per connect, push, resume...:
  ``notifications.events``, docs/deployment.md); by default the demo prints warnings only.
- ``BASE_URL``: where the demo is served, which the links in emails start with (``make demo``
  sets it from HOST and PORT).
- ``EMAIL_HOST`` / ``EMAIL_PORT`` (and ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``,
  ``EMAIL_USE_TLS=1``): an SMTP server for the email digests; without ``EMAIL_HOST`` they are
  written to files in ``EMAIL_FILE_PATH`` (default ``sent-emails/`` beside manage.py), which
  the demo's /outbox/ page shows.
- ``EMAIL_AFTER_SECONDS`` / ``EMAIL_DIGEST_SECONDS``: the digests' timings, short in the demo.
- ``WEB_PUSH_VAPID_PUBLIC_KEY`` / ``WEB_PUSH_VAPID_PRIVATE_KEY`` / ``WEB_PUSH_VAPID_SUBJECT``:
  the Web Push keys (``manage.py vapid_keys --format env``); without them the demo makes a pair
  on its first start and keeps it in ``.vapid-keys.json``.
"""

import os
from pathlib import Path

import dj_database_url

from project.vapid import demo_keys

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "SECRET_KEY", "demo-only-insecure-key-change-me-in-production-0123456789"
)
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"] + [
    host for host in os.environ.get("ALLOWED_HOSTS", "").split(",") if host
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files: /api/docs/ works offline
    "django_tasks_db",  # the email digests' task queue, in the database (manage.py db_worker)
    "notifications",
    "project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the demo speaks the browser's language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=0
    )
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request may run on another thread: without a pool each one opens a new
    # connection (slow), and persistent connections pile up until PostgreSQL refuses more.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": int(os.environ.get("DATABASE_POOL_SIZE", "20")),
        "timeout": 10,
    }
    # With the pool, Django then checks a connection before handing it out (one round trip):
    # after PostgreSQL restarts, requests and sockets get a fresh connection, not an error.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    if os.environ.get("CHANNEL_LAYER", "pubsub") == "core":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # redis-py 8: without socket_timeout=None an idle receive() times out after ~5 s,
                # and a pool refuses commands past 100 connections (channels_redis #422).
                # All of a process's messages share one Redis list, whose capacity (100 by
                # default) a burst of pushes exceeds: past it the layer drops without a word.
                "CONFIG": {
                    "hosts": [
                        {"address": REDIS_URL, "socket_timeout": None, "max_connections": 1000}
                    ],
                    "capacity": 10_000,
                },
            }
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": REDIS_URL}]},
            }
        }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # One pool per process, not one connection per request (see notifications/cache.py).
            "OPTIONS": {"pool_class": "notifications.cache.SharedConnectionPool"},
        }
    }
else:
    # One channel per process carries every push to its sockets (notifications/realtime/hub.py):
    # room for bursts past the default 100, which this layer drops without a word.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }

# Email digests run as tasks; the database backend is the embedded default (`make demo` runs its
# worker, manage.py db_worker, beside daphne).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

_VAPID_PUBLIC, _VAPID_PRIVATE = demo_keys(BASE_DIR / ".vapid-keys.json")

# Email digests (docs/email.md): a notification left unseen for EMAIL_AFTER_SECONDS is emailed,
# errors and security notices at once. The demo's timings are short so that a visitor sees a
# digest within a minute or two (the app's defaults are 15 minutes and an hour).
NOTIFICATIONS = {
    "EMAIL_DIGESTS": True,
    "BASE_URL": os.environ.get("BASE_URL", "http://127.0.0.1:8000"),
    "EMAIL_AFTER_SECONDS": float(os.environ.get("EMAIL_AFTER_SECONDS", "60")),
    "EMAIL_DIGEST_SECONDS": float(os.environ.get("EMAIL_DIGEST_SECONDS", "300")),
    "EMAIL_NOW_LEVELS": ["error"],
    "EMAIL_NOW_CATEGORIES": ["security"],
    "EMAIL_LANGUAGE": "project.languages.email_language",
    # Web Push (docs/push.md): "Desktop notifications" in the widget subscribes the browser.
    "WEB_PUSH": True,
    "WEB_PUSH_VAPID_PUBLIC_KEY": _VAPID_PUBLIC,
    "WEB_PUSH_VAPID_PRIVATE_KEY": _VAPID_PRIVATE,
    "WEB_PUSH_VAPID_SUBJECT": os.environ.get(
        "WEB_PUSH_VAPID_SUBJECT", "mailto:notifications@example.com"
    ),
    # Following (docs/settings.md): the demo's documents may be followed or muted over REST.
    "FOLLOWABLE_MODELS": ["project.document"],
}
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS") == "1"  # STARTTLS, as on port 587
else:
    # No mail server needed: each connection's messages go to a file there (git-ignored).
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = Path(os.environ.get("EMAIL_FILE_PATH", BASE_DIR / "sent-emails"))
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", "Live notifications demo <notifications@example.com>"
)

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "Live notifications API",
    "DESCRIPTION": "The REST side of django-live-notifications: the inbox, its state changes, "
    "the polling fallback and WebSocket tickets.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Sessions read at every WebSocket connect: keep that off the database where a cache allows.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "notifications": {"handlers": ["console"], "level": "INFO"},
        "notifications.events": {
            "level": "INFO" if os.environ.get("EVENT_LOG") == "1" else "WARNING"
        },
    },
}
