"""``path("api/notifications/", include("notifications.api.urls"))``"""

from rest_framework.routers import SimpleRouter

from .views import NotificationViewSet

router = SimpleRouter()
router.register("", NotificationViewSet, basename="notification")

app_name = "notifications-api"
urlpatterns = router.urls
