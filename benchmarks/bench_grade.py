"""Grading throughput, paired in one run: the grader before the sandbox (nbclient kernel per
submission, commit 2b7e937), the fork server of commit 00f9aa5 (a deny-list sandbox; installed in a
venv of its own), one bubblewrap sandbox per submission (--no-fork-server), and the fork server (the
default); then a class of 1,000 lesson-01 submissions end to end, locally and on a
2-worker Dask LocalCluster.

    python benchmarks/bench_grade.py                      # everything (about 15 minutes on 2 cores)
    python benchmarks/bench_grade.py --quick              # fewer copies, no 1,000-submission runs

Prints wall-clock seconds per submission for each path, lesson and --jobs (the run's time over its
copies: what a run pays once, the fork server's template and the course copy, is included, so small
runs overstate the cost of each further submission; the 1,000-submission run shows it), the kernel CPU seconds
per submission (fork server), and for the big class: total time, seconds per submission and the
grader's peak memory (VmHWM of its process, polled). Writes the figures into benchmarks/latest.json
under "grading". A benchmark, not a test: the numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "2b7e937"  # the last grader without a sandbox
PREVIOUS_COMMIT = "00f9aa5"  # the last fork server whose sandbox was a deny-list over the disk (issue 20)
LESSONS = {"01": "01_neurons.ipynb", "06": "06_backprop.ipynb", "13": "13_capstone.ipynb"}


def export_commit(dest: Path, commit: str = BEFORE_COMMIT, paths: tuple[str, ...] = ("bpkit",)) -> Path | None:
    """`paths` of `commit` (() for the whole tree) unpacked into dest; None outside a git checkout."""
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, *paths], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def install_previous(dest: Path, commit: str = PREVIOUS_COMMIT) -> Path | None:
    """A venv of its own with `commit` installed (not editable), its python; None where that cannot be built.

    Not PYTHONPATH: the graders start their kernels with `python -I`, which ignores it, so the kernels
    would run this tree's runner. In a venv of its own, grader and kernels alike are the commit's.
    """
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    source = export_commit(dest / "source", commit, paths=())
    if source is None:
        print(f"previous path skipped: commit {commit} is not in this checkout", file=sys.stderr)
        return None
    try:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(dest / "venv")], check=True)
        python = dest / "venv" / "bin" / "python"
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), f"{source}[instructor]"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"previous path skipped: cannot install commit {commit} ({exc})", file=sys.stderr)
        return None
    where = subprocess.run(
        [str(python), "-I", "-c", "import bpkit.grading.runner as r; print(r.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=dest,
    ).stdout.strip()
    if not where.startswith(str(dest / "venv")):
        raise SystemExit(f"the venv of {commit} imports its runner from {where}, not from itself")
    return python


def run_grader(
    files: list[Path], out: Path, jobs: int, mode: str, before: Path | None, previous: Path | None = None
) -> dict:
    """One grading run in a subprocess; wall seconds, grader peak memory and the --json summary."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    command = [
        str(previous) if mode == "previous" else sys.executable,
        "-m",
        "bpkit",
        "grade",
        *map(str, files),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--timeout",
        "300",
    ]
    if mode == "before":  # the grader before the sandbox has no --json summary
        env["PYTHONPATH"] = str(before)
    else:
        command += ["--quiet", "--json", "--seed", "1"]
        if mode == "sandbox":
            command.append("--no-fork-server")
        elif mode.startswith("cluster"):
            command += ["--cluster", mode.split("=", 1)[1]]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def watch() -> None:
        while process.poll() is None:
            try:
                with open(f"/proc/{process.pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]) * 1024)
            except OSError:
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"{mode} grading failed (exit {process.returncode}): {stderr[-2000:]}")
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        statuses = {row["status"] for row in csv.DictReader(handle)}
    if statuses != {"pass"}:
        raise SystemExit(f"{mode} grading did not pass every exercise: {statuses}; {stderr[-1000:]}")
    summary = json.loads(stdout) if mode != "before" else {}
    cpu = [r["kernel_cpu_seconds"] for r in summary.get("results", [])]
    return {
        "seconds": seconds,
        "per_submission": seconds / len(files),
        "peak_mb": peak[0] / 2**20,
        "kernel_cpu_per_submission": sum(cpu) / len(cpu) if cpu else None,
    }


def copies(lesson: str, n: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        files.append(folder / f"student{i:04d}x_{lesson}.ipynb")
        shutil.copyfile(ROOT / "solutions" / LESSONS[lesson], files[-1])
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer copies; skip the 1,000-submission runs")
    parser.add_argument("--class-size", type=int, default=1000)
    parser.add_argument(
        "--lessons",
        nargs="+",
        default=list(LESSONS),
        choices=list(LESSONS),
        help="lessons to time (default: all three)",
    )
    parser.add_argument("--no-before", action="store_true", help=f"skip the grader of {BEFORE_COMMIT} (no sandbox)")
    args = parser.parse_args()
    n = {"01": 6, "06": 3, "13": 2} if args.quick else {"01": 40, "06": 8, "13": 4}
    figures: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "per_lesson": {}, "class": {}}
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        tmp = Path(tmp)
        before = None if args.no_before else export_commit(tmp / "before")
        previous = install_previous(tmp / "previous")
        modes = (["before"] if before else []) + (["previous"] if previous else []) + ["sandbox", "forkserver"]
        print(
            f"paths compared: {', '.join(modes)}  (before = commit {BEFORE_COMMIT}, no sandbox; previous = "
            f"commit {PREVIOUS_COMMIT}, fork server in a deny-list sandbox; sandbox and forkserver: this tree)"
        )
        print(
            f"{'lesson':>6} {'jobs':>4} "
            + " ".join(f"{m + ' s/sub':>16}" for m in modes)
            + "  fork-server kernel CPU s/sub"
        )
        for lesson in args.lessons:
            files = copies(lesson, n[lesson], tmp / f"subs{lesson}")
            run_grader(files[:1], tmp / f"warm{lesson}", 1, "forkserver", before)  # caches warm, not timed
            for jobs in (1, 2):
                row = {m: run_grader(files, tmp / f"out-{lesson}-{jobs}-{m}", jobs, m, before, previous) for m in modes}
                figures["per_lesson"][f"{lesson}/jobs{jobs}"] = {
                    m: round(r["per_submission"], 3) for m, r in row.items()
                } | {
                    "forkserver_kernel_cpu": round(row["forkserver"]["kernel_cpu_per_submission"], 3),
                    "copies": len(files),
                }
                print(
                    f"{lesson:>6} {jobs:>4} "
                    + " ".join(f"{row[m]['per_submission']:>16.2f}" for m in modes)
                    + f"  {row['forkserver']['kernel_cpu_per_submission']:.2f}"
                )
        if not args.quick:
            files = copies("01", args.class_size, tmp / "class")
            for mode in ("forkserver", "cluster=local:2"):
                result = run_grader(files, tmp / f"class-{mode.replace(':', '')}", 2, mode, before)
                figures["class"][mode] = {k: round(v, 3) for k, v in result.items() if v is not None}
                print(
                    f"{args.class_size} lesson-01 submissions, {mode}, --jobs 2: {result['seconds']:.0f} s, "
                    f"{result['per_submission']:.2f} s/submission, grader peak {result['peak_mb']:.0f} MB"
                )
    latest = ROOT / "benchmarks" / "latest.json"
    data = json.loads(latest.read_text()) if latest.exists() else {}
    old = data.get("grading", {})
    figures["per_lesson"] = {**old.get("per_lesson", {}), **figures["per_lesson"]}  # lessons not re-timed keep theirs
    figures["class"] = figures["class"] or old.get("class", {})
    data["grading"] = figures
    latest.write_text(json.dumps(data, indent=1) + "\n")
    print(f"figures written to {latest} (key 'grading')")


if __name__ == "__main__":
    main()
