"""bpkit.grading.sandbox without bubblewrap: the namespaces asked for, the environment passed on, the
work area and its clean-up after a killed run."""

from __future__ import annotations

import os
import tempfile

from bpkit.grading import sandbox


def test_a_student_process_gets_no_variable_of_the_graders_environment(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # a floating-point setting: passed on on purpose
    env = sandbox.kernel_env()
    assert "AWS_SECRET_ACCESS_KEY" not in env and env["OPENBLAS_CORETYPE"] == "Haswell"
    assert set(env) <= set(sandbox.KERNEL_ENV) | set(sandbox.PASS_THROUGH_ENV)
    assert env["HOME"] == sandbox.SANDBOX_HOME


def test_as_root_bubblewrap_keeps_its_rights_for_the_mounts_and_the_runner_drops_them(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    flags = sandbox.namespace_flags()
    assert {"--unshare-pid", "--unshare-net", "--unshare-ipc", "--new-session", "--die-with-parent"} <= set(flags)
    assert "--unshare-user" not in flags  # the runner becomes nobody itself (limits.drop_privileges)


def test_unprivileged_the_sandbox_is_nobody_in_a_user_namespace_with_no_capability(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    flags = sandbox.namespace_flags()
    assert {"--unshare-user", "--disable-userns", "--unshare-net"} <= set(flags)
    assert flags[flags.index("--uid") + 1] == "65534" and flags[flags.index("--cap-drop") + 1] == "ALL"
    assert "--cap-add" not in flags
    template = sandbox.namespace_flags(template=True)
    assert template[template.index("--cap-add") + 1] == "CAP_SYS_ADMIN"  # to give each child its namespaces


def test_a_work_area_left_by_a_killed_run_is_removed_by_the_next(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    alive = sandbox.WorkArea()
    stale = alive.path.parent / "run-killed"
    stale.mkdir()
    (stale / ".lock").touch()  # its lock file, which no live process holds any more
    following = sandbox.WorkArea()
    try:
        assert not stale.exists() and following.stale_removed == 1
        assert alive.path.exists(), "a live run's folder (its lock held) stays"
        assert oct(alive.path.parent.stat().st_mode & 0o777) == oct(0o700)
    finally:
        following.close()
        alive.close()
    assert not alive.path.exists()
