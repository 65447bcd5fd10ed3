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
# Arguments: ``user_id`` -- whose notifications; ``state`` -- one of "read", "unread", "seen",
# "archived", "unarchived", "deleted"; ``up_to`` -- None for a change of named ids, else (mark
# all read, mark seen) the highest id changed: every notification of the user up to it is now in
# ``state``; ``ids`` -- the ids changed (list of int): all of them for a change of named ids, and
# for a change up to an id only while there are at most MAX_IDS_PER_MESSAGE, else empty;
# ``count`` -- how many changed. One signal per change, however many rows it changed.
notifications_changed = Signal()
