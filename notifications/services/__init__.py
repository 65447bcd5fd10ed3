"""The one way to write notifications: send them, and change their state.

Everything here writes in the caller's transaction and announces what it did only after that
transaction commits (``outbox``). It knows models and signals, and nothing of the channel
layer: the receivers connected in ``AppConfig.ready()`` push what is announced.

``sending`` writes new notifications, ``state`` changes what users did with them,
``preferences`` keeps what they muted, ``following`` who follows (or muted) which object;
``batch`` and ``outbox`` carry what was written to the commit. Import from here: the modules'
other names are the package's own.
"""

from .batch import NotificationBatch
from .following import (
    afollow,
    afollow_all,
    amute_object,
    aunfollow,
    aunmute_object,
    change_follow,
    follow,
    follow_all,
    followers,
    mute_object,
    unfollow,
    unmute_object,
)
from .outbox import Change
from .preferences import mute_email, preferences, set_preferences
from .sending import anotify, audience, notify, validate_content, without_muted
from .state import (
    archive,
    delete,
    mark_all_read,
    mark_read,
    mark_seen,
    mark_unread,
    unarchive,
)

__all__ = [
    "notify",
    "anotify",
    "validate_content",
    "audience",
    "preferences",
    "set_preferences",
    "mute_email",
    "mark_read",
    "mark_all_read",
    "mark_unread",
    "mark_seen",
    "archive",
    "unarchive",
    "delete",
    "follow",
    "follow_all",
    "unfollow",
    "followers",
    "mute_object",
    "unmute_object",
    "change_follow",
    "afollow",
    "afollow_all",
    "aunfollow",
    "amute_object",
    "aunmute_object",
    "NotificationBatch",
    "Change",
    "without_muted",  # the admin's send form counts its recipients with it
]
