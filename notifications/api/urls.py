"""``path("api/notifications/", include("notifications.api.urls"))``"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from ..email import views as email_views
from ..push import views as push_views
from .following import SubscriptionViewSet
from .metrics import metrics
from .push import PushSubscriptionsView, PushSubscriptionView
from .views import NotificationViewSet

# Before the notifications' routes, whose "<id>/" would take "subscriptions/" for an id.
following = SimpleRouter()
following.register("subscriptions", SubscriptionViewSet, basename="subscription")

router = SimpleRouter()
router.register("", NotificationViewSet, basename="notification")

app_name = "notifications-api"
urlpatterns = [
    path("metrics/", metrics, name="metrics"),
    # The links in emails (no sign-in: each carries a signed token).
    path("email/open/<str:token>/", email_views.open_notification, name="email-open"),
    path("email/unsubscribe/<str:token>/", email_views.unsubscribe, name="email-unsubscribe"),
    # Web Push: the browsers a user subscribed, and the service worker that shows the pushes.
    path("push-subscriptions/", PushSubscriptionsView.as_view(), name="push-subscriptions"),
    path(
        "push-subscriptions/<str:pk>/",
        PushSubscriptionView.as_view(),
        name="push-subscription",
    ),
    path("push/service-worker.js", push_views.service_worker, name="push-service-worker"),
    *following.urls,
    *router.urls,
]
