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
        bpkit.Nope


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
