"""`bpkit grade`: run student notebooks and score every exercise of their lesson.

For each submission (in parallel, one fresh kernel each):
1. read it (an unreadable file becomes one `invalid` row) and find its lesson (metadata, else file name);
2. copy its folder to a temporary directory and start a kernel there, under a memory cap;
3. run the student's code cells except check cells, recording cells that raise;
4. for each exercise, run a harness cell built from the *text* of bpkit/checks/_harness.py: it calls
   the student's function on the checker's cases (sent in with pickle) and writes JSON observations;
5. judge the observations here, in the grader's process, with the released checker, so nothing the
   student's code does to `bpkit.checks`, NumPy or AssertionError inside the kernel decides a verdict.
Results go to grades.csv, summary.csv and feedback/<student>.md, rewritten atomically as each
submission finishes, so an interrupted run leaves valid files and `--resume` can carry on.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpkit.files import write_atomic

GRADE_FIELDS = ["submission", "student", "lesson", "exercise", "points", "max_points", "status", "message"]
SUMMARY_FIELDS = ["submission", "student", "lesson", "total", "max_points", "percentage"]
PROBLEM_STATUSES = {"invalid", "error", "timeout"}  # the run did not go through normally
CHECK_CALL = re.compile(r"^\s*checks\.\w+\(.*\)\s*;?\s*$")
DEF_LINE = re.compile(r"^(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)
LESSON_IN_NAME = re.compile(r"(?<!\d)(\d{2})(?!\d)")
PROBE_SECONDS = 5.0  # how long an interrupted kernel gets to answer again before it is killed
MAX_COPY_BYTES = 256 * 2**20  # a submission folder larger than this is not copied, only the notebook
MAX_OBSERVATION_BYTES = 512 * 2**20  # the grader stops reading a kernel's output beyond this
# The kernel launcher: cap the address space, then become the kernel (the limit survives exec).
LAUNCHER = (
    "import os, resource, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
# Environment of a student kernel: one BLAS thread each (jobs run side by side), no GUI backend,
# no progress bars, few malloc arenas (each reserves address space counted by the memory cap).
KERNEL_ENV = {
    "MPLBACKEND": "Agg",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
    "TQDM_DISABLE": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
HARNESS_CELL = '''\
def __bpkit_check(source, cases_path, out_path, exercise_id):
    import json, pickle
    harness = {"__name__": "bpkit_grader_harness"}
    exec(compile(source, "<bpkit grader harness>", "exec"), harness)
    with open(cases_path, "rb") as handle:
        cases = pickle.load(handle)
    with open(out_path, "a", encoding="utf-8") as out:
        fn = globals().get(exercise_id)
        if fn is None or not callable(fn):
            record = {"exercise": exercise_id, "missing": "none" if fn is None else type(fn).__name__}
            out.write(json.dumps(record) + "\\n")
            return
        for _, index, args, kwargs, kind, strict_fp in cases:
            observation = harness["observe"](fn, args, kwargs, kind, strict_fp)
            try:
                line = json.dumps({"exercise": exercise_id, "case": index, "observation": observation})
            except (TypeError, ValueError) as exc:
                error = {"type": type(exc).__name__, "message": f"the result could not be recorded: {exc}",
                         "not_implemented": False}
                line = json.dumps({"exercise": exercise_id, "case": index, "observation": {"error": error}})
            out.write(line + "\\n")
            out.flush()
'''


class InvalidSubmission(ValueError):
    """The file cannot be graded at all; the message is the reason shown in the gradebook."""


@dataclass
class Options:
    """How each submission is run (from the command line)."""

    timeout: float
    memory_mb: int
    out: Path


@dataclass
class Result:
    """The gradebook rows of one submission and the notes that go into its feedback file."""

    submission: str
    student: str
    lesson: str
    rows: list[dict]
    notes: list[str] = field(default_factory=list)

    @property
    def problem(self) -> bool:
        return any(row["status"] in PROBLEM_STATUSES for row in self.rows)


# -- reading a submission ------------------------------------------------------------------------


def known_lessons() -> list[str]:
    """Lessons that have at least one graded exercise."""
    from bpkit.checks import EXERCISES

    return sorted({exercise.lesson for exercise in EXERCISES.values()})


def lesson_exercises(lesson: str) -> list:
    """The registered exercises of one lesson, in catalogue order."""
    from bpkit.checks import EXERCISES

    return [exercise for exercise in EXERCISES.values() if exercise.lesson == lesson]


def read_submission(path: Path):
    """Parse a submission into a notebook; raise InvalidSubmission with the reason when it cannot be."""
    import nbformat

    if path.is_dir():
        raise InvalidSubmission("this is a folder, not a notebook file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidSubmission("file not found") from None
    except OSError as exc:
        raise InvalidSubmission(f"the file cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise InvalidSubmission("empty file (0 bytes of notebook): the notebook was probably never saved")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSubmission("not a notebook: the file is not text (a PDF, an image or a zip?)") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSubmission(
            f"not a notebook: malformed JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            f"the file was damaged or edited outside Jupyter"
        ) from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw or "nbformat" not in raw:
        raise InvalidSubmission("not a notebook: JSON without the `nbformat` and `cells` fields of a Jupyter notebook")
    if raw["nbformat"] != 4:
        raise InvalidSubmission(
            f"notebook format version {raw['nbformat']}, expected 4: open it in JupyterLab and save it again"
        )
    try:
        nb = nbformat.reader.reads(text)
        cells = [(cell.cell_type, cell.get("source", "")) for cell in nb.cells]
        if not all(isinstance(source, str) for _, source in cells):
            raise TypeError("a cell source is not text")
    except Exception as exc:  # nbformat raises several kinds for a damaged structure
        raise InvalidSubmission(f"not a readable notebook: {exc}") from None
    return nb


def find_lesson(nb, path: Path, lessons: list[str]) -> str:
    """The submission's lesson: notebook metadata (set by `bpkit release`), else the file name."""
    meta = nb.metadata.get("bpkit") if isinstance(nb.metadata, dict) else None
    declared = meta.get("lesson") if isinstance(meta, dict) else None
    if isinstance(declared, str) and declared in lessons:
        return declared
    for number in LESSON_IN_NAME.findall(path.stem):
        if number in lessons:
            return number
    said = f"the notebook metadata says lesson {declared!r}" if declared is not None else (
        "the notebook has no bpkit lesson metadata (was it made from a lesson of `bpkit release`?)"
    )
    raise InvalidSubmission(
        f"unknown lesson: {said} and the file name has no lesson number; known lessons: {', '.join(lessons)}"
    )


def is_check_cell(cell) -> bool:
    """A check cell by its tag, its metadata or its one-line `checks.<id>(...)` source."""
    metadata = cell.get("metadata", {})
    tags = metadata.get("tags", [])
    if isinstance(tags, list) and any(str(tag).startswith("check:") for tag in tags):
        return True
    bpkit_meta = metadata.get("bpkit")
    if isinstance(bpkit_meta, dict) and "check" in bpkit_meta:
        return True
    lines = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return len(lines) == 1 and CHECK_CALL.match(lines[0]) is not None


def cell_label(number: int, source: str) -> str:
    """`cell 7 (`first line`)` for messages; numbers count every cell of the notebook from 1."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    first = first if len(first) <= 50 else first[:47] + "..."
    return f"cell {number} (`{first}`)" if first else f"cell {number}"


# -- running one submission in a kernel ----------------------------------------------------------


@dataclass
class Run:
    """What happened in the kernel: cell errors, where it stopped, and the JSON observations."""

    cell_errors: list[tuple[str, str, str]] = field(default_factory=list)  # (cell label, ename, evalue)
    stopped: str | None = None  # why the student's cells did not all run
    stopped_status: str = "error"  # timeout or error: the status of exercises the run never reached
    stopped_at: int | None = None  # notebook cell index where the run stopped; -1: no kernel left to check with
    deadline: float = 0.0  # time.monotonic() when the submission's budget runs out
    observations: dict[tuple[str, int], dict] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # exercise id -> "none" or the type found
    unchecked: dict[str, tuple[str, str]] = field(default_factory=dict)  # exercise id -> (status, reason)


_ACTIVE_KERNELS: dict[int, Any] = {}  # thread id -> kernel manager, so Ctrl-C can stop them all


def _kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Integer

    class LimitedKernelManager(AsyncKernelManager):
        """The grader's interpreter as kernel, started through LAUNCHER under an address-space cap."""

        memory_bytes = Integer(0)

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file, *(extra_arguments or [])]
            # -I: the launcher must not import modules from the student's folder (its cwd).
            return [sys.executable, "-I", "-c", LAUNCHER, str(self.memory_bytes), *kernel]

    return LimitedKernelManager


def _client_class():
    from nbclient import NotebookClient

    class QuietClient(NotebookClient):
        """Keeps only error outputs (prints and plots never pile up here) and notes cell timeouts."""

        timed_out = False

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] == "error":
                return super().output(outs, msg, display_id, cell_index)
            return None

        async def _async_handle_timeout(self, timeout, cell=None):
            # With interrupt_on_timeout nbclient interrupts the kernel and winds the cell down itself
            # (its output reader included, which would otherwise swallow the next cells' messages).
            self.timed_out = True
            return await super()._async_handle_timeout(timeout, cell)

    return QuietClient


def _copy_inputs(submission: Path, dest: Path, out_dir: Path) -> None:
    """Copy the submission's folder (its data files, not other notebooks) to be the kernel's cwd."""
    source = submission.parent.resolve()
    out_resolved = out_dir.resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if name in {".ipynb_checkpoints", "__pycache__", ".git"}
            or name.endswith(".ipynb")
            or Path(folder, name).resolve() == out_resolved
        }

    total = 0
    for folder, dirs, files in os.walk(source):
        skipped = ignore(folder, dirs + files)
        dirs[:] = [d for d in dirs if d not in skipped]
        for name in files:
            if name not in skipped:
                try:
                    total += os.lstat(Path(folder, name)).st_size
                except OSError:
                    pass
        if total > MAX_COPY_BYTES:  # a home folder by mistake: the notebook alone, not gigabytes
            dest.mkdir()
            break
    else:
        shutil.copytree(source, dest, ignore=ignore, symlinks=True)
    shutil.copyfile(submission, dest / submission.name)


async def _execute(client, cell, index: int, seconds: float, store_history: bool = True) -> bool:
    """Run one cell with a wall-clock limit (errors stay in its outputs); True when it timed out."""
    deadline = time.monotonic() + max(seconds, 0.05)
    client.timeout_func = lambda _cell: max(deadline - time.monotonic(), 0.05)
    client.timed_out = False
    await client.async_execute_cell(cell, index, store_history=store_history)
    return client.timed_out


async def _responsive(client) -> bool:
    """After a timeout (the kernel was interrupted): does it answer a trivial cell again?"""
    import nbformat

    probe = nbformat.v4.new_code_cell("pass")
    client.nb.cells.append(probe)
    return not await _execute(client, probe, len(client.nb.cells) - 1, PROBE_SECONDS, store_history=False)


async def _run_kernel(nb, exercises, cases_of: dict, submission: Path, workdir: Path, options: Options) -> Run:
    """Run the student's cells then one harness cell per exercise; collect what the kernel observed."""
    import nbformat

    run = Run()
    inputs, private = workdir / "work", workdir / "io"
    private.mkdir()
    _copy_inputs(submission, inputs, options.out)
    (private / "observations.jsonl").touch()

    defined_at: dict[str, int] = {}
    student_cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or is_check_cell(cell) or not cell.source.strip():
            continue
        for name in DEF_LINE.findall(cell.source):
            defined_at[name] = index
        student_cells.append((index, nbformat.v4.new_code_cell(cell.source)))

    km = _kernel_manager_class()(kernel_name="python3", memory_bytes=options.memory_mb * 2**20)
    client = _client_class()(
        nbformat.v4.new_notebook(cells=[cell for _, cell in student_cells]),
        km=km,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "Timeout", "evalue": "the time limit was reached", "traceback": []},
        startup_timeout=60,
        shutdown_kernel="immediate",
        skip_cells_with_tag="bpkit-grade-never-skips",
        record_timing=False,
    )
    _ACTIVE_KERNELS[threading.get_ident()] = km
    started = False
    log_path = private / "kernel.log"
    try:
        with open(log_path, "wb") as log:  # the kernel's own stderr: kept out of the progress bar
            async with client.async_setup_kernel(
                cwd=str(inputs), env={**os.environ, **KERNEL_ENV}, cleanup_kc=True, stdout=log, stderr=log
            ):
                started = True
                await _run_cells(client, student_cells, run, options)
                if run.stopped_at != -1:
                    await _run_checks(client, exercises, cases_of, defined_at, private, run, options)
    except Exception as exc:
        if started:
            raise
        said = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()][-2:]
        run.stopped, run.stopped_at = (
            f"the kernel did not start ({type(exc).__name__}: {exc}; kernel log: {' / '.join(said) or 'empty'}); "
            f"a kernel needs a few hundred MB (--memory-mb is {options.memory_mb})",
            -1,
        )
    finally:
        _ACTIVE_KERNELS.pop(threading.get_ident(), None)
    _read_observations(private / "observations.jsonl", run)
    return run


async def _run_cells(client, student_cells, run: Run, options: Options) -> None:
    """Run the student's cells in order within their share of the budget; record errors and stops."""
    from nbclient.exceptions import DeadKernelError

    # The checks are guaranteed the last quarter of the budget (at most 30 s), the cells get the rest.
    run.deadline = time.monotonic() + options.timeout
    cells_deadline = run.deadline - min(options.timeout / 4, 30.0)
    for position, (index, cell) in enumerate(student_cells):
        label = cell_label(index + 1, cell.source)
        try:
            timed_out = await _execute(client, cell, position, cells_deadline - time.monotonic())
        except DeadKernelError:
            run.stopped = (
                f"the kernel died while running {label} (os._exit, a crash, or more memory than the "
                f"{options.memory_mb} MB cap)"
            )
            run.stopped_at = -1
            return
        if timed_out:
            run.stopped_status, run.stopped_at = "timeout", index
            if await _responsive(client):
                run.stopped = f"the notebook ran out of time in {label}, which was interrupted"
            else:
                run.stopped = f"the notebook ran out of time in {label} and did not respond to an interrupt"
                run.stopped_at = -1
            return
        for output in cell.outputs:
            if output.get("output_type") == "error":
                run.cell_errors.append((label, output.get("ename", "Error"), str(output.get("evalue", ""))[:300]))


async def _run_checks(client, exercises, cases_of, defined_at, private: Path, run: Run, options: Options) -> None:
    """One harness cell per exercise; a hung or dead kernel is recorded against the exercises left."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    from bpkit.checks import _harness

    # The harness is sent as source text and exec'd there, never imported from the kernel's bpkit.
    harness_source = Path(_harness.__file__).read_text(encoding="utf-8")
    for position, exercise in enumerate(exercises):
        if run.stopped_at is not None and defined_at.get(exercise.id, -1) >= run.stopped_at:
            run.unchecked[exercise.id] = (run.stopped_status, f"not reached: {run.stopped}")
            continue
        # Each exercise still to check gets a fair share of the time left.
        share = (run.deadline - time.monotonic()) / (len(exercises) - position)
        if share <= 0:
            run.unchecked[exercise.id] = ("timeout", "not checked: the time limit was used up before this exercise")
            continue
        cases_path = private / f"cases-{exercise.id}.pkl"
        shipped = [
            (exercise.id, i, c.args, c.kwargs, exercise.kind, exercise.strict_fp)
            for i, c in enumerate(cases_of[exercise.id])
        ]
        try:
            cases_path.write_bytes(pickle.dumps(shipped))
        except Exception as exc:  # a checker whose cases cannot travel: the course's bug, not the student's
            run.unchecked[exercise.id] = ("error", f"the checker's cases could not be sent to the kernel ({exc})")
            continue
        call = (harness_source, str(cases_path), str(private / "observations.jsonl"), exercise.id)
        cell = nbformat.v4.new_code_cell(f"{HARNESS_CELL}__bpkit_check{call!r}\ndel __bpkit_check\n")
        client.nb.cells.append(cell)
        try:
            timed_out = await _execute(client, cell, len(client.nb.cells) - 1, share, store_history=False)
        except DeadKernelError:
            died = (
                f"the kernel died while checking {exercise.id} "
                f"(os._exit, a crash, or memory over the {options.memory_mb} MB cap)"
            )
            for rest in exercises[position:]:
                run.unchecked[rest.id] = ("error", died if rest is exercise else f"not checked: {died}")
            return
        if timed_out:
            hung = f"your function did not return within {share:.1f} s (an endless loop?)"
            run.unchecked[exercise.id] = ("timeout", hung)
            if not await _responsive(client):
                for rest in exercises[position + 1 :]:
                    run.unchecked[rest.id] = ("timeout", f"not checked: the kernel hung while checking {exercise.id}")
                return
            continue
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            # The harness itself failed (e.g. the student shadowed a module it needs); observations so far count.
            message = f"the checks could not run in this notebook: {errors[0].ename}: {errors[0].evalue}"
            run.unchecked[exercise.id] = ("error", message[:400])


def _read_observations(path: Path, run: Run) -> None:
    """Read the kernel's JSON lines defensively: the student's code could have written anything there."""
    read = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            read += len(line)
            if read > MAX_OBSERVATION_BYTES:
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("exercise"), str):
                continue
            if "missing" in record:
                run.missing[record["exercise"]] = str(record["missing"])
            elif isinstance(record.get("case"), int) and isinstance(record.get("observation"), dict):
                run.observations.setdefault((record["exercise"], record["case"]), record["observation"])


# -- judging -------------------------------------------------------------------------------------


def judge(exercise, cases: list, run: Run) -> tuple[str, str]:
    """Status and message of one exercise from the kernel's observations, decided in this process."""
    from bpkit.checks import CheckFailure

    if exercise.id in run.missing:
        found = run.missing[exercise.id]
        if found == "none":
            return "fail", f"`{exercise.id}` is not defined: the notebook has no such function (renamed or deleted?)"
        return "fail", f"`{exercise.id}` is a {found}, not a function: define it with `def {exercise.id}(...)`"
    for index, case in enumerate(cases):
        observation = run.observations.get((exercise.id, index))
        if observation is None:
            if exercise.id in run.unchecked:
                status, reason = run.unchecked[exercise.id]
                prefix = f"stopped on {case.label}: " if index and status == "timeout" else ""
                return status, prefix + reason
            return "error", "not checked: the kernel produced no result for it"
        try:
            exercise.verdict(index, observation, cases)
        except CheckFailure as failure:
            return "fail", str(failure)
        except Exception as exc:  # a malformed observation or a checker bug must not stop the gradebook
            return "error", f"the checker could not judge the result ({type(exc).__name__}: {exc})"
    return "pass", f"passed ({len(cases)} cases)"


def grade_submission(path: Path, student: str, options: Options) -> Result:
    """Grade one notebook file; never raises, so one bad submission cannot stop the others."""
    try:
        return _grade(path, student, options)
    except Exception as exc:  # a bug of the grader or a checker, reported in the gradebook
        message = f"the grader failed on this notebook ({type(exc).__name__}: {exc}); please report it"
        return Result(str(path), student, "", [_row(path, student, "", "", 0, 0, "error", message)])


def _grade(path: Path, student: str, options: Options) -> Result:
    lessons = known_lessons()
    try:
        nb = read_submission(path)
        lesson = find_lesson(nb, path, lessons)
    except InvalidSubmission as exc:
        guess = next((n for n in LESSON_IN_NAME.findall(path.stem) if n in lessons), "")
        return _invalid(path, student, guess, str(exc))
    exercises = lesson_exercises(lesson)
    cases_of = {exercise.id: exercise.cases() for exercise in exercises}
    workdir = Path(tempfile.mkdtemp(prefix="bpkit-grade-"))
    try:
        run = asyncio.run(_run_kernel(nb, exercises, cases_of, path, workdir, options))
    except Exception as exc:  # the grader's own failure on this notebook: recorded, the others go on
        run = Run(stopped=f"the grader failed on this notebook ({type(exc).__name__}: {exc})", stopped_at=-1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for exercise in exercises:
        if run.stopped_at == -1 and exercise.id not in run.unchecked and not any(
            key[0] == exercise.id for key in run.observations
        ):
            status, message = run.stopped_status, f"not checked: {run.stopped}"
        else:
            status, message = judge(exercise, cases_of[exercise.id], run)
        points = exercise.points if status == "pass" else 0
        rows.append(_row(path, student, lesson, exercise.id, points, exercise.points, status, message))
    notes = [
        f"{label} raised {ename}: {evalue}"
        + (f" (out of memory: a notebook may use at most {options.memory_mb} MB)" if ename == "MemoryError" else "")
        for label, ename, evalue in run.cell_errors
    ]
    if run.stopped:
        notes.append(run.stopped[0].upper() + run.stopped[1:] + ".")
    return Result(str(path), student, lesson, rows, notes)


def _row(path, student, lesson, exercise, points, max_points, status, message) -> dict:
    return dict(submission=str(path), student=student, lesson=lesson, exercise=exercise, points=points,
                max_points=max_points, status=status, message=message)


def _invalid(path: Path, student: str, lesson: str, reason: str) -> Result:
    max_points = sum(e.points for e in lesson_exercises(lesson)) if lesson else 0
    return Result(str(path), student, lesson, [_row(path, student, lesson, "", 0, max_points, "invalid", reason)])


# -- the gradebook -------------------------------------------------------------------------------


def _csv_text(fields: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summary_rows(results: list[Result]) -> list[dict]:
    """One row per submission: points earned, points possible, percentage."""
    rows = []
    for result in results:
        total = sum(int(row["points"]) for row in result.rows)
        possible = sum(int(row["max_points"]) for row in result.rows)
        percentage = f"{100 * total / possible:.1f}" if possible else "0.0"
        rows.append(dict(submission=result.submission, student=result.student, lesson=result.lesson,
                         total=total, max_points=possible, percentage=percentage))
    return rows


def feedback_text(result: Result) -> str:
    """The student's feedback file: score, one line per exercise, then each failure in full."""
    total = sum(int(row["points"]) for row in result.rows)
    possible = sum(int(row["max_points"]) for row in result.rows)
    lines = [f"# Feedback for {result.student}", ""]
    if result.rows and result.rows[0]["status"] == "invalid":
        lines += [
            f"Your file `{Path(result.submission).name}` could not be graded: {result.rows[0]['message']}.",
            "",
            "Please hand in the notebook again (save it in JupyterLab first, then send the .ipynb file).",
            "",
        ]
        return "\n".join(lines)
    share = f" ({100 * total / possible:.0f}%)" if possible else ""
    lines += [f"Lesson {result.lesson}: **{total} / {possible} points**{share}", ""]
    lines += ["| exercise | points | result |", "|---|---|---|"]
    verdicts = {"pass": "passed", "fail": "failed", "error": "not checked", "timeout": "timed out"}
    for row in result.rows:
        mark = "✔" if row["status"] == "pass" else "✘"
        verdict = verdicts.get(row["status"], row["status"])
        lines.append(f"| `{row['exercise']}` | {row['points']} / {row['max_points']} | {mark} {verdict} |")
    lines.append("")
    for row in result.rows:
        if row["status"] != "pass":
            verdict = verdicts.get(row["status"], row["status"])
            lines += [f"## `{row['exercise']}`: {verdict}", "", "```text", row["message"], "```", ""]
    if result.notes:
        lines += ["## Notes from running your notebook", ""]
        lines += [f"- {note}" for note in result.notes]
        lines.append("")
    if all(row["status"] == "pass" for row in result.rows):
        lines += ["Every exercise passed. Well done!", ""]
    return "\n".join(lines)


class Gradebook:
    """grades.csv, summary.csv and feedback/ in the --out folder, rewritten after every submission."""

    def __init__(self, out: Path, resume: bool, submissions: list[Path]):
        self.out = out
        self.results: list[Result] = []
        # Command-line order; submissions from an earlier run (--resume) that are not on it come first.
        self.position = {str(p): i for i, p in enumerate(submissions)}
        out.mkdir(parents=True, exist_ok=True)
        (out / "feedback").mkdir(exist_ok=True)
        grades = out / "grades.csv"
        if resume and grades.exists():
            with open(grades, encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames != GRADE_FIELDS:
                    raise ValueError(f"{grades} does not have the columns {', '.join(GRADE_FIELDS)}; use another --out")
                by_submission: dict[str, Result] = {}
                for row in reader:
                    result = by_submission.setdefault(
                        row["submission"], Result(row["submission"], row["student"], row["lesson"], [])
                    )
                    result.rows.append(row)
            self.results = list(by_submission.values())
        self.save()  # also proves the folder is writable before any kernel starts

    def graded(self, path: Path) -> bool:
        """Is this submission already in the gradebook (as typed, or as the same file)?"""
        resolved = path.resolve()
        return any(r.submission == str(path) or Path(r.submission).resolve() == resolved for r in self.results)

    def add(self, result: Result) -> None:
        """Record one submission: its feedback file, then the two CSV files."""
        self.results.append(result)
        self.results.sort(key=lambda r: self.position.get(r.submission, -1))
        write_atomic(self.out / "feedback" / f"{result.student}.md", feedback_text(result))
        self.save()

    def save(self) -> None:
        """Rewrite grades.csv and summary.csv atomically (a reader never sees half a file)."""
        write_atomic(self.out / "grades.csv", _csv_text(GRADE_FIELDS, [row for r in self.results for row in r.rows]))
        write_atomic(self.out / "summary.csv", _csv_text(SUMMARY_FIELDS, summary_rows(self.results)))


def student_names(submissions: list[Path], taken: set[str]) -> dict[Path, str]:
    """File stems, prefixed by the folder name where two submissions share a stem."""
    stems: dict[str, int] = {}
    for path in submissions:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    names: dict[Path, str] = {}
    used = set(taken)
    for path in submissions:
        name = path.stem if stems[path.stem] == 1 else f"{path.resolve().parent.name}_{path.stem}"
        base, n = name, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        names[path] = name
    return names


def _stop_kernels() -> None:
    """Kill the kernels still running (after Ctrl-C) so the worker threads can finish at once."""
    for km in list(_ACTIVE_KERNELS.values()):
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass


def main(args: argparse.Namespace) -> int:
    """Grade every submission into args.out; 0 when grading completed, whatever the scores."""
    from tqdm import tqdm

    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    for problem, bad in (("--jobs must be at least 1", jobs < 1), ("--timeout must be positive", args.timeout <= 0),
                         ("--memory-mb must be positive", args.memory_mb <= 0)):
        if bad:
            print(f"bpkit grade: error: {problem}", file=sys.stderr)
            return 2
    submissions = list(dict.fromkeys(args.submissions))  # the same path twice is graded once
    try:
        book = Gradebook(args.out, args.resume, submissions)
    except (OSError, ValueError) as exc:
        print(f"bpkit grade: error: cannot write the gradebook: {exc}", file=sys.stderr)
        return 2
    todo = [p for p in submissions if not (args.resume and book.graded(p))]
    if len(todo) < len(submissions):
        print(f"resuming: {len(submissions) - len(todo)} submissions already graded in {args.out / 'grades.csv'}")
    names = student_names(todo, {r.student for r in book.results})
    options = Options(timeout=args.timeout, memory_mb=args.memory_mb, out=args.out)
    failed = 0
    bar = tqdm(total=len(todo), unit="notebook", desc="grading", disable=None, file=sys.stderr)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="bpkit-grade")
    try:
        pending = {pool.submit(grade_submission, p, names[p], options) for p in todo}
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                book.add(result)
                failed += result.problem
                bar.update(1)
                bar.set_postfix(failed=failed, remaining=len(pending))
    except KeyboardInterrupt:  # results still in flight are dropped: --resume grades them again
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_kernels()
        bar.close()
        print(f"\ninterrupted: {len(book.results)} submissions are in {args.out}; run again with --resume to finish",
              file=sys.stderr)
        return 130
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    print(f"graded {len(todo)} submissions ({failed} with problems) into {args.out}")
    return 0
