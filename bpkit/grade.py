"""`bpkit grade`: run student notebooks in sandboxes and score every exercise of their lesson.

The pipeline, one module per step (bpkit/grading/):
1. submission  read the file (an unreadable one becomes one `invalid` row), find its lesson, flag
               code that reaches for the checkers' reference answers;
2. sandbox     a fresh bubblewrap sandbox per submission: read-only system, no network, own PID
               namespace, a private copy of the submission folder, bpkit without the answers, a
               memory cap over the whole process tree;
3. execute     run the student's cells (not the check cells) through IPython in the sandbox, then
               send each exercise's cases, drawn from this run's secret seed, over a channel
               whose replies must carry a fresh nonce and are read with a size bound;
4. judge       compare the returned outputs with the reference answers here, in the grader;
5. gradebook   grades.csv, summary.csv and feedback/<student>.md, rewritten atomically after each
               submission, every student-made text cleaned and capped, every row signed.
"""
from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import sys
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from bpkit.grading.execute import Options, Run, run_submission
from bpkit.grading.gradebook import PROBLEM_STATUSES, Gradebook, Result, clean, make_row  # noqa: F401
from bpkit.grading.judge import judge_exercise
from bpkit.grading.sandbox import (
    SandboxUnavailable,
    WorkArea,
    build_course_copy,
    check_bwrap,
    kill_all,
    source_checkout_folders,
)
from bpkit.grading.submission import (
    InvalidSubmission,
    defined_at,
    find_lesson,
    lesson_in_name,
    read_notebook,
    reference_flags,
    student_cells,
)

MAX_COPY_BYTES = 256 * 2**20  # a submission folder larger than this is not copied, only the notebook
MIN_MEMORY_MB = 300  # below this a kernel cannot even import NumPy and IPython


def known_lessons() -> list[str]:
    """Lessons that have at least one graded exercise."""
    from bpkit.checks import EXERCISES

    return sorted({exercise.lesson for exercise in EXERCISES.values()})


def lesson_exercises(lesson: str) -> list:
    """The registered exercises of one lesson, in catalogue order."""
    from bpkit.checks import EXERCISES

    return [exercise for exercise in EXERCISES.values() if exercise.lesson == lesson]


class Grader:
    """Everything one run shares: options, secret seed, work area, the sandbox's course copy."""

    def __init__(self, options: Options, seed: int, lesson: str | None, out: Path, submissions: list[Path]):
        self.options = options
        self.seed = seed
        self.lesson = lesson
        self.out = out
        self.area = WorkArea()
        self.course_copy = build_course_copy(self.area.path / "course") if options.sandboxed else None
        # What no sandbox may see: the gradebook, every submission's folder, our work folders, the
        # course checkout (solutions, tests) when bpkit runs from one.
        self.hide = [out, self.area.path.parent, *{p.parent for p in submissions}, *source_checkout_folders()]
        self._count = 0

    def close(self) -> None:
        self.area.close()

    def grade(self, path: Path, student: str) -> Result:
        """Grade one notebook file; never raises, so one bad submission cannot stop the others."""
        try:
            return self._grade(path, student)
        except Exception as exc:  # a bug of the grader or a checker, reported in the gradebook
            message = f"the grader failed on this notebook ({type(exc).__name__}: {exc}); please report it"
            return Result(clean(path, 1000), student, "", [make_row(path, student, "", "", 0, 0, "error", message)],
                          sandbox=self._sandbox_name())

    def _sandbox_name(self) -> str:
        return "bwrap" if self.options.sandboxed else "none"

    def _grade(self, path: Path, student: str) -> Result:
        from bpkit.checks._core import secret_seed

        lessons = known_lessons()
        try:
            nb = read_notebook(path)
            lesson, notes = find_lesson(nb, path, lessons, self.lesson)
        except InvalidSubmission as exc:
            guess = self.lesson or lesson_in_name(path, lessons) or ""
            max_points = sum(e.points for e in lesson_exercises(guess)) if guess else 0
            row = make_row(path, student, guess, "", 0, max_points, "invalid", str(exc))
            return Result(clean(path, 1000), student, guess, [row], sandbox=self._sandbox_name())
        cells = student_cells(nb)
        flags = reference_flags(cells)
        exercises = lesson_exercises(lesson)
        with secret_seed(self.seed):
            cases_of = {exercise.id: exercise.cases() for exercise in exercises}
        self._count += 1
        folder = Path(os.path.join(self.area.path, f"sub-{os.getpid()}-{id(path)}-{secrets.token_hex(4)}"))
        folder.mkdir()
        try:
            _copy_inputs(path, folder / "work", self.out)
            run = run_submission(cells, defined_at(cells), exercises, cases_of, folder / "work", self.course_copy,
                                 self.hide, folder / "kernel.log", self.options)
        except Exception as exc:  # the grader's own failure on this notebook: recorded, the others go on
            run = Run(stopped=f"the grader failed on this notebook ({type(exc).__name__}: {exc})", stopped_at=-1)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows = []
        for exercise in exercises:
            reached = exercise.id in run.unchecked or exercise.id in run.observations or exercise.id in run.missing
            if run.stopped_at == -1 and not reached:
                status, message = run.stopped_status, f"not checked: {run.stopped}"
            else:
                with secret_seed(self.seed):
                    status, message = judge_exercise(exercise, cases_of[exercise.id], run)
            points = exercise.points if status == "pass" else 0
            rows.append(make_row(path, student, lesson, exercise.id, points, exercise.points, status, message, flags))
        notes += [
            f"{label} raised {ename}: {evalue}"
            + (f" (out of memory: a notebook may use at most {self.options.memory_mb} MB)" if ename == "MemoryError" else "")
            for label, ename, evalue in run.cell_errors
        ]
        if run.stopped:
            notes.append(run.stopped[0].upper() + run.stopped[1:] + ".")
        if flags:
            notes.append("This notebook refers to the checkers' reference answers or bpkit's own files; "
                         "your instructor sees this flag.")
        return Result(clean(path, 1000), student, lesson, rows, [clean(n, 600) for n in notes], flags,
                      self._sandbox_name())


def _copy_inputs(submission: Path, dest: Path, out_dir: Path) -> None:
    """Copy the submission's folder (its data files, not notebooks) to be the kernel's working folder."""
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
            break
    else:
        try:
            shutil.copytree(source, dest, ignore=ignore, symlinks=True)
        except (OSError, shutil.Error):
            shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(exist_ok=True)
    shutil.copyfile(submission, dest / "submission.ipynb")


def student_names(submissions: list[Path], taken: set[str]) -> dict[Path, str]:
    """File stems (cleaned), prefixed by the folder name where two submissions share a stem."""
    stems: dict[str, int] = {}
    for path in submissions:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    names: dict[Path, str] = {}
    used = set(taken)
    for path in submissions:
        name = path.stem if stems[path.stem] == 1 else f"{path.resolve().parent.name}_{path.stem}"
        name = clean(name, 120).replace("\n", " ")
        base, n = name, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        names[path] = name
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `bpkit grade` (cli.py builds the parser)."""
    p.add_argument("submissions", nargs="+", type=Path, help="student notebooks (.ipynb)")
    p.add_argument("--out", type=Path, required=True, help="folder for grades.csv, summary.csv, feedback/")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded in parallel (default: cores)")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory cap per submission (its whole process tree)")
    p.add_argument("--resume", action="store_true", help="skip submissions already graded in --out")
    p.add_argument("--lesson", metavar="NN", default=None,
                   help="grade every file as this lesson (default: the notebook's metadata, checked against the file name)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the check inputs (default: a new secret each run; the run prints it)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap, with your rights: only for notebooks you trust")


def _refuse(problem: str) -> int:
    print(f"bpkit grade: error: {problem}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    """Grade every submission into args.out; 0 when grading completed, whatever the scores."""
    from tqdm import tqdm

    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    problems = [
        ("--jobs must be at least 1", jobs < 1),
        ("--timeout must be a positive number of seconds", not math.isfinite(args.timeout) or args.timeout <= 0),
        (f"--memory-mb must be at least {MIN_MEMORY_MB} (a kernel needs that much to start)", args.memory_mb < MIN_MEMORY_MB),
    ]
    for problem, bad in problems:
        if bad:
            return _refuse(problem)
    lessons = known_lessons()
    if args.lesson is not None and args.lesson not in lessons:
        return _refuse(f"--lesson {args.lesson}: no such lesson; known lessons: {', '.join(lessons)}")
    sandboxed = not args.no_sandbox
    if sandboxed:
        try:
            check_bwrap()
        except SandboxUnavailable as exc:
            return _refuse(str(exc))
    else:
        print("bpkit grade: WARNING: --no-sandbox: student code runs with your rights and can read and change "
              "your files and other submissions; use it only for notebooks you trust", file=sys.stderr)
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    submissions = list(dict.fromkeys(args.submissions))  # the same path twice is graded once
    try:
        book = Gradebook(args.out, args.resume, submissions)
    except (OSError, ValueError) as exc:
        return _refuse(f"cannot write the gradebook: {exc}")
    if book.dropped:
        print(f"resuming: {len(book.dropped)} submissions in {args.out / 'grades.csv'} were not written by this grader "
              f"(signature missing or wrong) and are graded again", file=sys.stderr)
    todo = [p for p in submissions if not (args.resume and book.graded(p))]
    if len(todo) < len(submissions):
        print(f"resuming: {len(submissions) - len(todo)} submissions already graded in {args.out / 'grades.csv'}")
    names = student_names(todo, {r.student for r in book.results})
    options = Options(timeout=args.timeout, memory_mb=args.memory_mb, sandboxed=sandboxed)
    grader = Grader(options, seed, args.lesson, args.out, submissions)
    if grader.area.stale_removed:
        print(f"removed {grader.area.stale_removed} work folders left by an earlier run that was killed", file=sys.stderr)
    failed = 0
    bar = tqdm(total=len(todo), unit="notebook", desc="grading", disable=None, file=sys.stderr)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="bpkit-grade")
    try:
        pending = {pool.submit(grader.grade, p, names[p]) for p in todo}
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
        kill_all()
        bar.close()
        print(f"\ninterrupted: {len(book.results)} submissions are in {args.out}; run again with --resume to finish",
              file=sys.stderr)
        return 130
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        grader.close()
    mode = "in bubblewrap sandboxes" if sandboxed else "WITHOUT a sandbox (--no-sandbox)"
    print(f"graded {len(todo)} submissions ({failed} with problems) {mode} into {args.out}; "
          f"check inputs from seed {seed} (--seed {seed} reproduces them)")
    return 0
