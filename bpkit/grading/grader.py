"""The Grader: what one grading run shares (options, secret seed, work area, the sandbox's view,
the fork server), and the grading of one notebook from its file to its rows.

Used by the command line (`bpkit grade`, grade.py) and by cluster workers (cluster.py) alike, so a
submission is staged, sandboxed and judged the same way wherever it is graded.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import sys
from pathlib import Path

from bpkit.grading.course_copy import build_course_copy, readable_by_all
from bpkit.grading.execute import Options, Run, run_submission
from bpkit.grading.forkserver import ForkServer, ForkServerUnavailable
from bpkit.grading.gradebook import Result, clean, make_row
from bpkit.grading.judge import judge_exercise, run_flags
from bpkit.grading.limits import Limits
from bpkit.grading.sandbox import WorkArea
from bpkit.grading.submission import (
    InvalidSubmission,
    defined_at,
    find_lesson,
    lesson_in_name,
    reference_flags,
    student_cells,
)
from bpkit.notebook import InvalidNotebook, parse_notebook, read_notebook_bytes

MAX_DATA_BYTES = 64 * 2**20  # a submission's data files together; beyond, the notebook goes alone
MAX_DATA_FILES = 200
ARCHIVES = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz", ".7z", ".rar")  # a class download, not data
NEVER_BROUGHT = {".ipynb_checkpoints", "__pycache__", ".git"}


def known_lessons() -> list[str]:
    """Lessons that have at least one graded exercise."""
    from bpkit.checks import EXERCISES

    return sorted({exercise.lesson for exercise in EXERCISES.values()})


def lesson_exercises(lesson: str) -> list:
    """The registered exercises of one lesson, in catalogue order."""
    from bpkit.checks import EXERCISES

    return [exercise for exercise in EXERCISES.values() if exercise.lesson == lesson]


def data_files(folder: Path, limit: int = MAX_DATA_BYTES) -> dict[str, bytes]:
    """The data files a notebook in `folder` brings along, as relative path -> bytes: regular files
    only (no symbolic link followed), no notebook, no archive, no cache; {} when together they pass
    `limit` bytes or MAX_DATA_FILES files (a home folder by mistake: the notebook goes alone)."""
    found: dict[str, bytes] = {}
    total = 0
    for root, dirs, names in os.walk(folder):  # os.walk does not follow links to folders
        dirs[:] = [d for d in dirs if d not in NEVER_BROUGHT]
        for name in names:
            if name.endswith(".ipynb") or name.lower().endswith(ARCHIVES) or name in NEVER_BROUGHT:
                continue
            path = Path(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            total += info.st_size
            if total > limit or len(found) >= MAX_DATA_FILES:
                return {}
            from bpkit.files import read_regular

            try:
                found[str(path.relative_to(folder))] = read_regular(path, limit)
            except OSError:
                continue
    return found


def stage_submission(dest: Path, notebook: bytes, files: dict[str, bytes]) -> None:
    """Write what a sandbox gets of one submission into dest: the notebook and its data files,
    readable by the sandbox's user; a relative path that would leave dest is dropped."""
    dest.mkdir()
    root = dest.resolve()
    for relative, data in files.items():
        target = (dest / relative).resolve()
        if root not in target.parents:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (dest / "submission.ipynb").write_bytes(notebook)
    readable_by_all(dest)


def invalid_result(path: Path, student: str, lesson: str | None, reason: str, sandbox: str) -> Result:
    """The one `invalid` row of a file that cannot be graded at all (nothing of it ran)."""
    guess = lesson or lesson_in_name(path, known_lessons()) or ""
    max_points = sum(e.points for e in lesson_exercises(guess)) if guess else 0
    row = make_row(path, student, guess, "", 0, max_points, "invalid", reason)
    return Result(clean(path, 1000), student, guess, [row], sandbox=sandbox)


class Grader:
    """Everything one run shares: options, secret seed, work area, the sandbox's view and course copy."""

    def __init__(self, options: Options, seed: int, lesson: str | None):
        from bpkit.grading.view import build_view

        self.options = options
        self.seed = seed
        self.lesson = lesson
        self.area = WorkArea()
        self.view = None
        if options.sandboxed:
            try:
                course_copy = build_course_copy(self.area.path / "course")
                self.view = build_view(self.area.path / "view", course_copy)
            except BaseException:
                self.area.close()
                raise
        self.forkserver = None
        self.forkserver_problem: str | None = None
        if self.view is not None and options.fork_server:
            try:
                self.forkserver = ForkServer(self.area.path, self.view, Limits(options.memory_mb * 2**20))
            except (ForkServerUnavailable, OSError) as exc:
                self.forkserver_problem = str(exc)

    def close(self) -> None:
        if self.forkserver is not None:
            self.forkserver.close()
        self.area.close()

    def grade(
        self, path: Path, student: str, files: dict[str, bytes] | None = None, lesson: str | None = None
    ) -> Result:
        """Grade one notebook file with its data `files` as `lesson` (None: the run's --lesson, else the
        notebook's own); never raises, so one bad submission cannot stop the others."""
        try:
            return self._grade(path, student, files or {}, lesson)
        except Exception as exc:  # a bug of the grader or a checker, reported in the gradebook
            message = f"the grader failed on this notebook ({type(exc).__name__}: {exc}); please report it"
            return Result(
                clean(path, 1000),
                student,
                "",
                [make_row(path, student, "", "", 0, 0, "error", message)],
                sandbox=self._sandbox_name(),
            )

    def _run(self, cells, defined, exercises, cases_of, work: Path, folder: Path) -> Run:
        """In a child of the fork server; should it fail, in a sandbox of its own (and so on after)."""
        log = folder / "kernel.log"
        if self.forkserver is not None:
            try:
                return run_submission(
                    cells, defined, exercises, cases_of, work, self.view, log, self.options, self.forkserver
                )
            except ForkServerUnavailable as exc:
                self.forkserver_problem = str(exc)
                server, self.forkserver = self.forkserver, None
                server.close()
                print(
                    f"bpkit grade: warning: the fork server stopped ({exc}); each submission now starts its own "
                    f"sandbox (slower, just as safe)",
                    file=sys.stderr,
                )
                if not work.exists():
                    raise
        return run_submission(cells, defined, exercises, cases_of, work, self.view, log, self.options)

    def _sandbox_name(self) -> str:
        return "bwrap" if self.options.sandboxed else "none"

    def _grade(self, path: Path, student: str, files: dict[str, bytes], lesson: str | None) -> Result:
        from bpkit.checks._core import secret_seed

        lessons = known_lessons()
        try:
            try:
                data = read_notebook_bytes(path)
                nb = parse_notebook(data)
            except InvalidNotebook as exc:
                raise InvalidSubmission(str(exc)) from None
            lesson, notes = find_lesson(nb, path, lessons, lesson or self.lesson)
        except InvalidSubmission as exc:
            return invalid_result(path, student, self.lesson, str(exc), self._sandbox_name())
        cells = student_cells(nb)
        defined = defined_at(cells)
        flags = reference_flags(cells)
        exercises = lesson_exercises(lesson)
        with secret_seed(self.seed):
            cases_of = {exercise.id: exercise.graded_cases() for exercise in exercises}
        folder = Path(os.path.join(self.area.path, f"sub-{os.getpid()}-{id(path)}-{secrets.token_hex(4)}"))
        folder.mkdir()
        work = folder / folder.name
        try:
            stage_submission(work, data, files)
            run = self._run(cells, defined, exercises, cases_of, work, folder)
        except Exception as exc:  # the grader's own failure on this notebook: recorded, the others go on
            run = Run(stopped=f"the grader failed on this notebook ({type(exc).__name__}: {exc})", stopped_at=-1)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if self.forkserver is not None:
                self.forkserver.release(work.name)
        flags = flags + run_flags(run)
        rows = []
        for exercise in exercises:
            reached = exercise.id in run.unchecked or exercise.id in run.observations or exercise.id in run.missing
            if run.stopped_at == -1 and not reached:
                status, message = run.stopped_status, f"not checked: {run.stopped}"
            else:
                with secret_seed(self.seed):
                    status, message = judge_exercise(exercise, cases_of[exercise.id], run, defined.get(exercise.id))
            points = exercise.points if status == "pass" else 0
            rows.append(make_row(path, student, lesson, exercise.id, points, exercise.points, status, message, flags))
        notes += [
            f"{label} raised {ename}: {evalue}"
            + (
                f" (out of memory: a notebook may use at most {self.options.memory_mb} MB)"
                if ename == "MemoryError"
                else ""
            )
            for label, ename, evalue in run.cell_errors
        ]
        if run.stopped:
            notes.append(run.stopped[0].upper() + run.stopped[1:] + ".")
        if "reference-answers" in flags:
            notes.append(
                "This notebook refers to the checkers' reference answers or bpkit's own files; "
                "your instructor sees this flag."
            )
        return Result(
            clean(path, 1000),
            student,
            lesson,
            rows,
            [clean(n, 600) for n in notes],
            flags,
            self._sandbox_name(),
            run.kernel_cpu,
        )
