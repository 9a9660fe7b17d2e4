"""The sandbox of one submission: bubblewrap, a process-tree memory watchdog, and clean-up.

What the student's process sees (see the threat model in docs/teaching.md):
- the system and the Python environment read-only, as an unprivileged user with no capabilities,
  no network, no other process (own PID namespace), no new user namespaces, a new session (no
  terminal to inject into);
- a private writable copy of its own submission folder as the working directory, inside a
  private, size-capped /tmp (a tmpfs: nothing the student writes reaches the grader's disk), and a
  size-capped /dev/shm;
- not the --out folder, not the folders of any submission of the run, not the grader's work
  folders, not the course checkout's solutions or tests: each is covered by an empty tmpfs;
- bpkit as installed, except `bpkit.checks`: a stub that has the catalogue but no reference
  answers, a digits file without the capstone's held-out images, and no solution notebooks.
Everything it starts dies with it: killing bwrap ends the PID namespace and every process in it.
The memory cap covers the whole process tree: a watchdog sums the resident memory of every
process in the sandbox's PID namespace and kills the sandbox above the cap (RLIMIT_AS still gives
a single oversized allocation a MemoryError first).
"""
from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

BWRAP = "bwrap"
INSTALL_HINT = "sudo apt-get install bubblewrap   (Debian/Ubuntu; `make test` does it for you)"
TMPFS_BYTES = 512 * 2**20  # the sandbox's /tmp (which holds the working copy) and /dev/shm
MAX_FILE_BYTES = 512 * 2**20  # RLIMIT_FSIZE: the largest file the submission may write
MAX_PROCESSES = 256  # more than this in one sandbox is a fork bomb
WATCH_SECONDS = 0.05
SANDBOX_HOME = "/tmp/home"
WORKDIR = "/tmp/submission"  # the runner copies SOURCE_DIR here, inside the size-capped /tmp
SOURCE_DIR = "/tmp/.submission-source"
# Set on the host before exec'ing bwrap; inherited by everything in the sandbox.
LAUNCHER = (
    "import os, resource, sys\n"
    "limit, fsize = int(sys.argv[1]), int(sys.argv[2])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)
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
    probe = subprocess.run([BWRAP, *_namespace_flags(), "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot create its namespaces here ({probe.stderr.strip()[:300]}); "
            f"run the grader where user namespaces are allowed, or (trusted notebooks only) use --no-sandbox"
        )


def _namespace_flags() -> list[str]:
    return [
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--disable-userns", "--uid", "65534", "--gid", "65534",
        "--cap-drop", "ALL", "--new-session", "--die-with-parent",
    ]


# -- the course files a sandbox gets instead of the real ones ------------------------------------

STUB_CHECKS = '''"""bpkit.checks while grading: the catalogue without the reference answers.

The grader runs the checks itself, outside this sandbox. Calling a check here does nothing, and
the checkers' modules (their reference answers) do not exist in the sandbox.
"""
import json as _json
from pathlib import Path as _Path
from types import SimpleNamespace as _Entry


class CheckFailure(AssertionError):
    """The same exception type as in the course, so notebooks that catch it still run."""


class _Check:
    def __init__(self, entry):
        self.__dict__.update(vars(entry))

    def __call__(self, fn):
        print(f"({self.id} is checked by the grader)")


def load_exercises(path):
    """While grading the grader has loaded the course's own exercises already."""
    return []


EXERCISES = {
    item["id"]: _Check(_Entry(**item))
    for item in _json.loads((_Path(__file__).parent / "catalogue.json").read_text(encoding="utf-8"))
}
globals().update(EXERCISES)
'''
STUB_LESSON13 = '''"""The capstone's training data (the held-out images are not in this sandbox)."""
from bpkit.data import load_digits


def capstone_training_data():
    """The capstone's training digits: X (1438, 64) raw pixels 0..16, y (1438,) int labels 0..9."""
    return load_digits()
'''


def build_course_copy(dest: Path) -> Path:
    """A copy of the installed bpkit package with the stub checks; returns the package folder."""
    import bpkit
    from bpkit.checks import EXERCISES, lesson13

    source = Path(bpkit.__file__).resolve().parent
    package = dest / "bpkit"
    # A wheel install also ships the executed solutions (bpkit/solutions/, for `bpkit solutions`): not in here.
    shutil.copytree(source, package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "checks", "datasets", "solutions"))
    checks = package / "checks"
    checks.mkdir()
    for name in ("_harness.py", "inputs.py"):  # observing a call, and the functions cases pass: no answers
        shutil.copyfile(source / "checks" / name, checks / name)
    (checks / "__init__.py").write_text(STUB_CHECKS, encoding="utf-8")
    (checks / "lesson13.py").write_text(STUB_LESSON13, encoding="utf-8")
    catalogue = [
        {"id": e.id, "lesson": e.lesson, "points": e.points, "description": e.description} for e in EXERCISES.values()
    ]
    (checks / "catalogue.json").write_text(json.dumps(catalogue), encoding="utf-8")
    datasets = package / "datasets"
    datasets.mkdir()
    for extra in (source / "datasets").iterdir():
        if extra.name != "digits.csv.gz" and extra.is_file():
            shutil.copyfile(extra, datasets / extra.name)
    X, y = lesson13.capstone_training_data()  # every digit except the capstone's held-out ones
    lines = "".join(",".join(f"{v:g}" for v in row) + f",{label}\n" for row, label in zip(X, y))
    with gzip.open(datasets / "digits.csv.gz", "wt", encoding="ascii") as handle:
        handle.write(lines)
    return package


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


@dataclass
class Limits:
    memory_bytes: int


def _python_paths() -> list[Path]:
    """Where the grader's Python and its packages live: the sandbox must see these (read-only)."""
    found = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent]
    for entry in sys.path[1:]:  # [0] is the folder the grader was started from, not an install
        if entry and ("site-packages" in entry or "dist-packages" in entry) and Path(entry).is_dir():
            found.append(Path(entry))
    return [p.resolve() for p in found]


def _needed_paths() -> list[Path]:
    import bpkit

    return [*_python_paths(), Path(bpkit.__file__).resolve().parent]


def paths_under_tmp() -> list[Path]:
    """The Python and the environment the grader runs from, where they live under /tmp (a clone or a
    venv in /tmp, as on some CI machines): the sandbox's /tmp is a new tmpfs, so they are put back."""
    done: list[Path] = []
    for path in sorted(_python_paths(), key=lambda p: len(p.parts)):
        if Path("/tmp") in path.parents and not any(d == path or d in path.parents for d in done):
            done.append(path)
    return done


def _rebind_under_tmp() -> list[str]:
    return [flag for path in paths_under_tmp() for flag in ("--ro-bind", str(path), str(path))]


def _hide_flags(folders: list[Path]) -> list[str]:
    """Cover each folder with an empty tmpfs; where it holds Python or bpkit, cover its other entries."""
    needed = _needed_paths()
    flags: list[str] = []
    seen: set[Path] = set()
    for folder in folders:
        try:
            folder = folder.resolve()
        except OSError:
            continue
        if folder in seen or not folder.is_dir() or folder == Path("/"):
            continue
        seen.add(folder)
        if not any(n == folder or folder in n.parents for n in needed):
            flags += ["--tmpfs", str(folder)]
            continue
        for entry in folder.iterdir():
            if any(n == entry or entry in n.parents for n in needed):
                continue
            if entry.is_symlink():
                continue
            if entry.is_dir():
                flags += ["--tmpfs", str(entry)]
            elif entry.is_file():
                flags += ["--ro-bind", "/dev/null", str(entry)]
    return flags


def source_checkout_folders() -> list[Path]:
    """The course checkout's folders when bpkit is installed from one (editable): solutions and tests."""
    import bpkit

    root = Path(bpkit.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").exists():
        return []
    return [root]


_ACTIVE: set["Sandbox"] = set()  # every sandbox still running, so Ctrl-C can end them all at once


def kill_all() -> None:
    for box in list(_ACTIVE):
        box.kill("the grading run was interrupted")


class Sandbox:
    """One sandboxed runner process; `kill()` ends it and everything it started."""

    def __init__(self, workdir: Path, course_copy: Path | None, hide: list[Path], limits: Limits,
                 log_path: Path, sandboxed: bool = True, forked: tuple | None = None):
        self.limits = limits
        self.killed_for: str | None = None
        self.peak_bytes = 0
        self._log = None
        if forked is not None:  # a child of the fork server: already sandboxed and running
            self.process, self.pid_namespace = forked
            self._start_watchdog()
            return
        env = {**KERNEL_ENV, **{k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}}
        if sandboxed:
            env.update(BPKIT_SUBMISSION_SOURCE=SOURCE_DIR, BPKIT_SUBMISSION_DIR=WORKDIR)
        python = [sys.executable, "-I", "-m", "bpkit.grading.runner"]
        if sandboxed:
            import bpkit

            package = Path(bpkit.__file__).resolve().parent
            info_r, info_w = os.pipe()
            options = [
                *_namespace_flags(),
                *_hide_flags(hide),
                "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
                *_rebind_under_tmp(),
                "--size", str(TMPFS_BYTES), "--tmpfs", "/dev/shm",
                "--dir", SANDBOX_HOME,
                "--ro-bind", str(workdir), SOURCE_DIR,
                "--ro-bind", str(course_copy), str(package),
                "--chdir", "/tmp", "--clearenv",
                *[item for key, value in env.items() for item in ("--setenv", key, value)],
                "--info-fd", str(info_w),
            ]
            # The options go through a file, not the command line: /proc/1/cmdline in the sandbox
            # then shows `bwrap --args N`, not the folders it hides.
            args_path = log_path.with_suffix(".args")
            args_path.write_bytes(b"".join(os.fsencode(o) + b"\0" for o in options))
            args_fd = os.open(args_path, os.O_RDONLY)
            command = [BWRAP, "--args", str(args_fd), *python]
            pass_fds = (info_w, args_fd)
            popen_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            cwd = "/"
        else:
            command, pass_fds, popen_env, cwd = python, (), {**env, "HOME": str(workdir)}, str(workdir)
            env["HOME"] = str(workdir)
        launcher = [sys.executable, "-I", "-c", LAUNCHER, str(limits.memory_bytes), str(MAX_FILE_BYTES)]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in kill()
        self.process = subprocess.Popen(
            [*launcher, *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            pass_fds=pass_fds, env=popen_env, cwd=cwd, start_new_session=True,
        )
        self.pid_namespace: str | None = None
        if sandboxed:
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
        if self.pid_namespace is None or isinstance(self.process, _Forked):
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
            total = sum(rss for _, rss in processes)
            self.peak_bytes = max(self.peak_bytes, total)
            if total > self.limits.memory_bytes:
                self.kill(f"its processes used more than the {self.limits.memory_bytes // 2**20} MB memory cap")
                return
            if len(processes) > MAX_PROCESSES:
                self.kill(f"it started more than {MAX_PROCESSES} processes")
                return

    def kill(self, reason: str | None = None) -> None:
        if reason and self.killed_for is None:
            self.killed_for = reason
        if self.process.poll() is None:
            if not isinstance(self.process, _Forked):
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


# -- the fork server: one template process per run, a fresh sandboxed child per submission ------


class ForkServerUnavailable(RuntimeError):
    """The template could not start or could not make a child here; grading falls back to one
    bubblewrap sandbox per submission."""


class _Forked:
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

    def __init__(self, area: Path, course_copy: Path, hide: list[Path]):
        import socket

        import bpkit

        self.inbox = area / "inbox"
        self.inbox.mkdir(mode=0o755)
        self.log_path = area / "zygote.log"
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        package = Path(bpkit.__file__).resolve().parent
        flags = _namespace_flags()
        at = flags.index("--cap-drop")
        flags[at : at + 2] = ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
        env = {**KERNEL_ENV, **{k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}}
        # What lives under /tmp and must reappear over each child's fresh /tmp: the Python paths,
        # and the course copy where bpkit itself sits under /tmp (a clone there).
        keep = [(path, path) for path in paths_under_tmp()]
        if Path("/tmp") in package.parents:
            keep.append((course_copy, package))
        options = [
            *flags, *_hide_flags(hide),
            "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
            *_rebind_under_tmp(),
            # a second view of them, for each child to put back over the fresh /tmp it mounts
            *[flag for i, (source, _) in enumerate(keep) for flag in ("--ro-bind", str(source), f"/dev/.keep{i}")],
            "--ro-bind", str(self.inbox), "/run",
            "--ro-bind", str(course_copy), str(package),
            "--tmpfs", "/proc",  # no process of the run is visible to a child, not even the template
            "--chdir", "/tmp", "--clearenv",
            *[item for key, value in env.items() for item in ("--setenv", key, value)],
            "--setenv", "BPKIT_REBINDS", json.dumps([[f"/dev/.keep{i}", str(target)] for i, (_, target) in enumerate(keep)]),
        ]
        args_path = area / "zygote.args"
        args_path.write_bytes(b"".join(os.fsencode(o) + b"\0" for o in options))
        args_fd = os.open(args_path, os.O_RDONLY)
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [BWRAP, "--args", str(args_fd), sys.executable, "-I", "-m", "bpkit.grading.runner", "--zygote",
             str(theirs.fileno())],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, pass_fds=(args_fd, theirs.fileno()),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd="/", start_new_session=True,
        )
        os.close(args_fd)
        theirs.close()
        ours.settimeout(60)
        try:
            ready = ours.recv(4096)
        except OSError:
            ready = b""
        ours.settimeout(None)
        if b"ready" not in ready:
            self.close()
            raise ForkServerUnavailable(f"the fork server did not start: {_tail(self.log_path)}")

    def spawn(self, workdir: Path, limits: Limits) -> tuple[_Forked, str]:
        """A new child for the submission whose files are in `workdir`; returns it and its PID namespace."""
        import socket

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
        message = json.dumps({"id": name, "memory_bytes": limits.memory_bytes,
                              "file_bytes": MAX_FILE_BYTES, "tmpfs_bytes": TMPFS_BYTES}).encode()
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
        found = _hello_pid(hello, 20.0)
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
        return _Forked(found, stdin, stdout), namespace

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
    import socket

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
