"""The README stays true: it lists every lesson, and CI runs the test command it gives."""
from pathlib import Path

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
