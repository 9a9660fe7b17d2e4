"""bpkit's benchmarks: `python -m benchmarks` prints the table and writes benchmarks/latest.json."""
