"""Benchmarks: Ferry side by side with what a user would otherwise pick."""
