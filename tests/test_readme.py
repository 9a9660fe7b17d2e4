"""The README and docs/ stay true: the README lists every lesson (with a Colab link each), installs
the course under its own name, and CI runs the test command it gives (then the portability check);
every Binder, Colab, nbgitpuller and git link comes from pyproject's Repository URL; the instructor
guide (docs/teaching.md) documents the instructor commands and names only tests that exist; the
performance figures (docs/performance.md) are the recorded ones; the Makefile targets documented
exist, and the tools behind them check what they claim."""

import decimal
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEACHING = (ROOT / "docs" / "teaching.md").read_text(encoding="utf-8")
PERFORMANCE = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
DOCS = {"README.md": README, "docs/teaching.md": TEACHING, "docs/performance.md": PERFORMANCE}


def test_readme_lists_every_lesson():
    notebooks = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    assert notebooks, "solutions/ is empty"
    missing = [name for name in notebooks if f"`{name}`" not in README]
    assert not missing, f"add these lessons to the README's lesson table: {missing}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.strip() == "make test" for line in ci.splitlines()), ".ci/run must call `make test`"


INSTRUCTOR_COMMANDS = {"release", "grade"}


def test_readme_and_the_guide_document_every_cli_command():
    """A learner's command in the README, an instructor's in docs/teaching.md."""
    from bpkit.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    for command in subparsers.choices:
        if command == "setup-lab":  # internal: run by `make lab` / `make test` / Binder; `bpkit lab` does it too
            continue
        if command in INSTRUCTOR_COMMANDS:
            assert f"bpkit {command} " in TEACHING, f"document `bpkit {command}` in docs/teaching.md"
        else:
            assert f"`bpkit {command} [DIR]`" in README, f"document `bpkit {command} [DIR]` in the README"


def test_the_guide_documents_every_option_of_bpkit_grade():
    """An instructor finds every option of `bpkit grade` (--late-penalty, --override, ...) in the guide."""
    import argparse

    from bpkit.grade import add_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    options = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    assert "--override" in options and "--canvas-assignment" in options
    missing = [o for o in options if not re.search(re.escape(o) + r"(?![\w-])", TEACHING)]
    assert not missing, f"document these options of bpkit grade in docs/teaching.md: {missing}"


def test_readme_is_for_learners_first_and_short():
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert sections[0] == "Quick start", sections
    assert len(README.encode()) < 16_000, "keep the README short: instructor material goes to docs/teaching.md"
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "python3 -m venv" in quick_start.split("pip install", 1)[0], "the venv line comes before the install"
    for moved in ("## The grader's threat model", "## Grading a large class", "| bpkit layers + loss + optimizer |"):
        assert moved not in README and (moved in TEACHING or moved in PERFORMANCE), moved


# -- the course's name on the package index and its repository address -----------------------------


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _install_texts() -> dict[str, str]:
    """Every text a learner or instructor may copy an install line from."""
    texts = dict(DOCS)
    texts[".binder/postBuild"] = (ROOT / ".binder" / "postBuild").read_text(encoding="utf-8")
    for path in sorted((ROOT / "bpkit").rglob("*.py")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts[f"solutions/{path.name}"] = "\n".join("".join(c["source"]) for c in cells)
    return texts


def test_every_install_line_installs_the_course_by_its_own_name():
    """`pip install bpkit` gets an unrelated project from PyPI: every line names backprop-kit, the repository,
    a wheel or a local folder."""
    name = _project()["name"]
    assert name == "backprop-kit"
    for where, text in _install_texts().items():
        for line in re.findall(r"(?<!Do not `)pip install[^\n]*", text):  # all but the README's warning
            targets = [t.strip("\"'`),") for t in line.split()[2:] if not t.startswith("-")]
            for target in targets:
                if not target or target.startswith(("#", "(")):
                    break  # a comment follows
                assert not re.match(r"bpkit\b", target), f"{where}: `{line}` installs the unrelated `bpkit`"
    assert "Do not `pip install bpkit`" in README and "unrelated project" in README
    assert f'pip install "{name}[lab] @ git+{_project()["urls"]["Repository"]}"' in README


def test_lesson_first_cells_install_the_course_when_it_is_missing():
    name = _project()["name"]
    for folder in ("solutions", "lessons"):
        for path in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb")):
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
            assert 'if importlib.util.find_spec("bpkit") is None:' in first, f"{folder}/{path.name}"
            assert f"    %pip install --quiet {name}\n" in first, f"{folder}/{path.name}"


LINK = re.compile(r"https?://[^\s)`>\]\"']+|git\+https?://[^\s)`>\]\"']+")


def _links() -> list[tuple[str, str]]:
    return [(where, url) for where, text in DOCS.items() for url in LINK.findall(text)]


def test_every_course_link_is_built_from_the_repository_url():
    """Binder, Colab, nbgitpuller and pip-from-git links all come from pyproject's one Repository URL."""
    urls = _project()["urls"]
    repository = urls["Repository"]
    assert urls["Homepage"] == repository and urls["Issues"] == f"{repository}/issues"
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", repository)
    assert match, f"Repository must be a GitHub repository URL (Binder and Colab need one), not {repository}"
    owner_repo = f"{match[1]}/{match[2]}"
    encoded = urllib.parse.quote(repository, safe="")
    checked = {"binder": 0, "colab": 0, "nbgitpuller": 0, "git": 0}
    for where, url in _links():
        if "mybinder.org" in url:
            assert url.startswith(f"https://mybinder.org/v2/gh/{owner_repo}/main?"), (where, url)
            checked["binder"] += 1
        elif "colab.research.google.com" in url:
            assert url.startswith(f"https://colab.research.google.com/github/{owner_repo}/blob/main/lessons/"), (
                where,
                url,
            )
            assert (ROOT / "lessons" / url.rsplit("/", 1)[1]).exists(), (where, url)
            checked["colab"] += 1
        elif "git-pull?" in url:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            assert query["repo"] == [repository] and f"repo={encoded}&" in url, (where, url)
            assert query["urlpath"][0].startswith(f"lab/tree/{match[2]}/lessons/"), (where, url)  # the clone's folder
            checked["nbgitpuller"] += 1
        elif url.startswith("git+"):
            assert url == f"git+{repository}", (where, url)
            checked["git"] += 1
        elif "github.com/bpkit" in url or "ORG/REPO" in url:
            raise AssertionError(f"{where}: a placeholder repository: {url}")
    assert all(checked.values()), f"expected every kind of link at least once: {checked}"


def test_the_lesson_table_opens_every_lesson_on_colab():
    colab = {url.rsplit("/", 1)[1] for _, url in _links() if "colab.research.google.com" in url}
    assert colab == {p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")}


def test_readme_says_binder_work_is_lost_and_how_to_keep_it():
    binder = README.split("### Binder", 1)[1].split("\n#", 1)[0]
    assert "lost when the session ends" in binder and "*Download*" in binder and "upload" in binder


# -- the instructor guide and the performance figures ----------------------------------------------


def test_the_instructor_guide_names_only_tests_that_exist():
    """The threat-model table names the test that proves each row: each must be a test of the suite."""
    named = set(re.findall(r"`(test_\w+)`", TEACHING))
    assert len(named) >= 20, "the threat model's table lists its tests"
    defined = {
        m
        for path in (ROOT / "tests").glob("test_*.py")
        for m in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    assert named <= defined, f"docs/teaching.md names tests that do not exist: {sorted(named - defined)}"


def _row(table: str, label: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {label}"))
    return [cell.strip().strip("*") for cell in line.strip("|").split("|")]


def _two_places(value: float) -> str:
    """As a person rounds the recorded number: 0.145 -> 0.15 (a float's own formatting gives 0.14)."""
    return str(decimal.Decimal(str(value)).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP))


def test_the_performance_figures_are_the_recorded_ones():
    """docs/performance.md shows what the last benchmark run wrote into benchmarks/latest.json."""
    latest = json.loads((ROOT / "benchmarks" / "latest.json").read_text(encoding="utf-8"))
    labels = {
        "bpkit layers": "bpkit layers",
        "bpkit fit()": "bpkit `fit()`",
        "fused NumPy": "hand-fused NumPy",
        "PyTorch CPU": "PyTorch",
        "per-sample loop": "per-sample loop",
    }
    for dtype in ("float64", "float32"):
        table = PERFORMANCE.split(f"| {dtype} |", 1)[1].split("\n\n", 1)[0]
        for key, speed in latest["training"][dtype]["samples_per_s"].items():
            assert _row(table, labels[key])[1] == f"{speed:,.0f}", (dtype, key)
    grading = PERFORMANCE.split("| lesson | --jobs |", 1)[1].split("\n\n", 1)[0]
    for key, run in latest["grading"]["per_lesson"].items():  # "01/jobs1": {...}
        lesson, jobs = key.split("/jobs")
        cells = _row(grading, f"{lesson} | {jobs} |")
        # "–": a path that run did not time (--no-before)
        expected = [
            _two_places(run[k]) if k in run else "–"
            for k in ("before", "sandbox", "forkserver", "forkserver_kernel_cpu")
        ]
        assert cells[2:] == expected, key
    engine = latest["engine"]
    for speed in (engine["build_nodes_per_s"], engine["backward_nodes_per_s"]):
        assert f"{round(speed, -3):,.0f} nodes/s" in PERFORMANCE
    notebooks = latest["notebooks"]
    slowest = max(notebooks, key=notebooks.get)
    assert f"execute in {sum(notebooks.values()):.0f} s together" in PERFORMANCE
    assert f"longest:\n{slowest.removesuffix('.ipynb')}, {notebooks[slowest]:.1f} s" in PERFORMANCE
    grade_class = latest["grading"]["class"]["forkserver"]
    assert f"**{grade_class['seconds']:.0f} s**" in PERFORMANCE and f"{grade_class['peak_mb']:.0f} MB" in PERFORMANCE


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


@pytest.mark.parametrize(
    "percentage, note, ok",
    [
        ("100.0", "", True),
        ("75.0", "", False),
        ("100.0", "- cell 14 (`grid = ...`) raised ImportError: cannot import name 'backend2gui'", False),
    ],
)
def test_versions_check_wants_full_marks_and_no_cell_raising(tmp_path, percentage, note, ok):
    """make test-versions' grade step: 100% is not enough if a cell of the solution raised."""
    test_versions = _load_tool("test_versions")
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / "s.md").write_text(f"# Feedback\n\n{note}\n", encoding="utf-8")
    (tmp_path / "summary.csv").write_text(f"student,status,total,max_points,percentage\ns,graded,4,4,{percentage}\n")
    (tmp_path / "grades.csv").write_text("student,exercise,status\ns,weighted_sum,pass\n")
    verdict, detail = test_versions.grade_verdict(subprocess.CompletedProcess([], 0), tmp_path)
    assert verdict is ok, detail
