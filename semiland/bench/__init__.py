"""Benchmarks: measured side by side in one process, never by timed unit tests."""
