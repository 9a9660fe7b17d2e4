"""`from bpkit import ...` gives a learner the whole documented toolkit."""

import importlib
import re

import pytest

import bpkit


@pytest.mark.parametrize("name", bpkit.__all__)
def test_every_exported_name_resolves(name):
    obj = getattr(bpkit, name)
    assert obj is not None
    if name != "checks":
        assert getattr(importlib.import_module(f"bpkit.{bpkit._WHERE[name]}"), name) is obj


def test_star_import_and_unknown_name():
    namespace = {}
    exec("from bpkit import *", namespace)
    assert "Sequential" in namespace and "fit" in namespace
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        bpkit.Nope  # noqa: B018 - the attribute lookup is what raises


def test_cli_help_lists_every_command(capsys):
    from bpkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("release", "grade", "setup-lab"):
        assert command in out


def test_version_is_single_sourced():
    """pyproject.toml takes the version from bpkit.__version__, so the installed metadata agrees."""
    from importlib.metadata import version
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'attr = "bpkit.__version__"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", bpkit.__version__)
    assert version(DISTRIBUTION) == bpkit.__version__


# -- packaging: what a learner's `pip install backprop-kit` gets -----------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
DISTRIBUTION = "backprop-kit"  # the name on the package index; `bpkit` there is an unrelated project


def _pyproject() -> dict:
    tomllib = pytest.importorskip(
        "tomllib", reason="tomllib is Python 3.11+; pyproject.toml reads the same on any Python"
    )
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_distribution_name_is_ours_everywhere():
    """pyproject's name, the name bpkit's messages install, and every extra that refers to the project itself."""
    from bpkit.course import DISTRIBUTION as in_messages

    project = _pyproject()["project"]
    assert project["name"] == DISTRIBUTION == in_messages
    for extra, requirements in project["optional-dependencies"].items():
        own = [r for r in requirements if r.startswith(("bpkit[", "backprop-kit["))]
        assert all(r.startswith(f"{DISTRIBUTION}[") for r in own), f"[{extra}] names the project as {own}"


def test_every_folder_of_python_files_is_a_listed_package():
    """pyproject lists its packages (to map lessons/ in); a new subpackage must not be left out of the wheel."""
    tomllib = pytest.importorskip(
        "tomllib", reason="tomllib is Python 3.11+; pyproject.toml reads the same on any Python"
    )

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "bpkit").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert folders <= listed, f"add these to [tool.setuptools] packages: {sorted(folders - listed)}"
    assert config["package-dir"]["bpkit.lessons"] == "lessons"
    assert config["package-dir"]["bpkit.solutions"] == "solutions"


def test_core_dependencies_are_the_learners_and_extras_add_the_rest():
    project = _pyproject()["project"]
    names = lambda reqs: {re.split(r"[<>=\[; ]", r)[0] for r in reqs}  # noqa: E731
    assert names(project["dependencies"]) == {"numpy", "matplotlib", "ipywidgets", "tqdm"}
    extras = project["optional-dependencies"]
    assert {"jupyterlab", "ipykernel"} <= names(extras["lab"])
    assert {"nbformat", "nbclient", "ipykernel"} <= names(extras["instructor"])
    assert {"distributed"} <= names(extras["cluster"])  # bpkit grade --cluster
    assert f"{DISTRIBUTION}[lab,instructor,cluster]" in extras["test"]  # `make test` / `make lab` install .[test]


def test_core_modules_import_no_instructor_or_lab_package():
    """`bpkit lessons/progress/--help` and every exported name work in the core install (numpy, matplotlib,
    ipywidgets, tqdm): nothing imports nbformat, nbclient, jupyterlab or jupyter_server on the way."""
    import subprocess
    import sys

    code = (
        "import sys, bpkit, bpkit.checks, bpkit.course, bpkit.cli\n"
        "bpkit.cli.build_parser()\n"
        "[getattr(bpkit, name) for name in bpkit.__all__]\n"
        "print(sorted(m for m in ('nbformat', 'nbclient', 'jupyterlab', 'jupyter_server', 'nbconvert') if m in "
        "sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The course's wheel, built once for this module (offline: no build isolation)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(folder)],
        check=True,
        capture_output=True,
    )
    (built,) = folder.glob("backprop_kit-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_the_released_lessons_and_the_solutions(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for kind in ("lessons", "solutions"):
        shipped = sorted(n.removeprefix(f"bpkit/{kind}/") for n in names if n.startswith(f"bpkit/{kind}/"))
        assert shipped == sorted(p.name for p in (ROOT / kind).glob("*.ipynb")), kind
    assert "bpkit/datasets/digits.csv.gz" in names and "bpkit/course.py" in names


@pytest.fixture(scope="module")
def jupyter_without_the_course(wheel, tmp_path_factory):
    """A fresh venv with only a kernel and nbclient (as on Colab or a bare Jupyter), and lesson 01 run in it.

    The lesson's first cell must install the course itself: the wheel is reachable through
    PIP_FIND_LINKS (as a published release would be through the index), its dependencies through
    this machine's usual index. Returns (venv, executed notebook, seconds taken).
    """
    import os
    import subprocess
    import sys
    import time

    import nbformat

    home = tmp_path_factory.mktemp("colab")
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)  # the base Python's
    python = venv / "bin" / "python"
    kernel = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "ipykernel", "nbclient", "nbformat"], capture_output=True, text=True
    )
    if kernel.returncode != 0:
        pytest.skip(f"no package index reachable to install a kernel into a fresh venv: {kernel.stderr[-300:]}")
    assert subprocess.run([str(python), "-c", "import bpkit"], cwd=home, capture_output=True).returncode != 0
    links = " ".join(filter(None, [str(wheel.parent), os.environ.get("PIP_FIND_LINKS")]))
    env = {**os.environ, "PIP_FIND_LINKS": links, "MPLBACKEND": "Agg"}
    for name in ("VIRTUAL_ENV", "PYTHONPATH"):  # nothing of this test's own environment may leak in
        env.pop(name, None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    executed = home / "01_neurons.ipynb"
    driver = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=240, kernel_name='python3').execute()\n"  # errors stop it unless tagged
        "nbformat.write(nb, sys.argv[2])\n"
    )
    start = time.perf_counter()
    run = subprocess.run(
        [str(python), "-c", driver, str(ROOT / "lessons" / "01_neurons.ipynb"), str(executed)],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    assert run.returncode == 0, f"lesson 01 stopped before its end:\n{run.stderr[-3000:]}"
    return venv, nbformat.read(executed, as_version=4), seconds


@pytest.mark.slow
def test_lesson_01_installs_the_course_from_its_first_cell_and_runs_to_the_end(jupyter_without_the_course):
    """Every cell ran; the first one installed the course; every check cell waits for its exercise."""
    import subprocess

    from bpkit.notebook import CHECK_TAG

    venv, nb, seconds = jupyter_without_the_course
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a cell did not run"
    first = "".join(o.get("text", "") for o in code[0].outputs if o.output_type == "stream")
    assert "%pip install" in code[0].source and "restart the kernel" in first  # pip ran (its own closing note)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import bpkit; print(bpkit.__file__)"],
        cwd=venv,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert installed.startswith(str(venv)), installed
    checks = [c for c in code if any(t.startswith(CHECK_TAG) for t in c.metadata.get("tags", []))]
    assert len(checks) == 3
    for cell in checks:
        text = " ".join(f"{o.get('evalue', '')} {o.get('text', '')}" for o in cell.outputs)
        assert "not implemented yet" in text, (cell.source, text)
    print(f"lesson 01 in a fresh Jupyter, the course installed by its first cell: {seconds:.1f} s")


@pytest.mark.slow
def test_a_fresh_install_from_the_wheel_gives_14_lessons_and_14_solutions(jupyter_without_the_course, tmp_path):
    import subprocess

    venv = jupyter_without_the_course[0]
    bpkit_command = str(venv / "bin" / "bpkit")
    for command in ("lessons", "solutions"):
        out = subprocess.run(
            [bpkit_command, command, str(tmp_path / command)], capture_output=True, text=True, check=True
        ).stdout
        assert f"14 {command[:-1]} notebooks copied" in out
        assert sorted(p.name for p in (tmp_path / command).glob("*.ipynb")) == sorted(
            p.name for p in (ROOT / command).glob("*.ipynb")
        )
    # The grader's sandbox gets a copy of the installed package: never with the solutions in it.
    code = (
        "import pathlib, sys; from bpkit.grading.course_copy import build_course_copy as b; "
        "print(sorted(p.name for p in b(pathlib.Path(sys.argv[1])).iterdir()))"
    )
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, str(tmp_path / "copy")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'lessons'" in listing and "solutions" not in listing


def test_binder_configuration_installs_the_learner_side_and_the_readme_links_to_it():
    import os

    post_build = ROOT / ".binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only when it is executable"
    text = post_build.read_text(encoding="utf-8")
    assert 'pip install --no-cache-dir ".[lab]"' in text and "bpkit setup-lab" in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "teaching.md").read_text(encoding="utf-8")
    assert "https://mybinder.org/v2/gh/" in readme and "/hub/user-redirect/git-pull?repo=" in guide
