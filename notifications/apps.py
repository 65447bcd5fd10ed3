from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.utils.translation import gettext_lazy as _

from . import signals


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Here, not above: these import models, which the app registry loads after this module.
        from . import checks
        from .api import credentials
        from .email import tasks as email_tasks
        from .push import subscriptions as push_subscriptions
        from .push import tasks as push_tasks
        from .realtime import receivers, revocation

        del checks  # imported for its @register side effect
        credentials.connect_receivers()  # the unread count's 304 forgets revoked credentials
        revocation.connect_receivers()  # sockets close when the right to open them ends
        signals.notification_sent.connect(
            receivers.push_sent, dispatch_uid="notifications.push_sent"
        )
        signals.notifications_changed.connect(
            receivers.push_changed, dispatch_uid="notifications.push_changed"
        )
        signals.notification_sent.connect(
            email_tasks.schedule_sent, dispatch_uid="notifications.email_scheduled"
        )
        signals.notification_sent.connect(
            push_tasks.schedule_sent, dispatch_uid="notifications.web_push_scheduled"
        )
        user_logged_out.connect(
            push_subscriptions.signed_out, dispatch_uid="notifications.web_push_signed_out"
        )
