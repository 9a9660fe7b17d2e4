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
import csv
import math
import os
import re
import secrets
import sqlite3
import sys
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from bpkit.grading.execute import Options
from bpkit.grading.gradebook import Result, clean, make_row
from bpkit.grading.grader import (  # noqa: F401 - known_lessons, lesson_exercises: re-exported
    Grader,
    data_files,
    invalid_result,
    known_lessons,
    lesson_exercises,
)
from bpkit.grading.sandbox import SandboxUnavailable, check_bwrap, kill_all
from bpkit.grading.view import ViewUnavailable
from bpkit.notebook import LESSON_FILE, STUDENT_IN_NAME, InvalidNotebook

MIN_MEMORY_MB = 300  # below this a kernel cannot even import NumPy and IPython
MAX_OWNERSHIP_SCAN = 2000  # entries looked at to decide whether a folder is one student's


def student_id(path: Path, pattern: re.Pattern) -> str:
    """The student a file belongs to: the pattern's `student` group of the file stem
    (`alice_01` -> `alice`), or the folder name for a file that keeps the lesson's own name
    (`alice/01_neurons.ipynb` -> `alice`)."""
    stem = path.stem
    if LESSON_FILE.match(stem):
        return clean(path.resolve().parent.name, 120).replace("\n", " ")
    match = pattern.match(stem)
    found = match.group("student") if match and match.group("student") else stem
    return clean(found, 120).replace("\n", " ")


def file_digest(path: Path) -> tuple[str, str]:
    """(sha256 of the file, its modification time as UTC ISO); ("", "") for what is not a regular
    notebook file (a symbolic link, a device, too large: the grade says why), "" for a time no
    calendar holds."""
    import hashlib

    from bpkit.files import read_regular, utc_stamp
    from bpkit.notebook import MAX_NOTEBOOK_BYTES

    try:
        data = read_regular(path, MAX_NOTEBOOK_BYTES)
        return hashlib.sha256(data).hexdigest(), utc_stamp(os.lstat(path).st_mtime)
    except OSError:
        return "", ""


def own_folders(files: list[Path], names: dict[Path, str], pattern: re.Pattern) -> set[Path]:
    """The folders of `files` that hold one student's notebooks only: their data files may go along.
    A class folder (many students' notebooks, or too many entries to tell) brings none."""
    owned = set()
    for folder in {p.parent for p in files}:
        students = set()
        seen = 0
        for root, dirs, entries in os.walk(folder):
            dirs[:] = [d for d in dirs if d != ".ipynb_checkpoints"]
            seen += len(dirs) + len(entries)
            students |= {student_id(Path(root, e), pattern) for e in entries if e.endswith(".ipynb")}
            if seen > MAX_OWNERSHIP_SCAN or len(students) > 1:
                break
        if seen <= MAX_OWNERSHIP_SCAN and len(students) == 1:
            owned.add(folder)
    return owned


def parse_due(text: str) -> str:
    """--due as UTC ISO (a time without a zone is local time)."""
    from datetime import datetime, timezone

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_roster(path: Path) -> list[dict]:
    """id,name,email rows (name and email optional); raises ValueError with what is wrong."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        if "id" not in fields:
            raise ValueError(f"{path} needs a header line with an `id` column (and optionally `name`, `email`)")
        roster, seen = [], set()
        for number, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            if not row.get("id"):
                raise ValueError(f"{path}, line {number}: empty student id")
            if row["id"] in seen:
                raise ValueError(f"{path}, line {number}: student id {row['id']!r} appears twice")
            seen.add(row["id"])
            roster.append(dict(id=row["id"], name=row.get("name", ""), email=row.get("email", "")))
    return roster


def _refuse(problem: str) -> int:
    print(f"bpkit grade: error: {problem}", file=sys.stderr)
    return 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `bpkit grade` (cli.py builds the parser)."""
    p.add_argument("submissions", nargs="*", type=Path, help="student notebooks (.ipynb)")
    p.add_argument("--out", type=Path, required=True,
                   help="the class's gradebook folder: gradebook.sqlite, CSV exports, report.html, feedback/")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded in parallel (default: cores)")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory cap per submission (its whole process tree)")
    p.add_argument("--resume", action="store_true",
                   help="skip files already graded with the same content (a changed file is graded again)")
    p.add_argument("--lesson", metavar="NN", default=None,
                   help="grade every file as this lesson (default: the notebook's metadata, checked against the file name)")
    p.add_argument("--roster", type=Path, default=None, help="CSV of the class: id,name,email (name, email optional)")
    p.add_argument("--name-pattern", default=STUDENT_IN_NAME, metavar="REGEX",
                   help="regex with a (?P<student>...) group, matched against each file stem "
                        "(default: the stem minus a trailing lesson number, alice_01 -> alice)")
    p.add_argument("--student", action="append", default=None, metavar="ID",
                   help="grade only the given files of this student (repeatable); the rest of the gradebook stays")
    p.add_argument("--due", default=None, metavar="ISO-TIME",
                   help="due date, e.g. 2026-12-01T23:59 (local time) or ...Z (UTC): marks late submissions")
    p.add_argument("--export", action="store_true", help="write the exports and report from the gradebook, grade nothing")
    p.add_argument("--exercises", action="append", type=Path, default=[], metavar="PATH",
                   help="a .py file or folder of your own exercises (same API as bpkit.checks; repeatable)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the check inputs (default: a new secret each run; the run prints it)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap, with your rights: only for notebooks you trust")
    p.add_argument("--no-fork-server", action="store_true",
                   help="start every submission's sandbox from scratch instead of forking it from a template "
                        "that has NumPy, matplotlib and IPython imported (slower; for comparison)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="grade on a Dask cluster, over TLS: local:N for N worker processes here, tls://host:port, or "
                        "gateway:NAME (dask-gateway); needs backprop-kit[cluster]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary line (errors still go to stderr)")
    p.add_argument("--json", action="store_true", help="print a JSON summary of the run on stdout")


def _check_options(args: argparse.Namespace, lessons: list[str]) -> str | None:
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        return "--jobs must be at least 1"
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        return "--timeout must be a positive number of seconds"
    if args.memory_mb < MIN_MEMORY_MB:
        return f"--memory-mb must be at least {MIN_MEMORY_MB} (a kernel needs that much to start)"
    if args.lesson is not None and args.lesson not in lessons:
        return f"--lesson {args.lesson}: no such lesson; known lessons: {', '.join(lessons)}"
    try:
        pattern = re.compile(args.name_pattern)
    except re.error as exc:
        return f"--name-pattern is not a valid regex ({exc})"
    if "student" not in pattern.groupindex:
        return "--name-pattern needs a (?P<student>...) group"
    if args.due is not None:
        try:
            parse_due(args.due)
        except ValueError:
            return f"--due {args.due!r} is not a date and time like 2026-12-01T23:59"
    if not args.submissions and not args.export:
        return "no submissions given (give .ipynb files, or --export to rewrite the reports)"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out} is a file, not a folder"
    return None


def main(args: argparse.Namespace) -> int:
    """Grade submissions into the class gradebook in args.out.

    Exit code: 0 grading completed (whatever the scores); 1 completed, but some named files do not
    exist; 2 the grader could not run (bad option, no sandbox, --out not writable); 130 interrupted.
    """
    import json

    from tqdm import tqdm

    from bpkit.checks import ExerciseLoadError, load_exercises
    from bpkit.grading.report import write_exports
    from bpkit.grading.store import Store

    for path in args.exercises:
        try:
            load_exercises(path)
        except ExerciseLoadError as exc:
            return _refuse(f"cannot load exercises: {exc}")
    lessons = known_lessons()
    problem = _check_options(args, lessons)
    if problem:
        return _refuse(problem)
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    roster = None
    if args.roster is not None:
        try:
            roster = read_roster(args.roster)
        except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
            return _refuse(f"cannot read the roster: {exc}")
    due = parse_due(args.due) if args.due else None
    sandboxed = not args.no_sandbox
    if sandboxed and not args.export and not args.cluster:  # on a cluster, each worker checks its own
        try:
            check_bwrap()
        except SandboxUnavailable as exc:
            return _refuse(str(exc))
    try:
        store = Store(args.out)
    except (OSError, ValueError, sqlite3.Error) as exc:
        return _refuse(f"cannot write the gradebook: {exc}")
    try:
        if roster is not None:
            store.set_roster(roster)
        if args.export:
            if due:
                store.set_due([args.lesson] if args.lesson else store.lessons(), due)
            paths = write_exports(store)
            if args.json:
                print(json.dumps({"exported": {name: str(path) for name, path in paths.items()}}, indent=1))
            elif not args.quiet:
                print(f"exports and report written in {args.out}")
            return 0
        return _grade_all(args, store, jobs, sandboxed, due, lessons, tqdm, json, write_exports)
    finally:
        store.close()


def _grade_all(args, store, jobs, sandboxed, due, lessons, tqdm, json, write_exports) -> int:
    pattern = re.compile(args.name_pattern)
    quiet = args.quiet
    if not sandboxed:
        print("bpkit grade: WARNING: --no-sandbox: student code runs with your rights and can read and change "
              "your files and other submissions; use it only for notebooks you trust", file=sys.stderr)
    given = list(dict.fromkeys(args.submissions))  # the same path twice is graded once
    absent = [p for p in given if not p.exists()]
    for path in absent:
        print(f"bpkit grade: warning: {clean(path, 300)}: no such file (a mistyped name, or a pattern that matched "
              f"nothing?); not graded", file=sys.stderr)
    files = [p for p in given if p.exists()]
    names = {p: student_id(p, pattern) for p in files}
    if args.student:
        wanted = set(args.student)
        files = [p for p in files if names[p] in wanted]
        unknown = wanted - {names[p] for p in files}
        for student in sorted(unknown):
            print(f"bpkit grade: warning: no file among those given belongs to student {student!r}", file=sys.stderr)
    roster_ids = {r["id"] for r in store.roster()}
    outside = sorted({names[p] for p in files} - roster_ids) if roster_ids else []
    if outside:
        print(f"bpkit grade: warning: not in the roster: {', '.join(outside[:20])}"
              + (" ..." if len(outside) > 20 else ""), file=sys.stderr)
    unsigned = store.unverified_count()
    if unsigned:
        print(f"bpkit grade: warning: {unsigned} rows of {args.out / 'gradebook.sqlite'} were not written by this grader "
              f"(signature missing or wrong); they are ignored", file=sys.stderr)
    digests = {p: file_digest(p) for p in files}
    absolute = {p: clean(os.path.abspath(p), 1000) for p in files}
    todo = [p for p in files if not (args.resume and store.graded(absolute[p], digests[p][0]))]
    if len(todo) < len(files) and not quiet:
        print(f"resuming: {len(files) - len(todo)} files already graded with the same content", file=sys.stderr)
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    options = Options(timeout=args.timeout, memory_mb=args.memory_mb, sandboxed=sandboxed,
                      fork_server=not args.no_fork_server)
    owned = own_folders(todo, names, pattern)
    if args.cluster:
        source = _cluster_results(args, todo, names, options, seed, owned=owned)
        grader = None
    else:
        try:
            grader = Grader(options, seed, args.lesson)
        except (ViewUnavailable, OSError) as exc:
            print(f"bpkit grade: error: cannot prepare the sandbox: {exc}", file=sys.stderr)
            return 2
        if grader.area.stale_removed and not quiet:
            print(f"removed {grader.area.stale_removed} work folders left by an earlier run that was killed",
                  file=sys.stderr)
        source = _local_results(grader, todo, names, jobs, owned)
    from datetime import datetime, timezone

    count, failed, lessons_done, summaries = 0, 0, set(), []  # nothing kept per submission but with --json
    bar = tqdm(total=len(todo), unit="notebook", desc="grading", disable=True if (quiet or args.no_progress) else None,
               file=sys.stderr)
    try:
        for path, result in source:
            if roster_ids and names[path] not in roster_ids:
                result.flags.append("not-in-roster")
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            store.add(result, absolute[path], digests[path][0], digests[path][1], now)
            count += 1
            failed += result.problem
            lessons_done.add(result.lesson)
            if args.json:
                summaries.append({"student": result.student, "lesson": result.lesson, "status": _status(result),
                                  "flags": result.flags, "kernel_cpu_seconds": round(result.kernel_cpu, 3),
                                  "total": sum(int(x["points"]) for x in result.rows),
                                  "max_points": sum(int(x["max_points"]) for x in result.rows)})
            bar.update(1)
            bar.set_postfix(failed=failed, remaining=len(todo) - count)
    except KeyboardInterrupt:  # results still in flight are dropped: --resume grades them again
        kill_all()
        bar.close()
        _record_due(store, args, due, lessons_done)
        write_exports(store)
        print(f"\ninterrupted: {count} submissions of this run are in {args.out}; run again with --resume "
              f"to finish", file=sys.stderr)
        return 130
    finally:
        source.close()
        bar.close()
    _record_due(store, args, due, lessons_done)
    write_exports(store)
    if not sandboxed:
        mode = "WITHOUT a sandbox (--no-sandbox)"
    elif args.cluster:
        mode = f"on the cluster {args.cluster}"
    elif grader.forkserver is not None:
        mode = "in bubblewrap sandboxes forked from a preloaded template"
    else:
        mode = "in bubblewrap sandboxes" + (f" (no fork server: {grader.forkserver_problem})"
                                             if grader.forkserver_problem else "")
    if args.json:
        print(json.dumps({
            "graded": count, "with_problems": failed, "missing_files": [clean(p, 300) for p in absent],
            "sandbox": "bwrap" if sandboxed else "none",
            "fork_server": grader is not None and grader.forkserver is not None,
            "cluster": args.cluster, "seed": seed, "out": str(args.out), "results": summaries,
        }, indent=1))
    elif not quiet:
        print(f"graded {count} submissions ({failed} with problems) {mode} into {args.out}; "
              f"check inputs from seed {seed} (--seed {seed} reproduces them)")
    return 1 if absent else 0


def _local_results(grader, todo, names, jobs, owned):
    """(path, Result) as each submission finishes, graded by `jobs` threads here."""
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="bpkit-grade")
    queue = iter(todo)
    pending: dict = {}
    try:
        while True:
            while len(pending) < 2 * jobs:  # a bounded window: memory does not grow with the class
                path = next(queue, None)
                if path is None:
                    break
                pending[pool.submit(_grade_one, grader, path, names[path], path.parent in owned)] = path
            if not pending:
                return
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all()
        pool.shutdown(wait=True)
        grader.close()


def _grade_one(grader, path: Path, student: str, with_data: bool):
    """One submission, with its folder's data files when the folder is the student's own."""
    return grader.grade(path, student, data_files(path.parent) if with_data else {})


def _cluster_results(args, todo, names, options, seed, task=None, extra=None, owned=frozenset()):
    """(path, Result) as each submission finishes on the Dask cluster; a task whose worker died is
    retried once, then recorded as an `error` row. `task` and `extra` (more run settings) are for tests."""
    from bpkit.grading.cluster import connect, grade_task, pack

    task = task or grade_task
    try:
        client, cluster = connect(args.cluster)
    except Exception as exc:
        raise SystemExit(_refuse(f"--cluster {args.cluster}: cannot connect ({type(exc).__name__}: {exc})")) from None
    from dask.distributed import as_completed

    run = dict(timeout=options.timeout, memory_mb=options.memory_mb, fork_server=options.fork_server, seed=seed,
               sandboxed=options.sandboxed,
               lesson=args.lesson, exercises=[str(p.resolve()) for p in args.exercises], **(extra or {}))
    window = 4 * max(len(client.scheduler_info().get("workers", {})), 1)
    queue = iter(todo)
    futures = as_completed()
    owner: dict = {}

    refused: list = []  # (path, Result) of notebooks that could not even be read: no worker needed

    def submit_next() -> bool:
        """Send the next readable notebook to the cluster (unreadable ones go to `refused`)."""
        while True:
            path = next(queue, None)
            if path is None:
                return False
            try:
                files = pack(path, path.parent in owned)
                break
            except InvalidNotebook as exc:
                refused.append((path, invalid_result(path, names[path], args.lesson, str(exc),
                                                     "bwrap" if options.sandboxed else "none")))
        future = client.submit(task, files, path.name, names[path], run, retries=1, pure=False)
        owner[future.key] = path
        futures.add(future)
        return True

    try:
        for _ in range(window):
            if not submit_next():
                break
        while refused:
            yield refused.pop()
        for future in futures:
            path = owner.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # the worker died twice, or the task itself failed
                message = (f"not graded: the cluster worker grading it failed twice ({type(exc).__name__}: "
                           f"{clean(exc, 300)}); grade it again with --student {names[path]}")
                result = Result(clean(path, 1000), names[path], "", [make_row(path, names[path], "", "", 0, 0, "error",
                                                                          message)])
            result.submission = clean(os.path.abspath(path), 1000)
            for row in result.rows:
                row["submission"] = result.submission
            future.release()
            submit_next()
            yield path, result
            while refused:
                yield refused.pop()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _record_due(store, args, due, lessons) -> None:
    """--due is the due date of --lesson, else of every lesson graded in this run; it is kept."""
    if due:
        store.set_due([args.lesson] if args.lesson else lessons, due)


def _status(result) -> str:
    from bpkit.grading.store import submission_status

    return submission_status(result)
