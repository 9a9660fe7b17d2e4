"""The copy of bpkit a sandbox imports: the learner library as installed, without the answers.

`bpkit.checks` is replaced by `answer_free/checks.py` (the catalogue of ids, lessons, points and
descriptions, and no reference answer) plus the two checker modules that hold none: `_harness.py`
(it observes a call) and `inputs.py` (functions that cases pass as arguments, so every case must
unpickle with only these). The digits file loses the capstone's held-out images, and a wheel's
solution notebooks stay out.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

ANSWER_FREE = Path(__file__).resolve().parent / "answer_free"
CHECKS_WITHOUT_ANSWERS = ("_harness.py", "inputs.py")  # what a sandbox gets of bpkit/checks/


def build_course_copy(dest: Path) -> Path:
    """Write the answer-free copy of the installed bpkit into dest/bpkit; returns that folder."""
    import bpkit
    from bpkit.checks import EXERCISES, lesson13

    source = Path(bpkit.__file__).resolve().parent
    package = dest / "bpkit"
    # A wheel install also ships the executed solutions (bpkit/solutions/, for `bpkit solutions`): not in here.
    shutil.copytree(
        source, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "checks", "datasets", "solutions")
    )
    checks = package / "checks"
    checks.mkdir()
    for name in CHECKS_WITHOUT_ANSWERS:
        shutil.copyfile(source / "checks" / name, checks / name)
    shutil.copyfile(ANSWER_FREE / "checks.py", checks / "__init__.py")
    shutil.copyfile(ANSWER_FREE / "lesson13.py", checks / "lesson13.py")
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
    readable_by_all(dest)
    return package


def readable_by_all(folder: Path) -> None:
    """Folders 0755 and files 0644 (no symbolic link followed): the sandbox's user is not the
    grader's, and must read what the grader hands it."""
    os.chmod(folder, 0o755)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)
