"""``rapport bench``: benchmarks that print what they measure (never run by the tests' assertions)."""
