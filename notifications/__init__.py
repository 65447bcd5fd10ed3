"""Live notifications for Django: a notification inbox pushed over WebSockets.

The public imports are listed in docs/architecture.md ("What you import"): ``services`` to send
and change state, ``models``, ``signals``, ``routing`` and ``auth`` for ``asgi.py``,
``api.urls``, ``protocol``, ``conf``. The folders hold the parts: ``services/`` writes and
commits, ``realtime/`` is what a server process runs for its sockets, ``api/`` and ``admin/``
are the HTTP surfaces. Their other modules are the app's own and may change between releases.
"""

__version__ = "0.1.0.dev0"
