"""Benchmarks of the course's performance goals: ``python -m benchmarks [NAME ...]``."""
