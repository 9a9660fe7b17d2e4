"""Test bpkit at both ends of the dependency range pyproject.toml allows.

    python tools/test_versions.py [SPEC ...]        (or: make test-versions [VERSIONS="..."])

A SPEC is PYTHON:RESOLUTION, e.g. 3.11:lowest-direct or 3.13:highest (the default pair: the
lowest versions of bpkit's direct dependencies on Python 3.11, the newest on Python 3.13). For each,
a fresh environment is built with uv in .venvs/py<PYTHON>-<RESOLUTION>/ (git-ignored), then:

  1. the fast suite          pytest tests -m "not browser and not slow"
  2. every solution notebook  pytest --nbval (outputs compared, as in `make test`)
  3. the grader               bpkit grade solutions/01_neurons.ipynb must give 100.0%

The interpreter for a Python version is found with `uv python find`, then as pythonX.Y on PATH,
then under ~/.pyenv/versions/ (uv cannot download Pythons offline). uv itself comes from the
project venv (`make test-versions` installs it there). Exit code 0 when every step of every SPEC
passes; a summary with the resolved versions and the time of each step is printed at the end.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPECS = ("3.11:lowest-direct", "3.13:highest")
RESOLUTIONS = ("lowest-direct", "lowest", "highest")
STEPS = ("fast", "nbval", "grade")
GRADED = ROOT / "solutions" / "01_neurons.ipynb"
SHOWN = (
    "numpy",
    "matplotlib",
    "ipython",
    "ipykernel",
    "ipywidgets",
    "jupyterlab",
    "nbformat",
    "nbclient",
    "jupyter-client",
    "tqdm",
    "pytest",
    "nbval",
    "hypothesis",
    "pytest-timeout",
)


def uv_binary() -> str:
    here = Path(sys.executable).parent / "uv"
    found = str(here) if here.exists() else shutil.which("uv")
    if not found:
        sys.exit("uv not found: `make test-versions` installs it into .venv (pip install uv)")
    return found


def find_python(uv: str, version: str) -> str:
    """A working interpreter of this version (a pyenv shim on PATH may exist and still not run)."""
    found = subprocess.run(
        [uv, "python", "find", "--system", "--no-python-downloads", version], capture_output=True, text=True
    ).stdout.strip()
    pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")), reverse=True)
    for candidate in [found, shutil.which(f"python{version}"), *pyenv]:
        if not candidate:
            continue
        check = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if check.returncode == 0 and check.stdout.strip() == version:
            return candidate
    sys.exit(f"no Python {version} found (tried uv python find, python{version} on PATH, ~/.pyenv/versions)")


class Step:
    def __init__(self, spec: str, name: str):
        self.spec, self.name, self.ok, self.seconds, self.detail = spec, name, False, 0.0, ""

    def __str__(self) -> str:
        return (
            f"  {self.spec:20s} {self.name:12s} {'ok    ' if self.ok else 'FAILED'} {self.seconds:5.0f} s  "
            f"{self.detail}"
        )


def run(cmd: list[str], env: dict[str, str], step: Step) -> subprocess.CompletedProcess:
    print(f"$ {' '.join(cmd)}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    step.seconds += time.monotonic() - start
    if proc.returncode == 0:
        print("\n".join(proc.stdout.splitlines()[-2:]), flush=True)
    else:  # everything: which cell, expected and received output
        print(proc.stdout + proc.stderr, flush=True)
    return proc


def check_spec(spec: str, uv: str, keep: bool, only: set[str]) -> list[Step]:
    version, _, resolution = spec.partition(":")
    resolution = resolution or "highest"
    if resolution not in RESOLUTIONS:
        sys.exit(f"{spec}: resolution must be one of {', '.join(RESOLUTIONS)}")
    venv = ROOT / ".venvs" / f"py{version}-{resolution}"
    python = find_python(uv, version)
    print(f"\n===== {spec}: {python} -> {venv.relative_to(ROOT)}", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "NPY_DISABLE_CPU_FEATURES")}
    env.update(
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        VIRTUAL_ENV=str(venv),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    steps = []

    step = Step(spec, "install")
    steps.append(step)
    if venv.exists() and not keep:
        shutil.rmtree(venv)
    if not venv.exists() and run([uv, "venv", "--quiet", "--python", python, str(venv)], env, step).returncode:
        step.detail = "uv venv failed"
        return steps
    proc = run([uv, "pip", "install", "--quiet", "--resolution", resolution, "-e", ".[test]"], env, step)
    if proc.returncode != 0:
        step.detail = "uv pip install failed"
        return steps
    freeze = subprocess.run([uv, "pip", "freeze"], env=env, capture_output=True, text=True, cwd=ROOT).stdout
    versions = dict(line.split("==", 1) for line in freeze.splitlines() if "==" in line)
    py_version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    step.ok = True
    step.detail = f"Python {py_version}; " + " ".join(f"{n} {versions[n]}" for n in SHOWN if n in versions)
    print(step.detail, flush=True)
    vpy = str(venv / "bin" / "python")

    if "fast" in only:
        steps.append(fast_suite(spec, vpy, env))
    if "nbval" in only:
        steps.append(nbval(spec, vpy, env))
    if "grade" in only:
        steps.append(grade(spec, venv, env))
    return steps


def fast_suite(spec: str, vpy: str, env: dict[str, str]) -> Step:
    step = Step(spec, "fast suite")
    proc = run(
        [vpy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "-m", "not browser and not slow"], env, step
    )
    step.ok, step.detail = proc.returncode == 0, last_tally(proc)
    return step


def nbval(spec: str, vpy: str, env: dict[str, str]) -> Step:
    step = Step(spec, "nbval")
    proc = run(
        [
            vpy,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            "tests/nbval_sanitize.cfg",
            "solutions",
        ],
        env,
        step,
    )
    step.ok, step.detail = proc.returncode == 0, last_tally(proc)
    return step


def grade(spec: str, venv: Path, env: dict[str, str]) -> Step:
    step = Step(spec, "grade")
    with tempfile.TemporaryDirectory(prefix="bpkit-versions-") as tmp:
        cmd = [str(venv / "bin" / "bpkit"), "grade", str(GRADED), "--out", str(Path(tmp) / "out"), "--jobs", "1"]
        helptext = subprocess.run(cmd[:2] + ["--help"], env=env, capture_output=True, text=True).stdout
        if "--no-sandbox" in helptext and not shutil.which("bwrap"):
            cmd.append("--no-sandbox")  # prefer the sandbox; only where bubblewrap is missing
        proc = run(cmd, env, step)
        step.ok, step.detail = grade_verdict(proc, Path(tmp) / "out")
    return step


def grade_verdict(proc: subprocess.CompletedProcess, out: Path) -> tuple[bool, str]:
    if proc.returncode != 0:
        return False, f"bpkit grade exit code {proc.returncode}"
    try:
        with open(out / "summary.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        with open(out / "grades.csv", newline="", encoding="utf-8") as f:
            grades = list(csv.DictReader(f))
    except OSError as error:
        return False, f"no gradebook: {error}"
    not_passed = [
        f"{g.get('exercise')}: {g.get('status')} {g.get('message', '')[:200]}"
        for g in grades
        if g.get("status") != "pass"
    ]
    if (
        len(rows) != 1
        or rows[0].get("percentage") != "100.0"
        or rows[0].get("status", "graded") != "graded"
        or not_passed
    ):
        print("summary.csv:", rows, *not_passed, sep="\n  ", flush=True)
        return False, f"{GRADED.name}: {rows[0].get('percentage') if rows else '?'}% (want 100.0)"
    # Full marks are not enough: a cell that raised (e.g. `import matplotlib.pyplot` under the
    # grader's MPLBACKEND=Agg) is reported in the feedback, and would cost a learner every exercise
    # defined after it.
    feedback = "".join(p.read_text(encoding="utf-8") for p in sorted((out / "feedback").glob("*.md")))
    if not feedback:
        return False, "no feedback file"
    raised = [line for line in feedback.splitlines() if re.search(r"raised|Error|Traceback", line)]
    if raised:
        print("feedback notes:", *raised, sep="\n  ", flush=True)
        return False, f"{GRADED.name}: 100.0% but the feedback says: {raised[0][:300]}"
    return True, f"{GRADED.name}: {rows[0]['total']}/{rows[0]['max_points']} = 100.0%"


def last_tally(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip("= ") for ln in (proc.stdout + proc.stderr).splitlines()]
    return next(
        (ln for ln in reversed(lines) if " passed" in ln or " failed" in ln or " error" in ln),
        f"exit code {proc.returncode}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", default=list(DEFAULT_SPECS), help="e.g. 3.11:lowest-direct 3.13:highest")
    parser.add_argument("--keep", action="store_true", help="reuse an existing environment instead of rebuilding it")
    parser.add_argument(
        "--only",
        action="append",
        choices=STEPS,
        help="run only these steps after installing (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    only = set(args.only or STEPS)
    uv = uv_binary()
    steps = []
    for spec in args.specs:
        steps += check_spec(spec, uv, args.keep, only)
    print("\ntest-versions summary:")
    print("\n".join(map(str, steps)))
    expected = (1 + len(only)) * len(args.specs)
    return 0 if len(steps) == expected and all(s.ok for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
