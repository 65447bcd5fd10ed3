"""Benchmarks: ``make bench`` (see ``bench/polling.py``)."""
