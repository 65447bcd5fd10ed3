"""Live notifications for Django: a notification inbox pushed over WebSockets."""

__version__ = "0.1.0.dev0"
