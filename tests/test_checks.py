"""System checks catch a new user's mistakes at start-up."""

import re
import sys
import types
from pathlib import Path

import pytest
from channels.auth import AuthMiddlewareStack
from channels.layers import InMemoryChannelLayer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.checks import run_checks
from django.utils.module_loading import import_string

from notifications import checks
from notifications.conf import REMOVED
from notifications.realtime import broker
from notifications.routing import websocket_urlpatterns

CHECKS_DOC = Path(__file__).resolve().parent.parent / "docs" / "checks.md"


def ids(**kwargs):
    return sorted(message.id for message in run_checks() if message.id.startswith("notifications."))


@pytest.fixture(autouse=True)
def debug(settings):
    settings.DEBUG = True  # pytest-django runs tests with DEBUG off; W003 is tested on its own


@pytest.fixture
def asgi_module():
    """A throwaway module to hold an ASGI application for ASGI_APPLICATION to name."""
    module = types.ModuleType("check_asgi")
    sys.modules["check_asgi"] = module
    yield module
    del sys.modules["check_asgi"]


def test_the_demo_project_passes():
    assert ids() == []


def test_no_channel_layer(settings):
    settings.CHANNEL_LAYERS = {}
    assert "notifications.E001" in ids()


def test_in_memory_layer_in_production_warns(settings):
    settings.DEBUG = False
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert "notifications.W003" in ids()


class ProjectLayer(InMemoryChannelLayer):
    """A project's own in-memory layer, under a name of its own."""


def test_the_app_asks_one_question_about_the_in_memory_layer(settings):
    for backend, expected in [
        ("channels.layers.InMemoryChannelLayer", True),
        (f"{__name__}.ProjectLayer", True),  # a subclass, whatever its name
        ("channels_redis.pubsub.RedisPubSubChannelLayer", False),
        ("no.such.InMemoryChannelLayer", False),
    ]:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend}}
        assert broker.in_memory() is expected, backend
    settings.CHANNEL_LAYERS = {}
    assert broker.in_memory() is False


def test_redis_core_layer_without_socket_timeout_warns(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379"}]},
        }
    }
    assert "notifications.W004" in ids()
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["socket_timeout"] = None
    assert "notifications.W004" not in ids()


@pytest.mark.parametrize(
    "value",
    [
        {"PAGE_SIZE": 0},
        {"PAGE_SIZE": "20"},
        {"PAGE_SIZE": True},
        {"PAGE_SIZE": 20.0},
        {"POLL_INTERVAL_SECONDS": -1},
        {"RETENTION_DAYS": 0},
        {"UNMUTABLE_CATEGORIES": ["security", ""]},
        {"CACHE_ALIAS": ""},
        {"METRICS_TOKEN": "short"},
        {"METRICS_TOKEN": 1234567890123456789},
        {"GC_FREEZE_SECONDS": -1},
        {"WEBSOCKET_ORIGINS": ["example.com"]},
        {"THROTTLE_RATES": {"read": "5/minute"}},
        {"THROTTLE_RATES": {"ticket": "5 per minute"}},
        {"EMAIL_DIGESTS": 1},
        {"EMAIL_AFTER_SECONDS": 0},
        {"EMAIL_DIGEST_SECONDS": "3600"},
        {"EMAIL_NOW_LEVELS": ["fatal"]},
        {"EMAIL_NOW_LEVELS": "error"},
        {"EMAIL_NOW_CATEGORIES": [""]},
        {"BASE_URL": "example.com"},
        {"BASE_URL": "ftp://example.com"},
        {"BASE_URL": "https://example.com/?next=1"},
        {"BASE_URL": "https://user@example.com"},
        {"BASE_URL": "https://example.com:port"},
        {"BASE_URL": "https://example.com/#top"},
        {"PREFERENCES_PATH": "//evil.example/"},
        {"PREFERENCES_PATH": "settings"},
        {"EMAIL_LANGUAGE": "not a path"},
        {"EMAIL_BATCH_SIZE": 0},
        {"EMAIL_FROM": ""},
    ],
)
def test_bad_values(settings, value):
    settings.NOTIFICATIONS = value
    assert "notifications.E002" in ids()


@pytest.mark.parametrize(
    "value",
    [
        {"METRICS_TOKEN": None},
        {"METRICS_TOKEN": "a" * 16},
        {"GC_FREEZE_SECONDS": 0},
        {"MAX_SOCKETS_PER_USER": 0},
        {"RESUME_MARGIN_SECONDS": 2.5},
        {"RETENTION_DAYS": None},
        {"WEBSOCKET_ORIGINS": ("https://example.com", "http://localhost:8000")},
        {"THROTTLE_RATES": {"ticket": None}},
        {"BASE_URL": "https://example.com/"},
        {"BASE_URL": "http://127.0.0.1:8000"},
        {"BASE_URL": "https://example.com/app"},
        {"EMAIL_NOW_LEVELS": ["error", "warning"]},
        {"EMAIL_LANGUAGE": "project.languages.of"},
    ],
)
def test_good_values(settings, value):
    settings.NOTIFICATIONS = value
    assert ids() == []


def test_a_bad_value_says_what_it_must_be(settings):
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": -1}
    [error] = [m for m in run_checks() if m.id == "notifications.E002"]
    assert "'MAX_SOCKETS_PER_USER'] must be a positive whole number, or 0 for off" in error.msg
    assert "20" in error.hint


def test_notifications_must_be_a_dict(settings):
    settings.NOTIFICATIONS = ["not", "a", "dict"]
    assert ids() == ["notifications.E006"]


def test_an_unknown_key_is_an_error_with_a_suggestion(settings):
    settings.NOTIFICATIONS = {"PAGE_SIZ": 5}
    [error] = [m for m in run_checks() if m.id.startswith("notifications.")]
    assert error.id == "notifications.E007"
    assert error.hint == "Did you mean 'PAGE_SIZE'?"


@pytest.mark.parametrize("key", sorted(REMOVED))
def test_a_key_that_is_no_longer_a_setting_warns_and_names_where_it_went(settings, key):
    settings.NOTIFICATIONS = {key: 1}
    [warning] = [m for m in run_checks() if m.id.startswith("notifications.")]
    assert warning.id == "notifications.W007"
    assert "no longer a setting" in warning.msg
    import_string(REMOVED[key])  # the constant it became
    assert REMOVED[key] in warning.hint


def test_a_cache_alias_that_caches_lack(settings):
    settings.NOTIFICATIONS = {"CACHE_ALIAS": "nowhere"}
    assert ids() == ["notifications.E008"]


def test_checks_md_lists_every_check_id():
    documented = set(
        re.findall(r"^\| `(notifications\.[EW]\d{3})` \|", CHECKS_DOC.read_text(), re.M)
    )
    raised = set(re.findall(r'id="(notifications\.[EW]\d{3})"', Path(checks.__file__).read_text()))
    assert documented == raised


def test_no_asgi_application_warns_routing_missing(settings):
    settings.ASGI_APPLICATION = None
    assert ids() == ["notifications.W001"]


def test_unimportable_asgi_application(settings):
    settings.ASGI_APPLICATION = "nowhere.asgi.application"
    assert ids() == ["notifications.E005"]


def test_routing_left_out_is_a_warning_not_an_error(settings, asgi_module):
    asgi_module.application = ProtocolTypeRouter({"websocket": URLRouter([])})
    settings.ASGI_APPLICATION = "check_asgi.application"
    assert ids() == ["notifications.W001"]


def test_routing_without_auth_is_an_error(settings, asgi_module):
    asgi_module.application = ProtocolTypeRouter(
        {"websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns))}
    )
    settings.ASGI_APPLICATION = "check_asgi.application"
    assert ids() == ["notifications.E004"]


def test_routing_without_origin_check_warns(settings, asgi_module):
    asgi_module.application = ProtocolTypeRouter(
        {"websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns))}
    )
    settings.ASGI_APPLICATION = "check_asgi.application"
    assert ids() == ["notifications.W002"]


def test_routing_found_inside_an_include(settings, asgi_module):
    from django.urls import include, path

    nested = types.ModuleType("check_routes")
    nested.urlpatterns = websocket_urlpatterns
    sys.modules["check_routes"] = nested
    try:
        asgi_module.application = ProtocolTypeRouter(
            {
                "websocket": AllowedHostsOriginValidator(
                    AuthMiddlewareStack(
                        URLRouter([path("live/", URLRouter(websocket_urlpatterns))])
                    )
                )
            }
        )
        settings.ASGI_APPLICATION = "check_asgi.application"
        assert ids() == []
    finally:
        del sys.modules["check_routes"]
    del include


def test_a_rest_only_project_needs_no_channel_layer(settings):
    settings.ASGI_APPLICATION = None
    settings.CHANNEL_LAYERS = {}
    assert ids() == ["notifications.W001"]  # no E001: nothing is routed, nothing to push to


EMAIL_ON = {"EMAIL_DIGESTS": True, "BASE_URL": "https://example.com"}


def test_email_digests_pass_with_what_they_need(settings):
    settings.NOTIFICATIONS = EMAIL_ON
    assert ids() == []


def test_email_digests_need_a_base_url(settings):
    settings.NOTIFICATIONS = {"EMAIL_DIGESTS": True}
    assert ids() == ["notifications.E009"]


def test_email_digests_need_a_task_backend_that_defers(settings):
    settings.NOTIFICATIONS = EMAIL_ON
    settings.TASKS = {"default": {"BACKEND": _immediate_backend()}}
    assert ids() == ["notifications.E010"]


def _immediate_backend() -> str:
    try:
        import django.tasks  # noqa: F401

        return "django.tasks.backends.immediate.ImmediateBackend"
    except ImportError:
        return "django_tasks.backends.immediate.ImmediateBackend"


def test_email_digests_need_their_links_routed(settings):
    settings.NOTIFICATIONS = EMAIL_ON
    settings.ROOT_URLCONF = "tests.urls_without_api"
    assert "notifications.E011" in ids()


def test_email_checks_stay_quiet_while_email_is_off(settings):
    settings.NOTIFICATIONS = {"EMAIL_DIGESTS": False}
    settings.TASKS = {"default": {"BACKEND": _immediate_backend()}}
    assert ids() == []


def test_followable_models_must_be_installed_models(settings):
    settings.NOTIFICATIONS = {"FOLLOWABLE_MODELS": ["auth.Group", "auth.nothing", "nodot"]}
    assert ids() == ["notifications.E002"]  # "nodot" is no label at all: E002 alone
    settings.NOTIFICATIONS = {"FOLLOWABLE_MODELS": ["auth.Group", "auth.nothing"]}
    assert ids() == ["notifications.E015"]


@pytest.mark.parametrize(
    "hook, expected",
    [
        ("tests.test_checks.ids", []),
        ("tests.test_checks.no_such_function", ["notifications.E016"]),
        ("no_such_module.function", ["notifications.E016"]),
        ("tests.test_checks.CHECKS_DOC", ["notifications.E016"]),  # a Path: not callable
    ],
)
def test_the_follow_permission_must_be_a_callable(settings, hook, expected):
    settings.NOTIFICATIONS = {"FOLLOW_PERMISSION": hook}
    assert ids() == expected
