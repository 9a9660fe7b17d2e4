"""`bpkit grade --cluster`: the same gradebook from a 2-worker Dask LocalCluster as from a local run,
and a task whose worker dies is retried once, then becomes an `error` row (never a lost result)."""
from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("distributed", reason='needs dask.distributed: pip install "backprop-kit[cluster]"')

from bpkit.cli import main  # noqa: E402
from bpkit.grade import _cluster_results  # noqa: E402
from bpkit.grading.execute import Options  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def rows(out: Path) -> list[tuple]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return [tuple(r.values()) for r in csv.DictReader(handle)]


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
    assert {r[3]: r[6] for r in local if r[1] == "cat"} == {"weighted_sum": "pass", "neuron_forward": "pass",
                                                            "layer_forward": "fail"}


def _dies_on_the_first_try_of_ben_and_always_on_cat(files, file_name, student, run):
    """A task that kills its own worker process: once for ben (so the retry succeeds), always for cat."""
    marker = Path(run["marker_dir"]) / f"{student}.tried"
    if student == "cat" or (student == "ben" and not marker.exists()):
        marker.touch()
        os._exit(1)
    from bpkit.grading.gradebook import Result, make_row

    return Result(file_name, student, "01", [make_row(file_name, student, "01", "weighted_sum", 1, 1, "pass", "ok")])


def test_a_dead_worker_is_retried_once_then_the_submission_gets_an_error_row(tmp_path):
    paths = []
    for student in ("ann", "ben", "cat"):
        paths.append(tmp_path / f"{student}_01.ipynb")
        paths[-1].write_text("{}")
    names = {p: p.stem.split("_")[0] for p in paths}
    args = argparse.Namespace(cluster="local:2", lesson=None, exercises=[])
    options = Options(timeout=30, memory_mb=1024)
    results = dict(_cluster_results(args, paths, names, options, seed=1,
                                    task=_dies_on_the_first_try_of_ben_and_always_on_cat,
                                    extra={"marker_dir": str(tmp_path)}))
    by_student = {names[p]: r for p, r in results.items()}
    assert by_student["ann"].rows[0]["status"] == "pass"
    assert by_student["ben"].rows[0]["status"] == "pass"  # its worker died once: retried on another one
    assert (tmp_path / "ben.tried").exists()
    cat = by_student["cat"].rows[0]
    assert cat["status"] == "error" and "failed twice" in cat["message"] and "--student cat" in cat["message"]
    assert cat["submission"] == str(paths[2].resolve()) or cat["submission"].endswith("cat_01.ipynb")
