"""Support modules of the chaos test (tests/test_chaos.py): the settings and ASGI application of
its daphne processes, its sender processes, its WebSocket clients and its tallies."""
