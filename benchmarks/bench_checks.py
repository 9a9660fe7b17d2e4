"""Feedback time of every check: each exercise's check run on its reference answer and on each of its
registered mistakes, as a learner's notebook runs it (observe every case, judge, explain a failure).

    python benchmarks/bench_checks.py                # every exercise, table + summary
    python benchmarks/bench_checks.py --only sigmoid dropout_forward

Prints one row per exercise (reference seconds, slowest mistake, median mistake) and a summary: the
slowest check, the median check, and how many answer within 2 s and the median within 0.2 s (the
targets of issue 22). Writes the figures into benchmarks/latest.json under "checks". A benchmark,
not a test: the numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bpkit.checks import EXERCISES, CheckFailure  # noqa: E402

OUT = Path(__file__).resolve().parent / "latest.json"
SLOWEST_ALLOWED, MEDIAN_ALLOWED = 2.0, 0.2  # seconds


def time_check(exercise, fn) -> tuple[float, str]:
    """Seconds one check of fn takes, and its outcome (pass / fail)."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            exercise(fn)
            outcome = "pass"
        except CheckFailure:
            outcome = "fail"
    return time.perf_counter() - started, outcome


def measure(ids: list[str]) -> list[dict]:
    rows = []
    for exercise_id in ids:
        exercise = EXERCISES[exercise_id]
        reference, _ = time_check(exercise, exercise.reference)
        mistakes = []
        for mistake in exercise.mistakes:

            def learner(*args, _fn=mistake.fn, **kwargs):  # the learner's own function, as in a notebook
                return _fn(*args, **kwargs)

            seconds, outcome = time_check(exercise, learner)
            mistakes.append({"seconds": seconds, "outcome": outcome})
        rows.append(
            {
                "exercise": exercise_id,
                "reference": reference,
                "mistake_max": max(m["seconds"] for m in mistakes),
                "mistake_median": statistics.median(m["seconds"] for m in mistakes),
                "mistakes": len(mistakes),
                "mistakes_passing": sum(m["outcome"] == "pass" for m in mistakes),
            }
        )
    return rows


def summary(rows: list[dict]) -> dict:
    every = [r["reference"] for r in rows] + [r["mistake_max"] for r in rows]
    checks = [r["reference"] for r in rows]
    all_checks = sorted(every)
    return {
        "exercises": len(rows),
        "checks": sum(1 + r["mistakes"] for r in rows),
        "slowest": max(every),
        "slowest_exercise": max(rows, key=lambda r: max(r["reference"], r["mistake_max"]))["exercise"],
        "median_reference": statistics.median(checks),
        "median_mistake": statistics.median(r["mistake_median"] for r in rows),
        "within_2s": sum(t <= SLOWEST_ALLOWED for t in all_checks),
        "timed": len(all_checks),
        "mistakes_passing": sum(r["mistakes_passing"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="exercise ids (default: all)")
    args = parser.parse_args()
    ids = args.only or list(EXERCISES)
    rows = measure(ids)
    print(f"{'exercise':24s} {'reference':>10s} {'mistakes':>9s} {'slowest':>9s} {'median':>9s}")
    for r in rows:
        print(
            f"{r['exercise']:24s} {r['reference']:9.3f}s {r['mistakes']:9d} {r['mistake_max']:8.3f}s "
            f"{r['mistake_median']:8.3f}s"
        )
    s = summary(rows)
    ok = s["slowest"] <= SLOWEST_ALLOWED and max(s["median_reference"], s["median_mistake"]) <= MEDIAN_ALLOWED
    print(
        f"\n{s['exercises']} exercises, {s['checks']} checks ({os.cpu_count()} cores): slowest {s['slowest']:.2f} s "
        f"({s['slowest_exercise']}), median {s['median_reference']:.3f} s on the reference and "
        f"{s['median_mistake']:.3f} s on a mistake; registered mistakes that pass: {s['mistakes_passing']}; "
        f"targets (every check <= {SLOWEST_ALLOWED:g} s, median <= {MEDIAN_ALLOWED:g} s): {'met' if ok else 'NOT met'}"
    )
    if not args.only:
        data = json.loads(OUT.read_text()) if OUT.exists() else {}
        data["checks"] = {"machine": platform.platform(), "cores": os.cpu_count(), "summary": s, "rows": rows}
        OUT.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
