"""`bpkit grade --cluster`: the same gradebook from a 2-worker Dask LocalCluster as from a local run,
a task whose worker dies is retried once, then becomes an `error` row (never a lost result), and no one
without the run's TLS certificate can reach the cluster (a scheduler runs code for whoever reaches it)."""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import ssl
import sys
import types
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("distributed", reason='needs dask.distributed: pip install "backprop-kit[cluster]"')

from dask.distributed import Client  # noqa: E402
from distributed.security import Security  # noqa: E402

from bpkit.cli import main  # noqa: E402
from bpkit.grade import _cluster_results  # noqa: E402
from bpkit.grading.cluster import connect  # noqa: E402
from bpkit.grading.execute import Options  # noqa: E402
from course_facts import lesson_exercise_ids  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_01 = ROOT / "solutions" / "01_neurons.ipynb"


def rows(out: Path) -> list[tuple]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return [tuple(r.values()) for r in csv.DictReader(handle)]


@pytest.mark.slow
def test_a_local_cluster_gives_the_same_gradebook_as_a_local_run(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    solution = nbformat.read(ROOT / "solutions" / "01_neurons.ipynb", as_version=4)
    nbformat.write(solution, folder / "ann_01.ipynb")
    nbformat.write(nbformat.read(ROOT / "lessons" / "01_neurons.ipynb", as_version=4), folder / "ben_01.ipynb")
    wrong = nbformat.read(ROOT / "solutions" / "01_neurons.ipynb", as_version=4)
    cell = next(c for c in wrong.cells if c.cell_type == "code" and "def layer_forward(" in c.source)
    cell.source = "def layer_forward(X, W, b, activation):\n    Z = X @ W + b\n    return activation(Z), Z"
    nbformat.write(wrong, folder / "cat_01.ipynb")
    (folder / "empty_01.ipynb").write_bytes(b"")
    files = sorted(map(str, folder.glob("*.ipynb")))
    common = ["--seed", "7", "--no-progress", "--jobs", "2"]
    assert main(["grade", *files, "--out", str(tmp_path / "local"), *common]) == 0
    assert main(["grade", *files, "--out", str(tmp_path / "cluster"), *common, "--cluster", "local:2"]) == 0
    local, cluster = rows(tmp_path / "local"), rows(tmp_path / "cluster")
    assert cluster == local
    expected = {eid: "fail" if eid == "layer_forward" else "pass" for eid in lesson_exercise_ids("01")}
    assert {r[3]: r[6] for r in local if r[1] == "cat"} == expected


def _dies_on_the_first_try_of_ben_and_always_on_cat(files, file_name, student, run):
    """A task that kills its own worker process: once for ben (so the retry succeeds), always for cat."""
    marker = Path(run["marker_dir"]) / f"{student}.tried"
    if student == "cat" or (student == "ben" and not marker.exists()):
        marker.touch()
        os._exit(1)
    from bpkit.grading.gradebook import Result, make_row

    return Result(file_name, student, "01", [make_row(file_name, student, "01", "weighted_sum", 1, 1, "pass", "ok")])


@pytest.mark.slow
def test_a_dead_worker_is_retried_once_then_the_submission_gets_an_error_row(tmp_path):
    from bpkit.grading.identity import collect

    paths = []
    for student in ("ann", "ben", "cat"):
        paths.append(tmp_path / f"{student}_01.ipynb")
        shutil.copyfile(SOLUTION_01, paths[-1])
    args = argparse.Namespace(cluster="local:2", lesson=None, exercises=[])
    options = Options(timeout=30, memory_mb=1024)
    with collect(paths, None) as collection:
        results = list(
            _cluster_results(
                args,
                collection.records,
                options,
                seed=1,
                task=_dies_on_the_first_try_of_ben_and_always_on_cat,
                extra={"marker_dir": str(tmp_path)},
            )
        )
    by_student = {record.student: r for record, r in results}
    assert by_student["ann"].rows[0]["status"] == "pass"
    assert by_student["ben"].rows[0]["status"] == "pass"  # its worker died once: retried on another one
    assert (tmp_path / "ben.tried").exists()
    cat = by_student["cat"].rows[0]
    assert cat["status"] == "error" and "failed twice" in cat["message"] and "--student cat" in cat["message"]
    assert cat["submission"].endswith("cat_01.ipynb")


# -- who may connect ---------------------------------------------------------------------------------


def _no_certificate_handshake(address: str) -> str:
    """Connect to a tls://host:port as an intruder would: trusting any server, presenting no certificate.
    Returns how the server answered (an exception name, or "accepted")."""
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as tls:
            tls.sendall(b"\0" * 8)
            if tls.recv(1) == b"":  # TLS 1.3: a missing client certificate is refused after the handshake
                return "closed"
    except (ssl.SSLError, ConnectionError) as exc:
        return type(exc).__name__
    return "accepted"


@pytest.mark.slow
def test_a_local_cluster_is_tls_and_only_its_own_client_can_connect():
    client, cluster = connect("local:1")
    try:
        address = cluster.scheduler_address
        workers = list(client.scheduler_info()["workers"])
        assert address.startswith("tls://127.0.0.1:") and len(workers) == 1, (address, workers)
        assert all(worker.startswith("tls://") for worker in workers), workers
        assert client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3  # the run's client works
        with Client(address, security=cluster.security, timeout="10s") as same:  # ... and its certificate
            assert same.submit(sum, [3, 4], pure=False).result(timeout=30) == 7
        intruders = {
            "no TLS": lambda: Client(address.replace("tls://", "tcp://"), timeout="5s"),
            "another certificate": lambda: Client(address, security=Security.temporary(), timeout="5s"),
        }
        for name, intruder in intruders.items():
            with pytest.raises((OSError, TimeoutError)):
                intruder().close()
                pytest.fail(f"{name}: connected to the scheduler")
        for target in (address, *workers):  # scheduler and workers want a certificate signed for this run
            assert _no_certificate_handshake(target) != "accepted", target
    finally:
        client.close()
        cluster.close()


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "ws://scheduler:8786"])
def test_a_scheduler_address_without_tls_is_refused_with_what_to_do(address):
    with pytest.raises(RuntimeError, match="without TLS lets anyone.*tls://.*gateway:NAME or local:N"):
        connect(address)


def test_a_tls_address_without_a_client_certificate_says_which_settings_to_give(monkeypatch):
    for name in list(os.environ):
        if name.startswith("DASK_DISTRIBUTED__COMM__TLS"):
            monkeypatch.delenv(name)
    with pytest.raises(RuntimeError, match="distributed.comm.tls.ca-file.*client.cert.*client.key"):
        connect("tls://127.0.0.1:8786")


def test_a_gateway_cluster_is_reached_through_dask_gateway(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_gateway", None)  # not installed
    with pytest.raises(RuntimeError, match="pip install dask-gateway"):
        connect("gateway:grading")
    asked = []

    class FakeCluster:
        def get_client(self, set_as_default=True):
            asked.append(("get_client", set_as_default))
            return "client"

    class Gateway:  # reads the gateway's address and login from Dask's configuration, as the real one does
        def connect(self, name):
            asked.append(("connect", name))
            return FakeCluster()

    monkeypatch.setitem(sys.modules, "dask_gateway", types.SimpleNamespace(Gateway=Gateway))
    client, cluster = connect("gateway:grading-7f3a")
    assert client == "client" and isinstance(cluster, FakeCluster)  # closed after the run: the cluster stays
    assert asked == [("connect", "grading-7f3a"), ("get_client", False)]


@pytest.mark.slow
def test_the_readme_slurm_recipe_certificate_lets_bpkit_in_and_nothing_else(tmp_path):
    # The README's Slurm recipe (with a LocalCluster for the SLURMCluster): one PEM file, 0600, holds the
    # certificate and its key; bpkit finds it through the two Dask settings the README gives.
    import subprocess

    from dask.distributed import LocalCluster

    pem, new = tmp_path / ".bpkit-dask.pem", Security.temporary()
    fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (new.tls_ca_file + new.tls_client_key).encode())
    os.close(fd)
    tls = Security(
        require_encryption=True,
        tls_ca_file=str(pem),
        **{f"tls_{r}_{p}": str(pem) for r in ("client", "scheduler", "worker") for p in ("cert", "key")},
    )
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, security=tls)
    try:
        code = (
            "import sys; from bpkit.grading.cluster import connect; client, _ = connect(sys.argv[1]); "
            "print(client.submit(sum, [20, 22]).result(timeout=30)); client.close()"
        )
        without = {k: v for k, v in os.environ.items() if not k.startswith("DASK_DISTRIBUTED__COMM__TLS")}
        given = {
            **without,
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(pem),
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(pem),
        }
        run = [sys.executable, "-c", code, cluster.scheduler_address]
        allowed = subprocess.run(run, env=given, capture_output=True, text=True, timeout=120)
        assert allowed.returncode == 0 and allowed.stdout.strip() == "42", allowed.stderr[-2000:]
        refused = subprocess.run(run, env=without, capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "no TLS certificate for this client" in refused.stderr, refused.stderr[
            -2000:
        ]
    finally:
        cluster.close()
