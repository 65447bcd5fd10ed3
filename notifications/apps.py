from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import pre_save

        from . import checks, receivers, signals

        del checks  # imported for its @register side effect
        from .api import credentials

        credentials.connect_receivers()  # the unread count's 304 forgets revoked credentials
        signals.notification_sent.connect(
            receivers.push_sent, dispatch_uid="notifications.push_sent"
        )
        signals.notifications_changed.connect(
            receivers.push_changed, dispatch_uid="notifications.push_changed"
        )
        user_logged_out.connect(
            receivers.close_session_sockets, dispatch_uid="notifications.close_session_sockets"
        )
        pre_save.connect(
            receivers.close_sockets_on_password_change,
            sender=get_user_model(),
            dispatch_uid="notifications.close_sockets_on_password_change",
        )
