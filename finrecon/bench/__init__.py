"""Benchmark tooling: a deterministic generator of FOCUS-shaped data at any size, and the benchmark runner."""
