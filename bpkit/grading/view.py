"""What a sandbox sees: an allow-list, decided by one function for every way a submission runs.

`sandbox_flags` gives bubblewrap the whole file system of a sandbox; nothing of the host is there
unless this module names it. Every path uses it: a sandbox of its own (`Sandbox`), the fork
server's template and so its children (`ForkServer`), `--student` re-grades and `--cluster`
workers (both grade through the same `Grader`).

A sandbox sees, read-only:
- the system directories Python needs: /usr (and the /bin, /lib... links to it), the dynamic
  loader's cache from /etc, and a passwd/group that know only the sandbox's user;
- the interpreter the grader runs (its installation, without its own site-packages);
- /env: a virtual environment holding only the packages a kernel needs (`KERNEL_DISTRIBUTIONS`
  and what they require), not the rest of the grader's environment;
- /env/.../site-packages/bpkit: the course copy without answers (`course_copy.py`);
- its own submission's files (a copy: `grader.stage_submission`).
And, writable: a size-capped /tmp and /dev/shm of its own. Not the grader's home, other homes,
/root, /srv, /var, /mnt, /media, /opt, the course checkout, --exercises, --out, nor any other file
of the class: they are never mounted, so there is nothing to hide.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ENV = "/env"
SITE = f"{ENV}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
PYTHON = f"{ENV}/bin/python"
SANDBOX_HOME = "/tmp/home"
WORKDIR = "/tmp/submission"  # the runner copies SOURCE_DIR here, inside the size-capped /tmp
SOURCE_DIR = "/tmp/.submission-source"
INBOX = "/run"  # the fork server's inbox of submission folders (each child covers it at once)
# What a kernel imports: the course's own dependencies, and IPython, which runs the cells.
KERNEL_DISTRIBUTIONS = ("numpy", "matplotlib", "ipywidgets", "tqdm", "ipython", "traitlets")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts")
PASSWD = "nobody:x:65534:65534:nobody:/tmp/home:/usr/sbin/nologin\n"
GROUP = "nogroup:x:65534:\n"


class ViewUnavailable(RuntimeError):
    """The grader's Python cannot be shown to a sandbox; the message says why and what to do."""


@dataclass
class View:
    """The read-only part of every sandbox of one run, worked out once."""

    mounts: list[str]  # bubblewrap options: system, interpreter, /env, course copy, /etc
    entries: list[Path]  # the site-packages entries in /env (for tests and the README)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def kernel_distributions(roots=KERNEL_DISTRIBUTIONS) -> list:
    """The installed distributions a kernel needs: `roots` and everything they require (no extras)."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    found: dict[str, object] = {}
    todo = list(roots)
    while todo:
        name = _canonical(todo.pop())
        if name in found or name == "bpkit":  # bpkit itself is the course copy, never the installed one
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this environment does not have
        found[name] = dist
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def site_entries(distributions) -> list[Path]:
    """The top-level files and folders of site-packages that make up `distributions`."""
    entries: set[Path] = set()
    for dist in distributions:
        base = Path(dist.locate_file("")).resolve()
        names = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] not in ("..", "__pycache__")}
        if not names:  # no RECORD: fall back on top_level.txt
            names = set((dist.read_text("top_level.txt") or "").split())
        for name in names:
            path = base / name
            if name.endswith(".pth") or not (path.exists() or path.is_symlink()):
                continue  # .pth files run code at start-up: none but ours
            entries.add(path)
    return sorted(entries)


def _interpreter() -> tuple[Path, Path]:
    """(the real executable, its installation prefix) of the Python the grader runs on."""
    executable = Path(os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable))
    prefix = Path(os.path.realpath(sys.base_prefix))
    for path in (executable, prefix):
        if Path("/tmp") in path.parents or path == Path("/tmp"):
            raise ViewUnavailable(
                f"the grader's Python ({path}) lives under /tmp, which every sandbox replaces with a fresh "
                f"one; run the grader with a Python installed elsewhere (a venv in /tmp is fine)"
            )
    return executable, prefix


def _open_parents(path: Path) -> list[str]:
    """The folders above a bound path, made traversable: bubblewrap would copy their host modes, and
    /root's 0700 would keep the sandbox's user from the Python below it."""
    return [
        flag
        for parent in reversed(path.parents)
        if parent != Path("/")
        for flag in ("--perms", "0755", "--dir", str(parent))
    ]


def build_view(stage: Path, course_copy: Path) -> View:
    """The read-only mounts shared by every sandbox of a run; `stage` is a private folder for the
    few files made for the sandbox (pyvenv.cfg, passwd, group)."""
    executable, prefix = _interpreter()
    entries = site_entries(kernel_distributions())
    stage.mkdir(parents=True, exist_ok=True)
    files = {
        "pyvenv.cfg": (
            f"home = {executable.parent}\ninclude-system-site-packages = false\nversion = {platform.python_version()}\n"
        ),
        "passwd": PASSWD,
        "group": GROUP,
    }
    for name, text in files.items():
        (stage / name).write_text(text, encoding="utf-8")
        os.chmod(stage / name, 0o644)
    mounts = ["--ro-bind", "/usr", "/usr"]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            mounts += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            mounts += ["--ro-bind", link, link]
    mounts += ["--perms", "0755", "--dir", "/etc"]
    mounts += [flag for path in ETC_FILES if os.path.exists(path) for flag in ("--ro-bind", path, path)]
    mounts += ["--ro-bind", str(stage / "passwd"), "/etc/passwd", "--ro-bind", str(stage / "group"), "/etc/group"]
    if Path("/usr") not in prefix.parents and prefix != Path("/usr"):
        mounts += [*_open_parents(prefix), "--ro-bind", str(prefix), str(prefix)]
        for own in sorted(prefix.glob("lib/python*/site-packages")):  # the base Python's packages: not the kernel's
            mounts += ["--tmpfs", str(own)]
    if Path("/usr") not in executable.parents and prefix not in executable.parents:
        mounts += [*_open_parents(executable), "--ro-bind", str(executable), str(executable)]
    mounts += [
        "--dir",
        f"{ENV}/bin",
        "--symlink",
        str(executable),
        PYTHON,
        "--ro-bind",
        str(stage / "pyvenv.cfg"),
        f"{ENV}/pyvenv.cfg",
        "--dir",
        SITE,
    ]
    for entry in entries:
        mounts += ["--ro-bind", str(entry), f"{SITE}/{entry.name}"]
    mounts += ["--ro-bind", str(course_copy), f"{SITE}/bpkit"]
    return View(mounts, entries)


def sandbox_flags(
    view: View, tmpfs_bytes: int, *, submission: Path | None = None, inbox: Path | None = None
) -> list[str]:
    """Every mount of one sandbox, in bubblewrap's order: a lone sandbox gets its `submission`
    folder; the fork server's template gets the `inbox` (each child mounts its own /tmp, /dev/shm)."""
    flags = [*view.mounts, "--dev", "/dev"]
    if inbox is None:
        flags += ["--proc", "/proc"]
    else:  # no /proc at all in the template's children: no process of the run is visible
        flags += ["--perms", "0555", "--tmpfs", "/proc", "--remount-ro", "/proc"]
    flags += [
        "--perms",
        "1777",
        "--size",
        str(tmpfs_bytes),
        "--tmpfs",
        "/tmp",
        "--perms",
        "1777",
        "--size",
        str(tmpfs_bytes),
        "--tmpfs",
        "/dev/shm",
    ]
    if submission is not None:
        flags += ["--ro-bind", str(submission), SOURCE_DIR]
    if inbox is not None:
        flags += ["--ro-bind", str(inbox), INBOX]
    # Read-only from here: nothing a submission writes outside its capped /tmp and /dev/shm, and so
    # nothing one child of the template writes is seen by the next.
    return [*flags, "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
