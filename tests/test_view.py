"""bpkit/grading/view.py and limits.py without bubblewrap: the allow-list of mounts a sandbox gets, and
the caps a sandboxed process sets on itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpkit.grading import limits, view

ROOT = Path(__file__).resolve().parents[1]


def bound(mounts: list[str]) -> list[tuple[str, str]]:
    """(host path, sandbox path) of every --ro-bind / --bind in bubblewrap options."""
    return [(mounts[i + 1], mounts[i + 2]) for i, flag in enumerate(mounts) if flag in ("--ro-bind", "--bind")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("view")
    course = base / "course-copy"
    course.mkdir()
    return view.build_view(base / "stage", course), course


def test_the_view_binds_the_kernels_packages_the_course_copy_and_no_checkout(built):
    made, course = built
    sources = dict((target, source) for source, target in bound(made.mounts))
    assert sources[f"{view.SITE}/bpkit"] == str(course)  # bpkit is the answer-free copy, never the checkout
    names = {entry.name for entry in made.entries}
    assert "numpy" in names and "IPython" in names
    assert not names & {"pytest", "_pytest", "nbval", "jupyterlab", "bpkit"}  # only what a kernel needs
    env = Path(sys.prefix).resolve()  # `make` puts the venv inside the checkout: its packages are the kernel's
    for source, target in bound(made.mounts):  # nothing else of the course checkout, its tests or solutions
        resolved = Path(source).resolve()
        assert source == str(course) or resolved.is_relative_to(env) or not resolved.is_relative_to(ROOT), (
            source,
            target,
        )
    assert ("/etc/passwd" in sources) and Path(sources["/etc/passwd"]).read_text() == view.PASSWD


def test_a_lone_sandbox_gets_its_submission_read_only_and_capped_tmpfs(built, tmp_path):
    made, _ = built
    flags = view.sandbox_flags(made, 123_456, submission=tmp_path)
    assert (str(tmp_path), view.SOURCE_DIR) in bound(flags)
    assert flags.count("--size") == 2 and flags[flags.index("--size") + 1] == "123456"
    assert flags[flags.index("--proc") + 1] == "/proc"
    assert flags[-6:] == ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]


def test_the_fork_servers_template_gets_the_inbox_and_no_proc(built, tmp_path):
    made, _ = built
    flags = view.sandbox_flags(made, 1 << 20, inbox=tmp_path)
    assert "--proc" not in flags and (str(tmp_path), view.INBOX) in bound(flags)
    assert view.SOURCE_DIR not in flags


@pytest.mark.parametrize("memory_mb, tmpfs_mb", [(1024, 256), (8192, 512)])
def test_each_tmpfs_is_a_share_of_the_memory_cap(memory_mb, tmpfs_mb):
    assert limits.Limits(memory_mb * 2**20).tmpfs_bytes == tmpfs_mb * 2**20


def test_apply_caps_the_address_space_of_the_process():
    code = (
        "from bpkit.grading import limits\nlimits.apply(400 * 2**20)\n"
        "try:\n    bytearray(600 * 2**20)\nexcept MemoryError:\n    print('capped')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "capped", done.stderr
