"""`bpkit grade`: run student notebooks in sandboxes and score every exercise of their lesson.

The command line over the pipeline in bpkit/grading/, steps numbered as in ARCHITECTURE.md:
0. identity    who handed in what (folders, Canvas/Moodle zips, nbgrader; a roster), for which
               lesson, late or not; `--plan` prints it and grades nothing;
1. submission  read the notebook (an unreadable one becomes one `invalid` row), find its lesson, flag
               code that reaches for the checkers' reference answers;
2. sandbox     a fresh bubblewrap sandbox per submission (view: an allow-list of what it sees; limits;
               the course copy without answers; a fork server's child or a sandbox of its own);
3-4. execute   run the student's cells (not the check cells) through the runner in the sandbox, then
               send each exercise's cases, drawn from this run's secret seed, over a channel with
               deadlines, nonces and size-bounded replies;
5. judge       compare the returned values with the reference answers here, in the grader;
6. gradebook   rows and feedback/<student>.md, every student-made text cleaned and capped;
7. store       the SQLite gradebook: one signed transaction per submission (`--resume` goes on from it);
8. report      the CSV files, LMS imports and report.html, written from the gradebook at the end.
Steps 1-6 of one notebook are `grading.grader.Grader.grade`, used here and by `--cluster` workers.
"""

from __future__ import annotations

import argparse
import math
import os
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
from bpkit.grading.identity import parse_due
from bpkit.grading.roster import RosterError, read_roster
from bpkit.grading.sandbox import SandboxUnavailable, check_bwrap, kill_all
from bpkit.grading.view import ViewUnavailable
from bpkit.notebook import InvalidNotebook

MIN_MEMORY_MB = 300  # below this a kernel cannot even import NumPy and IPython
MAX_OWNERSHIP_SCAN = 2000  # entries looked at to decide whether a folder is one student's


def _stamp(moment) -> str:
    """A hand-in time as UTC ISO text ("" when the collection does not say)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else ""


def _stored_roster(store):
    """The roster kept in the gradebook by an earlier run, as identity's Roster (None if none)."""
    from bpkit.grading.roster import Roster, Student

    rows = store.roster()
    return (
        Roster(
            [Student(r["id"], r.get("name", ""), r.get("email", ""), r.get("canvas_id", "")) for r in rows],
            source="the gradebook's roster",
        )
        if rows
        else None
    )


def _refuse(problem: str) -> int:
    print(f"bpkit grade: error: {problem}", file=sys.stderr)
    return 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `bpkit grade` (cli.py builds the parser)."""
    p.add_argument(
        "submissions",
        nargs="*",
        type=Path,
        metavar="SOURCE",
        help="what was handed in: notebooks, folders (searched for *.ipynb), or a Canvas/Moodle .zip",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the class's gradebook folder: gradebook.sqlite, CSV exports, report.html, feedback/",
    )
    p.add_argument("--jobs", type=int, default=None, help="submissions graded in parallel (default: cores)")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory cap per submission (its whole process tree)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip files already graded with the same content (a changed file is graded again)",
    )
    p.add_argument(
        "--lesson",
        metavar="NN",
        default=None,
        help="grade every file as this lesson (default: the notebook's metadata, checked against the file name)",
    )
    p.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="CSV of the class: id,name,email[,canvas_id], or Canvas's gradebook export (kept in the "
        "gradebook for later runs)",
    )
    p.add_argument(
        "--student",
        action="append",
        nargs="+",
        default=None,
        metavar=("ID", "FILE"),
        help="grade only this student's hand-ins (repeatable); with FILEs, grade those files as this "
        "student's (settles a conflict; a zip entry as --plan shows it: class.zip/<entry>)",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print which file goes to which student and lesson (late, conflict, not in roster, "
        "invalid) and grade nothing",
    )
    p.add_argument(
        "--due",
        default=None,
        metavar="ISO-TIME",
        help="due date, e.g. 2026-12-01T23:59 (local time) or ...Z (UTC): marks late submissions",
    )
    p.add_argument(
        "--late-penalty",
        default=None,
        metavar="PERCENT_PER_DAY[:MAX_PERCENT]",
        help="percentage points off a late submission per started day late (a Canvas late mark without "
        "a time: one day), at most MAX_PERCENT; for --lesson, else every lesson of the run (kept)",
    )
    p.add_argument(
        "--override",
        action=_OverrideAction,
        dest="overrides",
        default=[],
        metavar="STUDENT:LESSON:EXERCISE=POINTS",
        help="the instructor's points for one exercise (repeatable; each needs a --reason after it); "
        "kept in the gradebook across re-grades, shown in the feedback, the report and the exports; "
        "POINTS `checker` takes an earlier override back",
    )
    p.add_argument(
        "--reason",
        action=_ReasonAction,
        dest="overrides",
        metavar="TEXT",
        help="why: the reason of the --override options before it that have none",
    )
    p.add_argument(
        "--canvas-assignment",
        action="append",
        default=[],
        metavar="NN=ID",
        help="the Canvas assignment id of lesson NN (repeatable, kept): canvas.csv names its column "
        "`bpkit lesson NN (ID)`, which Canvas's importer matches by id",
    )
    p.add_argument(
        "--export", action="store_true", help="write the exports and report from the gradebook, grade nothing"
    )
    p.add_argument(
        "--exercises",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="a .py file or folder of your own exercises (same API as bpkit.checks; repeatable)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the check inputs (default: a new secret each run; the run prints it)",
    )
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code without bubblewrap, with your rights: only for notebooks you trust",
    )
    p.add_argument(
        "--no-fork-server",
        action="store_true",
        help="start every submission's sandbox from scratch instead of forking it from a template "
        "that has NumPy, matplotlib and IPython imported (slower; for comparison)",
    )
    p.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="grade on a Dask cluster, over TLS: local:N for N worker processes here, tls://host:port, or "
        "gateway:NAME (dask-gateway); needs backprop-kit[cluster]",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary line (errors still go to stderr)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary of the run on stdout")


class _OverrideAction(argparse.Action):
    """--override SPEC: kept in order as [spec, reason], the reason filled in by the --reason after it."""

    def __call__(self, parser, namespace, value, option_string=None):
        overrides = list(getattr(namespace, self.dest) or [])
        overrides.append([value, None])
        setattr(namespace, self.dest, overrides)


class _ReasonAction(argparse.Action):
    """--reason TEXT: the reason of every --override before it that has none yet."""

    def __call__(self, parser, namespace, value, option_string=None):
        overrides = list(getattr(namespace, self.dest) or [])
        waiting = [o for o in overrides if o[1] is None]
        if not waiting:
            parser.error("--reason must follow the --override it explains")
        if not value.strip():
            parser.error("--reason is empty: say why the points are changed")
        for o in waiting:
            o[1] = value.strip()
        setattr(namespace, self.dest, overrides)


TAKE_BACK = "checker"  # --override S:L:E=checker: the checker's points stand again


def parse_override(spec: str, reason: str | None) -> tuple[str, str, str, int, str]:
    """STUDENT:LESSON:EXERCISE=POINTS with its reason, checked against the course; ValueError says what is wrong.

    POINTS `checker` takes an earlier override back (points None): the checker's points stand again.
    """
    from bpkit.checks import EXERCISES

    head, equals, points = spec.rpartition("=")
    if not reason and points.strip() != TAKE_BACK:
        raise ValueError(
            f"--override {spec}: no --reason after it (every override needs one: --override {spec} --reason 'why')"
        )
    parts = head.split(":")
    if not equals or len(parts) != 3 or not all(p.strip() for p in parts):
        raise ValueError(f"--override {spec!r}: write STUDENT:LESSON:EXERCISE=POINTS, e.g. alice:01:weighted_sum=2")
    student, lesson, exercise = (p.strip() for p in parts)
    lessons = known_lessons()
    if lesson not in lessons:
        raise ValueError(f"--override {spec}: no lesson {lesson!r}; known lessons: {', '.join(lessons)}")
    ids = {eid: e for eid, e in EXERCISES.items() if e.lesson == lesson}
    if exercise not in ids:
        raise ValueError(
            f"--override {spec}: lesson {lesson} has no exercise {exercise!r}; its exercises: {', '.join(ids)}"
        )
    most = ids[exercise].points
    if points.strip() == TAKE_BACK:
        return student, lesson, exercise, None, reason or ""
    try:
        value = int(points.strip())
    except ValueError:
        raise ValueError(
            f"--override {spec}: POINTS must be a whole number from 0 to {most}, or {TAKE_BACK} to take an "
            f"override back"
        ) from None
    if not 0 <= value <= most:
        raise ValueError(f"--override {spec}: {exercise} is worth 0 to {most} points, not {value}")
    return student, lesson, exercise, value, reason


def _settings(args: argparse.Namespace) -> tuple[object, dict[str, str], list[tuple]] | str:
    """--late-penalty, --canvas-assignment and --override, checked: (penalty, ids, overrides), or the problem."""
    from bpkit.grading.identity import CollectionError, parse_late_penalty

    penalty = None
    if args.late_penalty is not None:
        try:
            penalty = parse_late_penalty(args.late_penalty)
        except CollectionError as exc:
            return str(exc)
    ids = {}
    lessons = known_lessons()
    for given in args.canvas_assignment:
        lesson, equals, number = given.partition("=")
        lesson, number = lesson.strip(), number.strip()
        if not equals or not number.isdigit() or not number.isascii():
            return f"--canvas-assignment {given!r}: write NN=ID with Canvas's numeric assignment id, e.g. 01=12345"
        if lesson not in lessons:
            return f"--canvas-assignment {given}: no lesson {lesson!r}; known lessons: {', '.join(lessons)}"
        ids[lesson] = number
    overrides = []
    for spec, reason in args.overrides:
        try:
            overrides.append(parse_override(spec, reason))
        except ValueError as exc:
            return str(exc)
    return penalty, ids, overrides


def _store_settings(store, args, settings, roster) -> str | None:
    """Keep this run's late penalty, Canvas ids and overrides in the gradebook (None, or why not)."""
    from datetime import datetime, timezone

    penalty, ids, overrides = settings
    if penalty is not None:
        lessons = [args.lesson] if args.lesson else sorted(set(store.lessons()) | set(getattr(args, "run_lessons", ())))
        if not lessons:
            return "--late-penalty: no lesson to apply it to yet (give --lesson NN, or grade first)"
        store.set_late_penalty(lessons, penalty.per_day, penalty.maximum)
    if ids:
        store.set_canvas_assignments(ids)
    if overrides:
        known = {r["id"] for r in store.roster()} | {s.student for s in store.all()}
        known |= set(getattr(args, "run_students", ()))
        for student, lesson, exercise, *_ in overrides:
            if roster is not None and student not in known:
                return (
                    f"--override {student}:{lesson}:{exercise}: no student {student!r} in the roster or the gradebook"
                )
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for student, lesson, exercise, points, reason in overrides:
            if points is not None:
                store.set_override(student, lesson, exercise, points, clean(reason, 600), now)
            elif not store.remove_override(student, lesson, exercise):
                print(
                    f"bpkit grade: warning: --override {student}:{lesson}:{exercise}={TAKE_BACK}: there was no "
                    f"override to take back",
                    file=sys.stderr,
                )
    return None


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
    if args.due is not None:
        try:
            parse_due(args.due)
        except ValueError:
            return f"--due {args.due!r} is not a date and time like 2026-12-01T23:59"
    if not args.submissions and not args.export:
        return (
            "no submissions given (give notebooks, folders or a Canvas/Moodle .zip, or --export to rewrite the reports)"
        )
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
    settings = _settings(args)
    if isinstance(settings, str):
        return _refuse(settings)
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    roster = None
    if args.roster is not None:
        try:
            roster = read_roster(args.roster)
        except (OSError, RosterError) as exc:
            return _refuse(f"cannot read the roster: {exc}")
    due = _stamp(parse_due(args.due)) if args.due else None
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
            store.set_roster(
                [dict(id=r.id, name=r.name, email=r.email, canvas_id=r.canvas_id) for r in roster.students]
            )
        else:
            roster = _stored_roster(store)
        if args.export:
            if due:
                store.set_due([args.lesson] if args.lesson else store.lessons(), due)
            problem = _store_settings(store, args, settings, roster)
            if problem:
                return _refuse(problem)
            paths = write_exports(store)
            if args.json:
                print(json.dumps({"exported": {name: str(path) for name, path in paths.items()}}, indent=1))
            elif not args.quiet:
                print(f"exports and report written in {args.out}")
            return 0
        args.settings = settings
        return _grade_all(args, store, jobs, sandboxed, due, roster, tqdm, json, write_exports)
    finally:
        store.close()


def _collect(args, roster, due):
    """The hand-ins of this run (identity.collect), with --student's choices added; CollectionError says why not."""
    from bpkit.grading.choice import choose
    from bpkit.grading.identity import collect

    collection = collect(list(args.submissions), roster, due=due, lesson=args.lesson)
    collection.chosen = []  # the --student ID FILE collections, closed with this one
    for student, *files in args.student or []:
        if files:
            try:
                chosen = choose(student, [Path(f) for f in files], roster, due=due, lesson=args.lesson)
            except BaseException:
                collection.close()
                raise
            collection.chosen.append(chosen)
            collection.records += chosen.records
            collection.skipped += chosen.skipped
            collection.sources += chosen.sources
    return collection


def _to_grade(args, collection) -> list:
    """The records this run grades: one per distinct file, the --student filter applied; a file chosen
    with --student ID FILE settles that student's conflict for its lesson."""
    records = [r for r in collection.records if not r.same_as]
    chosen = {(r.student, r.lesson) for r in records if r.chosen}
    records = [r for r in records if r.chosen or (r.student, r.lesson) not in chosen]
    if args.student:
        wanted = {student for student, *_ in args.student}
        records = [r for r in records if r.student in wanted]
        for student in sorted(wanted - {r.student for r in records}):
            print(f"bpkit grade: warning: no hand-in among those given belongs to student {student!r}", file=sys.stderr)
    return records


def _record_flags(record) -> list[str]:
    """What the collection says of a hand-in, as gradebook flags."""
    from bpkit.grading.identity import CONFLICT, NOT_IN_ROSTER, OTHER_NAME
    from bpkit.grading.records import CHOSEN

    flags = [kind for kind in (CONFLICT, NOT_IN_ROSTER, OTHER_NAME) if kind in record.problems]
    # The instructor's choice (--student ID FILE): signed with the row, it keeps the conflict settled when
    # the class is graded again (Store.latest). A flag, not a note: notes hold file names students chose.
    flags += [CHOSEN] if record.chosen else []
    # Late by the LMS's own marker (Canvas's _late_): a flag, since no time and due date may say so. Late by
    # time against --due shows in summary.csv's late column, which follows the gradebook's due dates.
    return flags + (["late"] if record.late and "marker" in record.late_from else [])


def _record_notes(record) -> list[str]:
    notes = [f"Handed in as {record.where}; {record.matched or 'student unknown'}."]
    notes += [
        why[0].upper() + why[1:] + ("" if why.endswith(".") else ".")
        for kind, why in record.problems.items()
        if kind != "invalid" and why
    ]
    if record.late:
        days = f" by {record.days_late} day{'s' if record.days_late != 1 else ''}" if record.days_late else ""
        notes.append(f"Late{days} ({record.late_from}).")
    return notes + list(record.notes)


def _grade_all(args, store, jobs, sandboxed, due, roster, tqdm, json, write_exports) -> int:
    from bpkit.grading.identity import CollectionError, format_plan

    try:
        collection = _collect(args, roster, due)
    except CollectionError as exc:
        return _refuse(str(exc))
    try:
        if args.plan:
            print(format_plan(collection))
            return 0
        args.run_lessons = {r.lesson for r in collection.records if r.lesson}
        args.run_students = {r.student for r in collection.records}
        problem = _store_settings(store, args, args.settings, collection.roster)
        if problem:
            return _refuse(problem)
        return _grade_records(args, store, jobs, sandboxed, due, collection, tqdm, json, write_exports)
    finally:
        for chosen in collection.chosen:
            chosen.close()
        collection.close()


def _grade_records(args, store, jobs, sandboxed, due, collection, tqdm, json, write_exports) -> int:
    quiet = args.quiet
    if not sandboxed:
        print(
            "bpkit grade: WARNING: --no-sandbox: student code runs with your rights and can read and change "
            "your files and other submissions; use it only for notebooks you trust",
            file=sys.stderr,
        )
    absent = [where for where, why in collection.skipped if why.startswith("no such file")]
    for where, why in collection.skipped:
        print(f"bpkit grade: warning: {clean(where, 300)}: {why}; not graded", file=sys.stderr)
    records = _to_grade(args, collection)
    outside = sorted({r.student for r in records if "not-in-roster" in r.problems})
    if outside:
        print(
            f"bpkit grade: warning: not in the roster: {', '.join(outside[:20])}"
            + (" ..." if len(outside) > 20 else ""),
            file=sys.stderr,
        )
    conflicts = sorted({f"{r.student} ({r.lesson})" for r in records if r.status == "conflict"})
    if conflicts:
        print(
            f"bpkit grade: warning: two different files for {', '.join(conflicts[:20])}: marked `conflict`, "
            f"exported blank; grade the one that counts with --student ID FILE (see --plan)",
            file=sys.stderr,
        )
    unsigned = store.unverified_count()
    if unsigned:
        print(
            f"bpkit grade: warning: {unsigned} rows of {args.out / 'gradebook.sqlite'} were not written by this grader "
            f"(signature missing or wrong); they are ignored",
            file=sys.stderr,
        )
    todo = [r for r in records if not (args.resume and store.graded(r.where, r.digest))]
    if len(todo) < len(records) and not quiet:
        print(f"resuming: {len(records) - len(todo)} files already graded with the same content", file=sys.stderr)
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    options = Options(
        timeout=args.timeout, memory_mb=args.memory_mb, sandboxed=sandboxed, fork_server=not args.no_fork_server
    )
    if args.cluster:
        source = _cluster_results(args, todo, options, seed)
        grader = None
    else:
        try:
            grader = Grader(options, seed, args.lesson)
        except (ViewUnavailable, OSError) as exc:
            print(f"bpkit grade: error: cannot prepare the sandbox: {exc}", file=sys.stderr)
            return 2
        if grader.area.stale_removed and not quiet:
            print(
                f"removed {grader.area.stale_removed} work folders left by an earlier run that was killed",
                file=sys.stderr,
            )
        source = _local_results(grader, todo, jobs)
    from datetime import datetime, timezone

    count, failed, lessons_done, summaries = 0, 0, set(), []  # nothing kept per submission but with --json
    bar = tqdm(
        total=len(todo),
        unit="notebook",
        desc="grading",
        disable=True if (quiet or args.no_progress) else None,
        file=sys.stderr,
    )
    try:
        for record, result in source:
            _as_handed_in(result, record)
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            store.add(
                result,
                clean(record.where, 1000),
                record.digest,
                _stamp(record.submitted),
                now,
                record.days_late if record.late else None,
            )
            count += 1
            failed += result.problem
            lessons_done.add(result.lesson)
            if args.json:
                summaries.append(
                    {
                        "student": result.student,
                        "lesson": result.lesson,
                        "status": _status(result),
                        "flags": result.flags,
                        "kernel_cpu_seconds": round(result.kernel_cpu, 3),
                        "total": sum(int(x["points"]) for x in result.rows),
                        "max_points": sum(int(x["max_points"]) for x in result.rows),
                    }
                )
            bar.update(1)
            bar.set_postfix(failed=failed, remaining=len(todo) - count)
    except KeyboardInterrupt:  # results still in flight are dropped: --resume grades them again
        kill_all()
        bar.close()
        _record_due(store, args, due, lessons_done)
        write_exports(store)
        print(
            f"\ninterrupted: {count} submissions of this run are in {args.out}; run again with --resume to finish",
            file=sys.stderr,
        )
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
        mode = "in bubblewrap sandboxes" + (
            f" (no fork server: {grader.forkserver_problem})" if grader.forkserver_problem else ""
        )
    if args.json:
        print(
            json.dumps(
                {
                    "graded": count,
                    "with_problems": failed,
                    "missing_files": [clean(p, 300) for p in absent],
                    "conflicts": conflicts,
                    "sandbox": "bwrap" if sandboxed else "none",
                    "fork_server": grader is not None and grader.forkserver is not None,
                    "cluster": args.cluster,
                    "seed": seed,
                    "out": str(args.out),
                    "results": summaries,
                },
                indent=1,
            )
        )
    elif not quiet:
        print(
            f"graded {count} submissions ({failed} with problems) {mode} into {args.out}; "
            f"check inputs from seed {seed} (--seed {seed} reproduces them)"
        )
    return 1 if absent else 0


def _as_handed_in(result: Result, record) -> None:
    """Name the result after where it was handed in (not the private copy), with the collection's flags and notes."""
    result.submission = clean(record.where, 1000)
    for row in result.rows:
        row["submission"] = result.submission
    for flag in _record_flags(record):
        if flag not in result.flags:
            result.flags.append(flag)
    result.notes[:0] = [clean(n, 600) for n in _record_notes(record)]
    flags = ";".join(result.flags)
    for row in result.rows:
        row["flags"] = flags


def _student(record) -> str:
    """The record's student id as the gradebook keeps it: valid UTF-8, one line, capped."""
    return clean(record.student, 120).replace("\n", " ")


def _grade_record(grader, record):
    """One hand-in: `invalid` from the collection without running it, else graded in its sandbox."""
    if record.status == "invalid":
        return invalid_result(
            Path(clean(record.where, 1000)),
            _student(record),
            record.lesson or None,
            record.problems["invalid"],
            grader._sandbox_name(),
        )
    files = data_files(record.folder) if record.folder is not None else {}
    return grader.grade(record.file, _student(record), files, lesson=record.lesson or None)


def _local_results(grader, todo, jobs):
    """(record, Result) as each hand-in finishes, graded by `jobs` threads here."""
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="bpkit-grade")
    queue = iter(todo)
    pending: dict = {}
    try:
        while True:
            while len(pending) < 2 * jobs:  # a bounded window: memory does not grow with the class
                record = next(queue, None)
                if record is None:
                    break
                pending[pool.submit(_grade_record, grader, record)] = record
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


def _cluster_results(args, todo, options, seed, task=None, extra=None):
    """(record, Result) as each hand-in finishes on the Dask cluster; a task whose worker died is
    retried once, then recorded as an `error` row. `task` and `extra` (more run settings) are for tests."""
    from bpkit.grading.cluster import connect, grade_task, pack

    task = task or grade_task
    try:
        client, cluster = connect(args.cluster)
    except Exception as exc:
        raise SystemExit(_refuse(f"--cluster {args.cluster}: cannot connect ({type(exc).__name__}: {exc})")) from None
    from dask.distributed import as_completed

    run = dict(
        timeout=options.timeout,
        memory_mb=options.memory_mb,
        fork_server=options.fork_server,
        seed=seed,
        sandboxed=options.sandboxed,
        lesson=args.lesson,
        exercises=[str(p.resolve()) for p in args.exercises],
        **(extra or {}),
    )
    window = 4 * max(len(client.scheduler_info().get("workers", {})), 1)
    queue = iter(todo)
    futures = as_completed()
    owner: dict = {}
    sandbox = "bwrap" if options.sandboxed else "none"
    refused: list = []  # (record, Result) of hand-ins that cannot be graded: no worker needed

    def submit_next() -> bool:
        """Send the next gradable hand-in to the cluster (the others go to `refused`)."""
        while True:
            record = next(queue, None)
            if record is None:
                return False
            reason = record.problems.get("invalid")
            if reason is None:
                try:
                    files = pack(record.file, record.folder)
                    break
                except InvalidNotebook as exc:
                    reason = str(exc)
            refused.append(
                (
                    record,
                    invalid_result(
                        Path(clean(record.where, 1000)), _student(record), record.lesson or None, reason, sandbox
                    ),
                )
            )
        future = client.submit(
            task,
            files,
            record.file.name,
            _student(record),
            {**run, "lesson": record.lesson or None},
            retries=1,
            pure=False,
        )
        owner[future.key] = record
        futures.add(future)
        return True

    try:
        for _ in range(window):
            if not submit_next():
                break
        while refused:
            yield refused.pop()
        for future in futures:
            record = owner.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # the worker died twice, or the task itself failed
                message = (
                    f"not graded: the cluster worker grading it failed twice ({type(exc).__name__}: "
                    f"{clean(exc, 300)}); grade it again with --student {_student(record)}"
                )
                result = Result(
                    clean(record.where, 1000),
                    _student(record),
                    record.lesson,
                    [make_row(record.where, _student(record), record.lesson, "", 0, 0, "error", message)],
                )
            future.release()
            submit_next()
            yield record, result
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
