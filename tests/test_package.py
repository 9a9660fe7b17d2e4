"""`from bpkit import ...` gives a learner the whole documented toolkit."""
import importlib

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
