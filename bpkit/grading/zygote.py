"""The fork server's inside: a template process that has imported NumPy, matplotlib, IPython and
bpkit once, and forks a brand-new sandboxed process for each submission.

It runs in a bubblewrap sandbox whose mounts are a submission's (view.sandbox_flags), with one
difference: it keeps CAP_SYS_ADMIN (as root, or inside its own user namespace), which it needs to
give each child namespaces of its own. Started as `python -I -m bpkit.grading.zygote FD`. For each
request (a submission folder name in the inbox, and the two pipe ends of that submission's channel,
passed over a Unix socket), it forks; the child unshares a mount, PID and IPC
namespace and forks again, so the submission's process is PID 1 of a namespace of its own (nothing
it starts outlives it, and it sees no other process: there is no /proc at all). That process mounts
a fresh size-capped /tmp and /dev/shm, copies its own submission folder into /tmp, covers the
inbox (the other submissions), sets its resource limits, becomes the sandbox's user and drops every
capability for good (limits.drop_privileges), and only then serves the grader's requests. Nothing of
one submission, process or file, survives into the next: each child's mounts and processes die
with its namespaces, and the template itself never runs student code.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import sys

from bpkit.grading import limits
from bpkit.grading.runner import preload, serve
from bpkit.grading.view import INBOX, SANDBOX_HOME, WORKDIR

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x4000, 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _give_to_sandbox_user(folder: str) -> None:
    """As root, the copy is root's: hand it to the user the student's code runs as."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), limits.SANDBOX_UID, limits.SANDBOX_GID)
    os.chown(folder, limits.SANDBOX_UID, limits.SANDBOX_GID)


def _become_submission(request: dict, request_fd: int, reply_fd: int, hello_fd: int) -> None:
    """In the submission's own namespaces (PID 1): private files, limits, no privilege, serve."""
    # Tell the grader who we are: the kernel attaches our PID, as the grader's namespace sees it, to
    # this message (SCM_CREDENTIALS); nothing we could write in it is read.
    with socket.socket(fileno=hello_fd) as hello:
        hello.send(b"up")
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    size = int(request["tmpfs_bytes"])
    for target in ("/tmp", "/dev/shm"):  # fresh and size-capped: nothing of another child is here
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    shutil.copytree(os.path.join(INBOX, os.path.basename(request["id"])), WORKDIR, symlinks=True)
    os.makedirs(SANDBOX_HOME)
    _give_to_sandbox_user(WORKDIR)
    _give_to_sandbox_user(SANDBOX_HOME)
    _mount("tmpfs", INBOX, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4096,mode=755")  # hides the others
    limits.apply(int(request["memory_bytes"]), int(request["file_bytes"]))
    limits.drop_privileges()
    os.chdir(WORKDIR)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    serve(request_fd, reply_fd, None, None, preloaded=True)


def _child(control: socket.socket, request: dict, fds: list[int]) -> None:
    control.close()
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    pid = os.fork()
    if pid == 0:
        try:
            _become_submission(request, fds[0], fds[1], fds[2])
        except BaseException:  # before the student's code runs: the zygote's log says why
            import traceback

            traceback.print_exc()
        finally:
            os._exit(0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in fds:
        os.close(fd)
    try:
        os.waitpid(pid, 0)  # the submission's PID 1; when it ends, its whole namespace ends
    finally:
        os._exit(0)


def zygote_main(control_fd: int) -> None:
    preload(template=True)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    control.sendall(b'{"ready": true}')
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 65536, 3)
        except OSError:
            return
        if not message:
            return  # the grader closed the socket: the run is over
        try:
            request = json.loads(message)
            if len(fds) != 3:
                raise ValueError("a request brings three descriptors")
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            try:
                _child(control, request, fds)
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    zygote_main(int(sys.argv[1]))
