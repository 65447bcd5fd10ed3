"""Web Push: a notification reaches a user's browsers while none of their pages is open
(docs/push.md).

``keys`` holds the server's VAPID identity, ``subscriptions`` checks and keeps the browsers
users subscribed, ``targets`` decides who is pushed, ``payload`` shapes what a push says,
``delivery`` encrypts and posts a batch, ``tasks`` is the only module that enqueues, ``views``
serves the service worker. All internal: projects configure this through ``NOTIFICATIONS``.
"""
