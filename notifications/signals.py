"""Public signals. They fire after the sending transaction commits, never inside it.

Connect receivers in your ``AppConfig.ready()``. Both are sent with ``sender=Notification``.
"""

from django.dispatch import Signal

# New notifications were committed.
# Arguments: ``batch`` -- a ``notifications.services.NotificationBatch``: iterate it for the
# ``Notification`` rows (built from memory, no query), or read ``batch.ids`` and
# ``batch.recipient_ids``. One signal per notify() call, sent in the order of the calls.
notification_sent = Signal()

# The state of some of one user's notifications changed.
# Arguments: ``user_id`` -- whose notifications; ``ids`` -- the ids concerned (list of int);
# ``state`` -- one of "read", "unread", "seen", "archived", "unarchived", "deleted".
notifications_changed = Signal()
