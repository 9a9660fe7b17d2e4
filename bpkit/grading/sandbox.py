"""One sandboxed process: bubblewrap, a memory watchdog over its processes and files, and clean-up.

What the sandbox sees is decided in `view.py` (an allow-list); the limits and the drop to an
unprivileged user it sets on itself are in `limits.py`; the fork server, which makes sandboxes by
forking a preloaded template, is in `forkserver.py`. Here: the namespaces (no network, no other
process, a new session), the process itself and its watchdog. Everything a sandbox starts dies with
it: killing bwrap ends the PID namespace and every process in it. The memory cap covers the whole
process tree and the sandbox's tmpfs files: a watchdog sums the resident memory of every process in
the sandbox's PID namespace and the pages of its /tmp and /dev/shm, and kills the sandbox above the
cap (RLIMIT_AS still gives a single oversized allocation a MemoryError first).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bpkit.grading.limits import MAX_FILE_BYTES, MAX_PROCESSES, SANDBOX_GID, SANDBOX_UID, Limits
from bpkit.grading.view import PYTHON, SANDBOX_HOME, SOURCE_DIR, WORKDIR, View, sandbox_flags

BWRAP = "bwrap"
INSTALL_HINT = "sudo apt-get install bubblewrap   (Debian/Ubuntu; `make test` does it for you)"
WATCH_SECONDS = 0.05
# Environment of a student process: nothing of the grader's environment is passed on.
KERNEL_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": SANDBOX_HOME,
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
    "TQDM_DISABLE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
PASS_THROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NPY_DISABLE_CPU_FEATURES")


def kernel_env() -> dict[str, str]:
    """The environment of a student's process: KERNEL_ENV and the floating-point settings passed on."""
    return {**KERNEL_ENV, **{k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}}


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here; the message says what to do."""


def check_bwrap() -> None:
    """Raise SandboxUnavailable unless a trivial command runs under the flags the grader uses."""
    if shutil.which(BWRAP) is None:
        raise SandboxUnavailable(
            f"bubblewrap (bwrap) is not installed, and the grader runs every submission in it.\n"
            f"  install it:  {INSTALL_HINT}\n"
            f"  or, only for notebooks you trust, grade without a sandbox: --no-sandbox"
        )
    probe = subprocess.run([BWRAP, *namespace_flags(), "--ro-bind", "/", "/", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot create its namespaces here ({probe.stderr.strip()[:300]}); "
            f"run the grader where user namespaces are allowed, or (trusted notebooks only) use --no-sandbox"
        )


def namespace_flags(template: bool = False) -> list[str]:
    """The namespaces of a sandbox: no network, no other process, no shared IPC, a new session.

    As root, bubblewrap runs as root (it can then mount a Python that lives under /root) and the
    sandbox's first process becomes SANDBOX_UID itself (limits.drop_privileges) before any student
    code. Otherwise a user namespace maps the sandbox's user onto the grader's; the template keeps
    the two capabilities it needs to give each child namespaces of its own."""
    flags = [
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--new-session",
        "--die-with-parent",
    ]
    if os.geteuid() == 0:
        return flags
    caps = ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"] if template else []
    return [
        *flags,
        "--unshare-user",
        "--disable-userns",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_GID),
        "--cap-drop",
        "ALL",
        *caps,
    ]


# -- work folders ---------------------------------------------------------------------------------


class WorkArea:
    """The grader's private folder for one run: $TMPDIR/bpkit-grade/run-*, locked while in use.

    A run killed with SIGKILL cannot clean up after itself, so each run first removes the run
    folders whose lock nobody holds any more.
    """

    def __init__(self):
        root = Path(tempfile.gettempdir()) / f"bpkit-grade-{os.getuid()}"
        root.mkdir(mode=0o700, exist_ok=True)
        os.chmod(root, 0o700)
        self.stale_removed = _remove_stale(root)
        self.path = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        self._lock = open(self.path / ".lock", "w")  # noqa: SIM115 - held for the whole run
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()


def _remove_stale(root: Path) -> int:
    removed = 0
    for folder in root.glob("run-*"):
        try:
            with open(folder / ".lock") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it: the run is dead
        except BlockingIOError:
            continue  # a live run
        except OSError:
            pass  # no lock file: a folder of a run that died while creating it
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


# -- one sandboxed process ------------------------------------------------------------------------


_ACTIVE: set[Sandbox] = set()  # every sandbox still running, so Ctrl-C can end them all at once


def kill_all() -> None:
    for box in list(_ACTIVE):
        box.kill("the grading run was interrupted")


class Sandbox:
    """One sandboxed runner process; `kill()` ends it and everything it started."""

    def __init__(
        self,
        limits: Limits,
        log_path: Path,
        *,
        view: View | None = None,
        submission: Path | None = None,
        forked: tuple | None = None,
    ):
        """A sandbox of its own for the `submission` folder (`view` None: no sandbox, --no-sandbox), or
        the watchdog of a fork-server child that is already running (`forked`: (process, namespace))."""
        self.limits = limits
        self.killed_for: str | None = None
        self.peak_bytes = 0
        self._log = None
        self.forked = forked is not None
        if forked is not None:
            self.process, self.pid_namespace = forked
            self._start_watchdog()
            return
        env = kernel_env()
        runner = [
            "-I",
            "-m",
            "bpkit.grading.runner",
            "--memory",
            str(limits.memory_bytes),
            "--fsize",
            str(MAX_FILE_BYTES),
        ]
        self.pid_namespace: str | None = None
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        if view is None:  # --no-sandbox: the grader's Python, in the submission's folder, with the grader's rights
            self.process = subprocess.Popen(
                [sys.executable, *runner],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env={**env, "HOME": str(submission)},
                cwd=str(submission),
                start_new_session=True,
            )
            self._start_watchdog()
            return
        info_r, info_w = os.pipe()
        options = [
            *namespace_flags(),
            *sandbox_flags(view, limits.tmpfs_bytes, submission=submission),
            "--clearenv",
            *[
                item
                for key, value in {
                    **env,
                    "BPKIT_SUBMISSION_SOURCE": SOURCE_DIR,
                    "BPKIT_SUBMISSION_DIR": WORKDIR,
                }.items()
                for item in ("--setenv", key, value)
            ],
            "--info-fd",
            str(info_w),
        ]
        # The options go through a file, not the command line: /proc/1/cmdline in the sandbox then
        # shows `bwrap --args N`, not the host paths it mounts.
        args_path = log_path.with_suffix(".args")
        args_path.write_bytes(b"".join(os.fsencode(o) + b"\0" for o in options))
        args_fd = os.open(args_path, os.O_RDONLY)
        try:
            self.process = subprocess.Popen(
                [BWRAP, "--args", str(args_fd), PYTHON, *runner, "--sandboxed"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                pass_fds=(info_w, args_fd),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                cwd="/",
                start_new_session=True,
            )
        finally:
            os.close(info_w)
            os.close(args_fd)
        self.pid_namespace = _read_pid_namespace(info_r)
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()
        _ACTIVE.add(self)

    # The runner's host PID, for interrupts: the process running python inside the namespace.
    def runner_pids(self) -> list[int]:
        if self.pid_namespace is None or self.forked:
            return [self.process.pid]
        return [pid for pid, _ in _namespace_processes(self.pid_namespace) if _is_runner(pid)]

    def interrupt(self) -> None:
        for pid in self.runner_pids():
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass

    def alive(self) -> bool:
        return self.process.poll() is None

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_SECONDS):
            if self.process.poll() is not None:
                return
            if self.pid_namespace is not None:
                processes = _namespace_processes(self.pid_namespace)
            else:
                processes = [(self.process.pid, _rss(self.process.pid))]
            total = sum(rss for _, rss in processes) + (_tmpfs_bytes(processes[0][0]) if processes else 0)
            self.peak_bytes = max(self.peak_bytes, total)
            if total > self.limits.memory_bytes:
                self.kill(
                    f"its processes and its files in /tmp and /dev/shm used more than the "
                    f"{self.limits.memory_bytes // 2**20} MB memory cap"
                )
                return
            if len(processes) > MAX_PROCESSES:
                self.kill(f"it started more than {MAX_PROCESSES} processes")
                return

    def kill(self, reason: str | None = None) -> None:
        if reason and self.killed_for is None:
            self.killed_for = reason
        if self.process.poll() is None:
            if not self.forked:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self.process.kill()
            except OSError:
                pass
        if self.pid_namespace is not None:  # belt and braces: nothing of the namespace survives
            for pid, _ in _namespace_processes(self.pid_namespace):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def cpu_seconds(self) -> float:
        """CPU time used so far by the submission's main process and the children it waited for."""
        total = 0.0
        for pid in self.runner_pids():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(") ", 1)[1].split()
                total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total

    def close(self) -> None:
        self.cpu = self.cpu_seconds()
        self.kill()
        _ACTIVE.discard(self)
        self._stop.set()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self._log is not None:
            self._log.close()


def _read_pid_namespace(fd: int) -> str | None:
    """bwrap writes {"child-pid": ..., "pid-namespace": ...} once its namespaces exist."""
    data = b""
    with os.fdopen(fd, "rb") as info:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = info.read(4096)
            if not chunk:
                break
            data += chunk
    try:
        return f"pid:[{json.loads(data)['pid-namespace']}]"
    except (ValueError, KeyError, TypeError):
        return None


def _namespace_processes(namespace: str) -> list[tuple[int, int]]:
    """(pid, resident bytes) of every process whose PID namespace is `namespace`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/ns/pid") == namespace:
                found.append((int(entry.name), _rss(int(entry.name))))
        except OSError:
            continue
    return found


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tmpfs_bytes(pid: int) -> int:
    """Bytes held by the files in the sandbox's /tmp and /dev/shm, seen through one of its processes."""
    total = 0
    for mount in ("tmp", "dev/shm"):
        try:
            stats = os.statvfs(f"/proc/{pid}/root/{mount}")
        except OSError:
            continue
        total += (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    return total


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _is_runner(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"bpkit.grading.runner" in handle.read()
    except OSError:
        return False
