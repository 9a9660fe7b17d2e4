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
    assert version("bpkit") == bpkit.__version__


# -- packaging: what a learner's `pip install bpkit` gets ---------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_every_folder_of_python_files_is_a_listed_package():
    """pyproject lists its packages (to map lessons/ in); a new subpackage must not be left out of the wheel."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+; pyproject.toml reads the same on any Python")

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bpkit").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert folders <= listed, f"add these to [tool.setuptools] packages: {sorted(folders - listed)}"
    assert config["package-dir"]["bpkit.lessons"] == "lessons"


def test_core_dependencies_are_the_learners_and_extras_add_the_rest():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+; pyproject.toml reads the same on any Python")

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = lambda reqs: {re.split(r"[<>=\[; ]", r)[0] for r in reqs}  # noqa: E731
    assert names(project["dependencies"]) == {"numpy", "matplotlib", "ipywidgets", "tqdm"}
    extras = project["optional-dependencies"]
    assert {"jupyterlab", "ipykernel"} <= names(extras["lab"])
    assert {"nbformat", "nbclient", "ipykernel"} <= names(extras["instructor"])
    assert {"distributed"} <= names(extras["cluster"])  # bpkit grade --cluster
    assert "bpkit[lab,instructor,cluster]" in extras["test"]  # `make test` / `make lab` install .[test]


def test_core_modules_import_no_instructor_or_lab_package():
    """`bpkit lessons/progress/--help` and every exported name work in the core install (numpy, matplotlib,
    ipywidgets, tqdm): nothing imports nbformat, nbclient, jupyterlab or jupyter_server on the way."""
    import subprocess
    import sys

    code = (
        "import sys, bpkit, bpkit.checks, bpkit.course, bpkit.cli\n"
        "bpkit.cli.build_parser()\n"
        "[getattr(bpkit, name) for name in bpkit.__all__]\n"
        "print(sorted(m for m in ('nbformat', 'nbclient', 'jupyterlab', 'jupyter_server', 'nbconvert') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_carries_the_released_lessons(tmp_path):
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("bpkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.removeprefix("bpkit/lessons/") for n in names if n.startswith("bpkit/lessons/"))
    assert shipped == sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))
    assert "bpkit/datasets/digits.csv.gz" in names and "bpkit/course.py" in names


def test_binder_configuration_installs_the_learner_side_and_the_readme_links_to_it():
    import os

    post_build = ROOT / ".binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only when it is executable"
    text = post_build.read_text(encoding="utf-8")
    assert 'pip install --no-cache-dir ".[lab]"' in text and "bpkit setup-lab" in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "https://mybinder.org/v2/gh/" in readme and "/hub/user-redirect/git-pull?repo=" in readme
