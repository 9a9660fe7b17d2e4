"""Grading on many machines: each submission is a task on a Dask distributed cluster.

`bpkit grade ... --cluster tcp://scheduler:8786` (or `--cluster local:N` for a LocalCluster of N
worker processes on this machine) sends every submission, as bytes (the notebook and the data
files of its folder), to a worker. Each worker process keeps one Grader (its own work area, fork
server and sandboxes) for the whole run and returns the result; the results come back here and go
into the same gradebook, one transaction each, as in a local run. A task whose worker dies is
retried once on another worker; a second failure becomes an `error` row, never a lost result.
Workers need bpkit (with the same version) and bubblewrap installed; see docs/teaching.md for dask-jobqueue
(Slurm) and dask-gateway (Kubernetes / JupyterHub) recipes. Install with `pip install "backprop-kit[cluster]"`.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bpkit.grading.submission import folder_files

MAX_SHIPPED_BYTES = 64 * 2**20  # data files of a submission's folder sent along; beyond, the notebook alone

_GRADERS: dict[tuple, object] = {}  # per worker process: run key -> Grader


def pack(path: Path) -> dict[str, bytes]:
    """The notebook and the data files of its folder (no other notebook, no symbolic link: its target
    could be any file of this machine), as relative path -> bytes."""
    files = {"submission.ipynb": path.read_bytes()}
    folder = path.parent.resolve()
    for relative in folder_files(path, MAX_SHIPPED_BYTES) or []:
        full = folder / relative
        if not full.is_symlink():
            try:
                files[str(relative)] = full.read_bytes()
            except OSError:
                continue
    return files


def grade_task(files: dict[str, bytes], file_name: str, student: str, run: dict) -> object:
    """Runs on a worker: unpack the submission into a private folder and grade it there."""
    from bpkit.checks import load_exercises
    from bpkit.grade import Grader
    from bpkit.grading.execute import Options

    key = tuple(sorted((k, str(v)) for k, v in run.items()))
    grader = _GRADERS.get(key)
    if grader is None:
        for path in run["exercises"]:
            load_exercises(path)
        if run["sandboxed"]:
            from bpkit.grading.sandbox import check_bwrap

            check_bwrap()  # a worker without bubblewrap fails the task with the command that installs it
        options = Options(timeout=run["timeout"], memory_mb=run["memory_mb"], sandboxed=run["sandboxed"],
                          fork_server=run["fork_server"])
        spool = Path(tempfile.mkdtemp(prefix="bpkit-cluster-"))
        grader = Grader(options, run["seed"], run["lesson"], spool / "out", [spool / "inbox" / "x"])
        grader.spool = spool
        _GRADERS[key] = grader
    folder = Path(tempfile.mkdtemp(prefix="sub-", dir=grader.spool))
    try:
        for relative, data in files.items():
            target = (folder / relative).resolve()
            if folder.resolve() not in target.parents:
                continue  # a path that leaves the folder is not unpacked
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        notebook = folder / "submission.ipynb"
        named = folder / Path(file_name).name
        if named.suffix == ".ipynb" and named != notebook:
            notebook.rename(named)
            notebook = named
        grader.hide = [grader.spool, *grader.hide[1:]]
        return grader.grade(notebook, student)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def connect(address: str):
    """A dask.distributed Client for `local:N` (a LocalCluster here) or a scheduler address."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError('--cluster needs dask.distributed: pip install "backprop-kit[cluster]"') from None
    if address.startswith("local:"):
        workers = int(address.split(":", 1)[1])
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    return Client(address, timeout="30s"), None
