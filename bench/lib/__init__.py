"""What every benchmark shares: processes, databases, load, profiling, timing and reports."""
