"""The fork server's client: one preloaded template per run, a fresh sandboxed child per submission.

The template (`zygote.py`, inside a sandbox whose mounts come from view.sandbox_flags like every
other) has NumPy, matplotlib, IPython and bpkit imported; for each submission the grader moves the
submission's folder into the template's inbox and asks for a child, which makes its own namespaces,
/tmp and /dev/shm, covers the inbox, drops to the sandbox's user and serves the channel.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from bpkit.grading.limits import MAX_FILE_BYTES, Limits
from bpkit.grading.sandbox import BWRAP, kernel_env, namespace_flags
from bpkit.grading.view import PYTHON, View, sandbox_flags

START_SECONDS = 60.0
HELLO_SECONDS = 20.0


class ForkServerUnavailable(RuntimeError):
    """The template could not start or could not make a child here; grading falls back to one
    bubblewrap sandbox per submission."""


class Forked:
    """What Channel and Sandbox need of a process, for a child of the fork server."""

    def __init__(self, pid: int, stdin, stdout):
        self.pid, self.stdin, self.stdout = pid, stdin, stdout

    def poll(self):
        try:
            os.kill(self.pid, 0)
            with open(f"/proc/{self.pid}/stat") as handle:
                return 0 if handle.read().split(") ", 1)[1].startswith("Z") else None
        except (OSError, IndexError):
            return 0

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 0)
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)


class ForkServer:
    """The grader's end of the template: start it once, then `spawn()` one child per submission."""

    def __init__(self, area: Path, view: View, limits: Limits):
        self.inbox = area / "inbox"
        self.inbox.mkdir(mode=0o755)
        self.log_path = area / "zygote.log"
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        options = [
            *namespace_flags(template=True),
            *sandbox_flags(view, limits.tmpfs_bytes, inbox=self.inbox),
            "--clearenv",
            *[item for key, value in kernel_env().items() for item in ("--setenv", key, value)],
        ]
        args_path = area / "zygote.args"
        args_path.write_bytes(b"".join(os.fsencode(o) + b"\0" for o in options))
        args_fd = os.open(args_path, os.O_RDONLY)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [BWRAP, "--args", str(args_fd), PYTHON, "-I", "-m", "bpkit.grading.zygote", str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            pass_fds=(args_fd, theirs.fileno()),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd="/",
            start_new_session=True,
        )
        os.close(args_fd)
        theirs.close()
        ours.settimeout(START_SECONDS)
        try:
            ready = ours.recv(4096)
        except OSError:
            ready = b""
        ours.settimeout(None)
        if b"ready" not in ready:
            self.close()
            raise ForkServerUnavailable(f"the fork server did not start: {_tail(self.log_path)}")

    def spawn(self, workdir: Path, limits: Limits) -> tuple[Forked, str]:
        """A new child for the submission whose files are in `workdir`; returns it and its PID namespace."""
        name = workdir.name
        target = self.inbox / name
        shutil.move(str(workdir), target)
        os.chmod(target, 0o755)
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        # The child says hello on this socket as its first act; the kernel stamps the message with
        # the child's PID in our namespace (SO_PASSCRED), so no search of /proc is needed.
        hello, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        hello.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        message = json.dumps(
            {
                "id": name,
                "memory_bytes": limits.memory_bytes,
                "file_bytes": MAX_FILE_BYTES,
                "tmpfs_bytes": limits.tmpfs_bytes,
            }
        ).encode()
        try:
            with self._lock:
                socket.send_fds(self.control, [message], [request_r, reply_w, theirs.fileno()])
        except OSError as exc:
            for fd in (request_r, request_w, reply_r, reply_w):
                os.close(fd)
            hello.close()
            theirs.close()
            shutil.move(str(target), workdir)
            raise ForkServerUnavailable(f"the fork server is gone ({exc})") from None
        os.close(request_r)
        os.close(reply_w)
        theirs.close()
        found = _hello_pid(hello, HELLO_SECONDS)
        hello.close()
        stdin, stdout = os.fdopen(request_w, "wb"), os.fdopen(reply_r, "rb", buffering=0)
        if found is None:
            stdin.close()
            stdout.close()
            shutil.move(str(target), workdir)  # back where it was: the submission is graded another way
            raise ForkServerUnavailable(f"the fork server's child did not appear: {_tail(self.log_path)}")
        try:
            namespace = os.readlink(f"/proc/{found}/ns/pid")
        except OSError:
            namespace = None
        return Forked(found, stdin, stdout), namespace

    def release(self, workdir_name: str) -> None:
        shutil.rmtree(self.inbox / workdir_name, ignore_errors=True)

    def close(self) -> None:
        try:
            self.control.close()
        except OSError:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.kill()
        self.process.wait()
        self._log.close()


def _hello_pid(hello, seconds: float) -> int | None:
    """The sender's PID from the first message on `hello` (SCM_CREDENTIALS), None after `seconds`."""
    hello.settimeout(seconds)
    try:
        _, ancillary, _, _ = hello.recvmsg(16, socket.CMSG_SPACE(_UCRED.size))
    except OSError:  # timed out, or the socket broke
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= _UCRED.size:
            pid = _UCRED.unpack_from(data)[0]
            return pid if pid > 0 else None
    return None


_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


def _tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return " / ".join(lines[-3:])[:500] or "empty log"
