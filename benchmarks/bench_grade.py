"""Grading throughput: 40 copies of one lesson's solution with --jobs 1, then --jobs 2.

    python benchmarks/bench_grade.py [--copies 40] [--notebook solutions/01_neurons.ipynb]

Prints wall-clock seconds per submission for each --jobs and the speed-up of 2 jobs over 1.
A benchmark, not a test: the numbers depend on the machine and on what else it is running.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

from bpkit.cli import main as bpkit_main

ROOT = Path(__file__).resolve().parents[1]


def grade_copies(submissions: list[Path], out: Path, jobs: int) -> float:
    """Grade every copy with `jobs` workers; return the wall-clock seconds (all must pass)."""
    start = time.perf_counter()
    code = bpkit_main(["grade", *map(str, submissions), "--out", str(out), "--jobs", str(jobs), "--timeout", "300"])
    seconds = time.perf_counter() - start
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        statuses = {row["status"] for row in csv.DictReader(handle)}
    if code != 0 or statuses != {"pass"}:
        raise SystemExit(f"grading with --jobs {jobs} did not pass every exercise: exit {code}, statuses {statuses}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=40, help="how many submissions to grade per run")
    parser.add_argument("--notebook", type=Path, default=ROOT / "solutions" / "01_neurons.ipynb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        submissions = []
        for i in range(args.copies):
            submissions.append(folder / f"student_{i:03d}.ipynb")
            shutil.copyfile(args.notebook, submissions[-1])
        grade_copies(submissions[:1], Path(tmp) / "warm_up", 1)  # imports and first kernel start, not timed
        results = {jobs: grade_copies(submissions, Path(tmp) / f"out_jobs{jobs}", jobs) for jobs in (1, 2)}
    print(f"\ngrading {args.copies} copies of {args.notebook.name} on {os.cpu_count()} cores")
    print(f"{'--jobs':>6}  {'total s':>8}  {'s / submission':>14}")
    for jobs, seconds in results.items():
        print(f"{jobs:>6}  {seconds:>8.1f}  {seconds / args.copies:>14.2f}")
    print(f"speed-up of --jobs 2 over --jobs 1: {results[1] / results[2]:.2f}x")


if __name__ == "__main__":
    main()
