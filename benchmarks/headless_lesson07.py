"""`python -m benchmarks.headless_lesson07 [--runs 20]`: run lesson 07 headless again and again, report stalls.

Headless runs of lesson 07 (nbclient 0.11, ipykernel 7.4, ipywidgets 8.1.9) once stalled for the whole
cell timeout right after the learning-rate explorer, in 2 runs of 7: nbclient wrote to the kernel's
shell channel for the explorer's Output widget while waiting on that channel for the cell's reply
(see bpkit/widgets.py). This runs the solution notebook N times in a row, each in a fresh kernel, with
a per-cell timeout far above a normal run, and prints the seconds of each run and of its slowest cell.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "solutions" / "07_gradient_descent.ipynb"
OUT = Path(__file__).resolve().parent / "headless_lesson07.json"


def _seconds(start: str, end: str) -> float:
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def run_once(timeout: int) -> dict:
    """One headless run: {"seconds", "slowest_cell", "slowest_cell_seconds", "error"}."""
    nb = nbformat.read(LESSON, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(LESSON.parent)}},
    )
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as exc:  # a timeout is the stall this looks for; record any failure and go on
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    seconds = time.perf_counter() - start
    cells = [
        (index, _seconds(c.metadata.execution["iopub.execute_input"], c.metadata.execution["shell.execute_reply"]))
        for index, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and {"iopub.execute_input", "shell.execute_reply"} <= set(c.metadata.get("execution", {}))
    ]
    slowest = max(cells, key=lambda item: item[1]) if cells else (None, 0.0)
    return {"seconds": seconds, "slowest_cell": slowest[0], "slowest_cell_seconds": slowest[1], "error": error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.headless_lesson07", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="consecutive runs (default 20)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell before a run counts as stalled")
    args = parser.parse_args(argv)
    runs = []
    for number in range(1, args.runs + 1):
        run = run_once(args.timeout)
        runs.append(run)
        print(
            f"run {number:2d}: {run['seconds']:6.1f} s, slowest cell {run['slowest_cell']} "
            f"({run['slowest_cell_seconds']:.1f} s){'  ' + run['error'] if run['error'] else ''}",
            flush=True,
        )
    seconds = [r["seconds"] for r in runs]
    failed = sum(r["error"] is not None for r in runs)
    print(
        f"{args.runs} runs: {failed} failed or stalled; median {statistics.median(seconds):.1f} s, "
        f"max {max(seconds):.1f} s, slowest cell {max(r['slowest_cell_seconds'] for r in runs):.1f} s"
    )
    OUT.write_text(json.dumps({"lesson": LESSON.name, "timeout": args.timeout, "runs": runs}, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
