"""Run the solution notebooks through nbval under floating-point configurations other machines have.

    python tools/float_variants.py [--config NAME ...] [notebook-or-folder ...]

Stored notebook outputs come from one CPU. Another CPU, BLAS thread count or SIMD level changes
the last digits of float results, so every output nbval compares must survive these changes.
Configurations (each a separate pytest run, outputs compared as in `make test`):

  default         OPENBLAS_NUM_THREADS=1, NumPy as it runs here (what `make test` already runs)
  blas2threads    OPENBLAS_NUM_THREADS=2: OpenBLAS splits reductions differently
  numpy-simd-off  NPY_DISABLE_CPU_FEATURES = every dispatched SIMD feature this CPU has, so NumPy
                  takes the code paths of a CPU without AVX2/AVX-512

`make test-portable` runs blas2threads and numpy-simd-off (the default one is part of `make test`).
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left as the machine sets them on purpose.
Exit code 0 when every configuration passes, 1 otherwise; a summary line per configuration with
its wall-clock time is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("default", "blas2threads", "numpy-simd-off")
PORTABLE = ("blas2threads", "numpy-simd-off")


def dispatched_features(python: str) -> list[str]:
    """The SIMD features NumPy dispatches to at run time that this CPU has (e.g. X86_V3 X86_V4)."""
    code = (
        "try:\n"
        "    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__\n"
        "except ImportError:\n"
        "    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__\n"
        "print(' '.join(f for f in __cpu_dispatch__ if __cpu_features__.get(f)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def config_env(name: str, python: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NPY_DISABLE_CPU_FEATURES", None)
    env["OPENBLAS_NUM_THREADS"] = "2" if name == "blas2threads" else "1"
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"]
    if name == "numpy-simd-off":
        features = dispatched_features(python)
        if features:
            env["NPY_DISABLE_CPU_FEATURES"] = " ".join(features)
    return env


def run(name: str, notebooks: list[str], python: str) -> tuple[bool, str, float]:
    env = config_env(name, python)
    cmd = [
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval",
        "--nbval-sanitize-with",
        str(ROOT / "tests" / "nbval_sanitize.cfg"),
        *notebooks,
    ]
    shown = " ".join(f"{k}={env[k]!r}" for k in ("OPENBLAS_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES") if k in env)
    print(f"== {name}: {shown}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    lines = out.splitlines()
    if proc.returncode != 0:
        # The failure details (which cell, expected vs got) are the useful part for a fix.
        print(out, flush=True)
    tally = next(
        (ln.strip("= ") for ln in reversed(lines) if re.search(r"\d+ (passed|failed|error)", ln)),
        f"pytest exit code {proc.returncode}, no summary line",
    )
    ok = proc.returncode == 0 and " passed" in tally
    for ln in lines:
        if ln.startswith(("FAILED", "ERROR")):
            print(f"   {ln}", flush=True)
    print(f"   {name}: {'ok' if ok else 'FAILED'} - {tally} ({seconds:.0f} s)", flush=True)
    return ok, tally, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        action="append",
        choices=CONFIGS,
        help=f"configuration to run (repeatable; default: {' '.join(PORTABLE)})",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter with bpkit and nbval")
    parser.add_argument("notebooks", nargs="*", default=["solutions"])
    args = parser.parse_args(argv)
    configs = args.config or list(PORTABLE)
    results = [(name, *run(name, args.notebooks, args.python)) for name in configs]
    print("\nfloat-variant summary:")
    for name, ok, tally, seconds in results:
        print(f"  {name:15s} {'ok    ' if ok else 'FAILED'} {tally} ({seconds:.0f} s)")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
