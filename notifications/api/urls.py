"""``path("api/notifications/", include("notifications.api.urls"))``"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .metrics import metrics
from .views import NotificationViewSet

router = SimpleRouter()
router.register("", NotificationViewSet, basename="notification")

app_name = "notifications-api"
urlpatterns = [path("metrics/", metrics, name="metrics"), *router.urls]
