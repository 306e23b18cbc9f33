"""Helpers shared by the benchmarks (a folder, so `make bench` does not run them)."""
