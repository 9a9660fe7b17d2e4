"""The README stays true: it lists every lesson, and CI runs the test command it gives (then the
portability check); the Makefile targets it documents exist, and the tools behind them check what
they claim."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_lists_every_lesson():
    notebooks = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    assert notebooks, "solutions/ is empty"
    missing = [name for name in notebooks if f"`{name}`" not in README]
    assert not missing, f"add these lessons to the README's lesson table: {missing}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.strip() == "make test" for line in ci.splitlines()), ".ci/run must call `make test`"


def test_readme_documents_every_cli_command():
    from bpkit.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    for command in subparsers.choices:
        if command != "setup-lab":  # internal: run by `make lab` / `make test`
            assert f"bpkit {command}" in README, f"document `bpkit {command}` in the README"


def _fake_make(tmp_path, fail_on=""):
    """A `make` on PATH that records its arguments, failing for the target `fail_on`."""
    log = tmp_path / "make.log"
    fake = tmp_path / "bin" / "make"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$*" != "{fail_on}" ]\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    return env, log


def test_ci_runs_make_test_then_the_portability_check(tmp_path):
    env, log = _fake_make(tmp_path)
    subprocess.run([str(ROOT / ".ci" / "run")], env=env, check=True, capture_output=True)
    assert log.read_text().splitlines() == ["test", "test-portable"]


@pytest.mark.parametrize("failing", ["test", "test-portable"])
def test_ci_fails_when_a_step_fails_and_still_runs_both(tmp_path, failing):
    env, log = _fake_make(tmp_path, fail_on=failing)
    assert subprocess.run([str(ROOT / ".ci" / "run")], env=env, capture_output=True).returncode != 0
    assert log.read_text().splitlines() == ["test", "test-portable"]


def test_readme_documents_the_extra_test_targets():
    for target in ("make test-portable", "make test-versions"):
        assert target in README, f"document `{target}` in the README"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("test-portable", "test-versions", "sandbox-deps"):
        assert f"\n{target}:" in makefile, f"the Makefile has no `{target}` target"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_test_installs_bubblewrap_and_make_lab_does_not():
    def dry_run(target):
        return subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    assert "install -y -qq bubblewrap" in dry_run("test")
    assert "bubblewrap" not in dry_run("lab")


def test_simd_off_configuration_really_switches_numpy_features_off():
    """The features tools/float_variants.py disables are dispatched ones NumPy accepts and turns off."""
    float_variants = _load_tool("float_variants")
    env = float_variants.config_env("numpy-simd-off", sys.executable)
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    if "NPY_DISABLE_CPU_FEATURES" not in env:
        pytest.skip("this CPU has no dispatched SIMD features to switch off")
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import numpy, os\n"
        "try:\n"
        "    from numpy._core._multiarray_umath import __cpu_features__ as f\n"
        "except ImportError:\n"
        "    from numpy.core._multiarray_umath import __cpu_features__ as f\n"
        "print(' '.join(n for n in os.environ['NPY_DISABLE_CPU_FEATURES'].split() if f.get(n)))\n"
    )
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"still enabled: {proc.stdout}"
    assert float_variants.config_env("blas2threads", sys.executable)["OPENBLAS_NUM_THREADS"] == "2"


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("percentage, note, ok", [
    ("100.0", "", True),
    ("75.0", "", False),
    ("100.0", "- cell 14 (`grid = ...`) raised ImportError: cannot import name 'backend2gui'", False),
])
def test_versions_check_wants_full_marks_and_no_cell_raising(tmp_path, percentage, note, ok):
    """make test-versions' grade step: 100% is not enough if a cell of the solution raised."""
    test_versions = _load_tool("test_versions")
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / "s.md").write_text(f"# Feedback\n\n{note}\n", encoding="utf-8")
    (tmp_path / "summary.csv").write_text(f"student,status,total,max_points,percentage\ns,graded,4,4,{percentage}\n")
    (tmp_path / "grades.csv").write_text("student,exercise,status\ns,weighted_sum,pass\n")
    verdict, detail = test_versions.grade_verdict(subprocess.CompletedProcess([], 0), tmp_path)
    assert verdict is ok, detail
