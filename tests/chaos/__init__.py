"""Support modules of the chaos test (tests/test_chaos.py): the settings and ASGI application of
its server processes (daphne or uvicorn), its sender processes, its WebSocket clients and its
tallies."""
