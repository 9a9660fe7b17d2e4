"""What every sandboxed process sets on itself before a student's code runs: resource limits, and
the drop to an unprivileged user with no capability, now or later.

One module for both ways a submission starts: `runner.main` (a sandbox of its own) and the fork
server's child (`zygote`). When the grader runs as root, bubblewrap mounts the sandbox's files as
root (it can reach a Python under /root) and this module then switches the process to SANDBOX_UID,
a user that is not the grader: files the grader can read only because it owns them (mode 0600)
stay unreadable, even where a path is bound. An unprivileged grader's sandbox already runs as
SANDBOX_UID inside a user namespace (bubblewrap's --unshare-user --uid).
"""

from __future__ import annotations

import ctypes
import os
import resource
from dataclasses import dataclass

SANDBOX_UID = SANDBOX_GID = 65534  # nobody/nogroup on Debian and most Linux systems
MAX_FILE_BYTES = 512 * 2**20  # RLIMIT_FSIZE: the largest file a submission may write
MAX_TMPFS_BYTES = 512 * 2**20  # no tmpfs of a sandbox is larger than this...
TMPFS_SHARE = 4  # ...nor larger than 1/TMPFS_SHARE of the memory cap (the watchdog counts its pages)
MAX_PROCESSES = 256  # more than this in one sandbox is a fork bomb

PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522


@dataclass
class Limits:
    """The caps of one submission: its processes' memory plus its tmpfs files stay under memory_bytes."""

    memory_bytes: int

    @property
    def tmpfs_bytes(self) -> int:
        """Size of each tmpfs of the sandbox (/tmp, /dev/shm): a share of the memory cap."""
        return min(MAX_TMPFS_BYTES, self.memory_bytes // TMPFS_SHARE)


def apply(memory_bytes: int, file_bytes: int = MAX_FILE_BYTES) -> None:
    """Address space, file size and core dumps of this process and everything it starts."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def drop_privileges() -> None:
    """Become SANDBOX_UID (when root) with no capability now or ever again, in this process and
    anything it executes (bounding and ambient sets cleared, no_new_privs)."""
    for cap in range(64):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability, EPERM without SETPCAP
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if os.getuid() == 0 or os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if os.getuid() == 0 or os.geteuid() == 0:  # never run a student's code as root
        raise OSError("the sandbox could not leave the root user")
