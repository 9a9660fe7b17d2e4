"""bpkit/grading/forkserver.py and zygote.py without bubblewrap: how the grader learns a child's PID (from
the kernel, never from what the child writes) and how a copy is handed to the sandbox's user."""

from __future__ import annotations

import os
import socket

import pytest

from bpkit.grading import forkserver, limits, zygote


def test_the_childs_pid_comes_from_the_kernel_not_from_its_message():
    hello, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    hello.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    pid = os.fork()
    if pid == 0:  # the child says "pid 1" in its message: only the credentials count
        try:
            theirs.send(b"1")
        finally:
            os._exit(0)
    try:
        assert forkserver._hello_pid(hello, 10) == pid
    finally:
        os.waitpid(pid, 0)
        hello.close()
        theirs.close()


def test_no_hello_within_the_time_is_none():
    hello, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with hello, theirs:
        assert forkserver._hello_pid(hello, 0.2) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands files to another user")
def test_the_submission_copy_is_handed_to_the_sandbox_user(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("1")
    (tmp_path / "sub" / "link").symlink_to("/etc/hostname")
    zygote._give_to_sandbox_user(str(tmp_path))
    for path in (tmp_path, tmp_path / "sub", tmp_path / "sub" / "data.csv", tmp_path / "sub" / "link"):
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (limits.SANDBOX_UID, limits.SANDBOX_GID), path
    assert os.stat("/etc/hostname").st_uid != limits.SANDBOX_UID  # the link itself, not its target
