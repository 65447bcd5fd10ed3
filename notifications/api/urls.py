"""``path("api/notifications/", include("notifications.api.urls"))``"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from ..email import views as email_views
from .metrics import metrics
from .views import NotificationViewSet

router = SimpleRouter()
router.register("", NotificationViewSet, basename="notification")

app_name = "notifications-api"
urlpatterns = [
    path("metrics/", metrics, name="metrics"),
    # The links in emails (no sign-in: each carries a signed token).
    path("email/open/<str:token>/", email_views.open_notification, name="email-open"),
    path("email/unsubscribe/<str:token>/", email_views.unsubscribe, name="email-unsubscribe"),
    *router.urls,
]
