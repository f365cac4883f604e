"""Benchmarks: run each as `python -m bench.<name>`; they print figures and assert nothing."""
