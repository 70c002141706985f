"""Benchmarks: ``python -m benchmarks.<name>``; each prints its figures and returns them as a dict."""
