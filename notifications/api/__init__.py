"""The HTTP surfaces for clients: the REST API that doubles as the polling fallback, its 304
fast path (polling.py) and the metrics. A project includes ``notifications.api.urls``; the
other modules are internal."""
