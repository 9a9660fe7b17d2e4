"""Grading on many machines: each submission is a task on a Dask distributed cluster.

`bpkit grade ... --cluster tls://scheduler:8786` (or `--cluster local:N` for a LocalCluster of N
worker processes on this machine, `--cluster gateway:NAME` for a dask-gateway cluster; every
connection is TLS, see `connect`) sends every submission, as bytes (the notebook and the data
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

MAX_SHIPPED_BYTES = 64 * 2**20  # data files of a submission's folder sent along; beyond, the notebook alone

_GRADERS: dict[tuple, object] = {}  # per worker process: run key -> Grader


def pack(path: Path, data_folder: Path | None) -> dict[str, bytes]:
    """The notebook (a regular file, no symbolic link followed) and the data files of `data_folder`
    (the student's own folder, where the collection found one), as relative path -> bytes;
    InvalidNotebook when the notebook itself cannot be read."""
    from bpkit.grading.grader import data_files
    from bpkit.notebook import read_notebook_bytes

    files = {"submission.ipynb": read_notebook_bytes(path)}
    if data_folder is not None:
        files.update(data_files(data_folder, MAX_SHIPPED_BYTES))
    return files


def grade_task(files: dict[str, bytes], file_name: str, student: str, run: dict) -> object:
    """Runs on a worker: write the notebook into the worker's private work area and grade it there,
    with the same Grader (and so the same sandbox view) as a local run."""
    from bpkit.checks import load_exercises
    from bpkit.grading.execute import Options
    from bpkit.grading.grader import Grader

    key = tuple(sorted((k, str(v)) for k, v in run.items() if k != "lesson"))  # one Grader for every lesson
    grader = _GRADERS.get(key)
    if grader is None:
        for path in run["exercises"]:
            load_exercises(path)
        if run["sandboxed"]:
            from bpkit.grading.sandbox import check_bwrap

            check_bwrap()  # a worker without bubblewrap fails the task with the command that installs it
        options = Options(
            timeout=run["timeout"],
            memory_mb=run["memory_mb"],
            sandboxed=run["sandboxed"],
            fork_server=run["fork_server"],
        )
        grader = Grader(options, run["seed"], None)  # each task says its lesson
        _GRADERS[key] = grader
    folder = Path(tempfile.mkdtemp(prefix="received-", dir=grader.area.path))
    try:
        files = dict(files)
        name = Path(file_name).name
        notebook = folder / (name if name.endswith(".ipynb") else "submission.ipynb")
        notebook.write_bytes(files.pop("submission.ipynb"))
        return grader.grade(notebook, student, files, lesson=run.get("lesson"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def connect(address: str):
    """A dask.distributed Client for --cluster ADDRESS, and the cluster object to close after (or None).

    Whoever can reach a Dask scheduler runs code as the grader (reads the gradebook's key, writes into
    --out), so every connection is TLS with mutual certificates:
    - `local:N`: a LocalCluster of N worker processes here, with a throw-away certificate made for this
      run (Security.temporary()); it lives only in the memory of this process and of its workers, so no
      other user of this machine can connect to the scheduler or a worker (and their HTTP pages are off);
    - `tls://host:port`: a running scheduler; this client's certificate, key and CA come from Dask's
      configuration (`distributed.comm.tls.*`, e.g. DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT);
    - `gateway:NAME`: a running dask-gateway cluster, found with the gateway's own configuration and
      authentication (dask-gateway gives each cluster its own TLS credentials).
    A `tcp://` (unencrypted, unauthenticated) address is refused."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
        from distributed.security import Security
    except ImportError:
        raise RuntimeError('--cluster needs dask.distributed: pip install "backprop-kit[cluster]"') from None
    if address.startswith("local:"):
        workers = int(address.split(":", 1)[1])
        try:
            security = Security.temporary()
        except ImportError:
            raise RuntimeError(
                '--cluster local:N needs cryptography for its TLS certificate: pip install "backprop-kit[cluster]"'
            ) from None
        # Each node still serves HTTP (no TLS, no login) whatever dashboard_address says: the scheduler's
        # pages list workers, their logs and call stacks. With no routes, every page is 404.
        # A worker holds only the task it runs (saturation 1.0 with one thread; Dask's default 1.1 queues a
        # second there): a worker that dies then takes no waiting hand-in down with it.
        settings = {
            "distributed.scheduler.http.routes": [],
            "distributed.worker.http.routes": [],
            "distributed.scheduler.worker-saturation": 1.0,
        }
        with dask.config.set(settings):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                security=security,
                protocol="tls://",
                host="127.0.0.1",
            )
        return Client(cluster, security=security), cluster
    if address.startswith("gateway:"):
        try:
            from dask_gateway import Gateway
        except ImportError:
            raise RuntimeError("--cluster gateway:NAME needs dask-gateway: pip install dask-gateway") from None
        cluster = Gateway().connect(address.split(":", 1)[1])  # closing it later leaves the cluster running
        return cluster.get_client(set_as_default=False), cluster
    if not address.startswith("tls://"):
        raise RuntimeError(
            "a scheduler without TLS lets anyone who reaches its port run code as you; start it "
            "with TLS and give its tls:// address, or use gateway:NAME or local:N (README: "
            "'Grading a large class')"
        )
    if not Security().get_connection_args("client").get("ssl_context"):
        raise RuntimeError(
            "no TLS certificate for this client: set Dask's distributed.comm.tls.ca-file, "
            "distributed.comm.tls.client.cert and .client.key (README: 'Grading a large class')"
        )
    return Client(address, timeout="30s"), None
