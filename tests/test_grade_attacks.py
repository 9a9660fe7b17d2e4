"""Adversarial notebooks against `bpkit grade` (issue 11): one test per attack class, on the CLI only.

Every grading run is a subprocess (`python -m bpkit grade ...`) with TMPDIR set to a private folder, so
an attack that kills or crashes the grader is recorded as a failed outcome and never touches pytest.
Attackers are batched with two honest victims into a few runs (module fixtures); the notebooks, each
commented with what it tries and what the grader must do, are in tests/attack_notebooks.py.

What "correct" means comes from the issue's "Done when" and the grader's CLI contract:
grades.csv (submission, student, lesson, exercise, points, max_points, status, message, flags),
summary.csv (submission, student, lesson, total, max_points, percentage, flags, sandbox), feedback/<student>.md.

The grader's peak memory is the VmHWM (peak resident set) of the grader process itself, read from
/proc/<pid>/status every 50 ms while it runs: VmHWM only grows, so the last reading before exit is the
peak up to then, and it excludes the kernels (children), whose memory is capped separately.

Safety: attacks that write or kill outside their own folder only touch files and processes that carry
the run's random token (see attack_notebooks.py); processes of a run still alive at its end are listed
(for the assertions) and then killed by pid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

import attack_notebooks as atk
import bpkit

pytestmark = pytest.mark.slow  # about a minute of real kernels, several grading runs at a time
csv.field_size_limit(sys.maxsize)  # read a bloated gradebook to measure it, rather than fail on it

BWRAP = shutil.which("bwrap") or (Path("/usr/bin/bwrap").exists() and "/usr/bin/bwrap")
needs_sandbox = pytest.mark.skipif(
    not BWRAP, reason="needs bubblewrap (bwrap) for the grader's sandbox: `make test` installs it"
)
SANDBOX_ARGS = [] if BWRAP else ["--no-sandbox"]
SESSION = "bpkatk" + secrets.token_hex(4)  # in every path of this test session: attacks recognise it
MARKER_ENV = "BPKIT_ATTACK_RUN"  # set in the grader's environment: its descendants can be found by it
PEAK_LIMIT_MB = 400
ROW_LIMIT = 20_000  # bytes of one grades.csv row
FEEDBACK_LIMIT = 256 * 1024  # bytes of one feedback file: generous, but a 30 MB string must not get in
PACKAGE = Path(bpkit.__file__).resolve().parent


# -- running the grader ----------------------------------------------------------------------------


@dataclass
class GradeRun:
    """One `bpkit grade` subprocess and what the test saw of it."""

    name: str
    base: Path
    out: Path
    tmpdir: Path
    submissions: list[Path]
    rc: int | None = None
    stderr: str = ""
    seconds: float = 0.0
    peak_mb: float = 0.0  # VmHWM of the grader process
    survivors: list[str] = field(default_factory=list)  # processes of the run alive when it ended
    at_exit: dict = field(default_factory=dict)  # file digests when the grader exited
    later: dict = field(default_factory=dict)  # ... and after `linger` seconds
    before: dict = field(default_factory=dict)  # digests of the submissions before the run

    def why(self) -> str:
        return f"run {self.name}: exit code {self.rc}, stderr tail:\n{self.stderr[-2000:]}"

    def grades(self) -> list[dict]:
        return read_csv(self.out / "grades.csv")

    def summary(self) -> list[dict]:
        return read_csv(self.out / "summary.csv")

    def rows(self, stem: str) -> list[dict]:
        """grades.csv rows of the submission file <stem>.ipynb (found by the `submission` column)."""
        return [row for row in self.grades() if stem_of(row) == stem]

    def summary_of(self, stem: str) -> list[dict]:
        return [row for row in self.summary() if stem_of(row) == stem]

    def total(self, student: str) -> int:
        rows = self.rows(student)
        assert rows, f"{student} has no row in grades.csv; {self.why()}"
        return sum(int(row["points"]) for row in rows)

    def feedback_path(self, stem: str) -> Path:
        """feedback/<student>.md of the submission (<student>_<lesson>.md also accepted)."""
        rows = self.rows(stem)
        assert rows, f"{stem} has no row in grades.csv; {self.why()}"
        student, lesson = rows[0]["student"], rows[0]["lesson"]
        for name in (f"{student}.md", f"{student}_{lesson}.md"):
            if (self.out / "feedback" / name).exists():
                return self.out / "feedback" / name
        raise AssertionError(f"no feedback file for {stem} (student {student!r}) in {self.out / 'feedback'}")

    def feedback(self, stem: str) -> str:
        return self.feedback_path(stem).read_text(encoding="utf-8")


def stem_of(row: dict) -> str:
    """The file stem of a row's submission (the student's name by the contract; rows are found by it)."""
    return Path(row["submission"]).stem


def read_csv(path: Path) -> list[dict]:
    assert path.exists(), f"{path} was not written"
    with open(path, newline="", encoding="utf-8") as handle:  # strict UTF-8: a surrogate fails here
        return list(csv.DictReader(handle))


def digest(path: Path) -> str:
    """sha256 of a file's bytes; of a symbolic link, its target (never followed: one points at /dev/zero)."""
    if path.is_symlink():
        return "link to " + os.readlink(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(*roots: Path) -> dict:
    """sha256 of every file under the roots (a folder named tmp is skipped: it is the private TMPDIR)."""
    found = {}
    for root in roots:
        if root.is_file():
            found[str(root)] = digest(root)
        elif root.is_dir():
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if d != "tmp"]
                for name in files:
                    path = Path(folder, name)
                    try:
                        found[str(path)] = digest(path)
                    except OSError:
                        found[str(path)] = "unreadable"
    return found


def peak_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_processes(token: str) -> dict[int, str]:
    """Live processes (not zombies) with the token in their command line or the marker in their environment."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if state == "Z":
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            environ = b""
        if token.encode() in cmdline or f"{MARKER_ENV}={token}".encode() in environ.split(b"\0"):
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def files_in(folder: Path) -> list[str]:
    """Every file under folder (the run's private TMPDIR: anything there was left by the run)."""
    return sorted(str(Path(d, name)) for d, _, names in os.walk(folder) for name in names)


def kill_processes(token: str) -> None:
    for pid in run_processes(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def grade(
    name: str,
    base: Path,
    submissions: list[Path],
    *extra: str,
    out: Path | None = None,
    tmpdir: Path | None = None,
    env: dict | None = None,
    umask: int = 0o022,
    linger: float = 0.0,
    watch: tuple[Path, ...] = (),
    kill_when=None,
    timeout: float = 420,
) -> GradeRun:
    """Run the grader on the submissions; the run's token is base.name (in every path of the run)."""
    token = base.name
    out = out or base / "out"
    tmpdir = tmpdir or base / "tmp"
    tmpdir.mkdir(exist_ok=True)
    run = GradeRun(name, base, out, tmpdir, submissions)
    run.before = {str(p): digest(p) for p in submissions}
    # sh sets the umask then becomes the grader (same pid); preexec_fn is unsafe with the runs' threads
    cmd = [
        "sh",
        "-c",
        f'umask {umask:03o} && exec "$@"',
        "sh",
        sys.executable,
        "-m",
        "bpkit",
        "grade",
        *[os.fsencode(p) for p in submissions],
        "--out",
        str(out),
        "--jobs",
        "2",
        "--timeout",
        "90",
        *SANDBOX_ARGS,
        *extra,
    ]
    environment = {**os.environ, "TMPDIR": str(tmpdir), MARKER_ENV: token, **(env or {})}
    log = base / f"{name}.stderr"
    started = time.monotonic()
    with open(log, "wb") as errors:
        process = subprocess.Popen(
            cmd,
            cwd=base,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        peak = 0
        while process.poll() is None:
            peak = max(peak, peak_kb(process.pid) or 0)
            if kill_when is not None and kill_when():
                process.kill()  # SIGKILL, from the test
                kill_when = None
            if time.monotonic() - started > timeout:
                process.kill()
            time.sleep(0.05)
        run.rc = process.returncode
    run.seconds = time.monotonic() - started
    run.peak_mb = peak / 1024
    run.stderr = log.read_text(errors="replace")
    run.survivors = sorted(f"{pid}: {cmd}" for pid, cmd in run_processes(token).items())
    roots = (base, *watch)
    run.at_exit = snapshot(*roots)
    if linger:
        time.sleep(linger)
    run.later = snapshot(*roots)
    kill_processes(token)  # whatever the verdict, nothing of this run stays on the machine
    return run


def write(folder: Path, notebooks: list[tuple[str, nbformat.NotebookNode]]) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for name, nb in notebooks:
        paths.append(folder / f"{name}.ipynb")
        nbformat.write(nb, paths[-1])
    return paths


def assert_completed(run: GradeRun, students: list[str]) -> None:
    assert run.rc == 0, f"the grading run did not complete; {run.why()}"
    graded = {stem_of(row) for row in run.grades()}
    missing = [s for s in students if s not in graded]
    assert not missing, f"no rows for {missing}; {run.why()}"


def assert_zero(run: GradeRun, student: str) -> None:
    """Wrong functions: 0 points on every row (a `reference-answers` flag is allowed, never points)."""
    assert_completed(run, [student])
    scored = {
        row["exercise"]: (row["points"], row["status"], row["message"][:200])
        for row in run.rows(student)
        if row["points"] != "0"
    }
    assert not scored, f"{student} scored with wrong functions: {scored}"


def flags_of(run: GradeRun, student: str) -> str:
    return " ".join((row.get("flags") or "") for row in run.rows(student))


# -- the runs ----------------------------------------------------------------------------------------

HIDDEN_PROPERTIES = {  # student: (builder, the exercise whose property it hides)
    "hide_mutation": (atk.hide_mutation, "weighted_sum"),
    "hide_overflow": (atk.hide_overflow, "sigmoid"),
    "hide_recursion": (atk.hide_recursion, "topological_order"),
}

MAIN_ATTACKERS = [  # (student, builder, needs the sandbox)
    ("snoop", atk.snoop, True),  # early: it waits for honest_a's feedback to appear
    ("forge_file", atk.forge_file, True),
    ("fake_modules", atk.fake_modules, True),
    ("shadow_builtins", atk.shadow_builtins, True),
    ("settrace", atk.settrace, True),
    ("input_transformer", atk.input_transformer, True),
    ("frame_inspection", atk.frame_inspection, True),
    ("reference_import", atk.reference_import, True),
    ("reference_source", atk.reference_source, True),
    ("memory", atk.memory_children, True),
    ("capstone_13", atk.capstone_lookup, False),
    ("liar_01", atk.lesson_liar, False),
]


def _main_run(base: Path):
    """honest_a, the verdict forgers, the snoop, reference readers, memory, capstone, liar, honest_z."""
    subs = base / "submissions"
    canary = base / "canary.txt"
    canary.write_text("the instructor's file outside --out\n")
    other = Path("/tmp") / f"bpkit-otherclass-{base.name}"
    (other / "out" / "feedback").mkdir(parents=True)
    (other / "out" / "feedback" / "alice.md").write_text("# Feedback for alice (another class)\n")
    ctx = atk.Ctx(
        token=base.name,
        out=base / "out",
        canary=canary,
        victims=[subs / "honest_a.ipynb", subs / "honest_z.ipynb"],
        other_class_glob=f"/tmp/bpkit-otherclass-{base.name}/**/feedback/*.md",
        real_package=str(PACKAGE),
    )
    notebooks = [("honest_a", atk.solution_01())]
    notebooks += [(name, build(ctx)) for name, build, sandboxed in MAIN_ATTACKERS if BWRAP or not sandboxed]
    notebooks.append(("honest_z", atk.solution_01()))
    paths = write(subs, notebooks)
    CLEANUP.append(other)
    return grade("main", base, paths, "--memory-mb", "2048", umask=0o022, watch=(other,))


def _flood_run(base: Path):
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=base / "canary.txt")
    paths = write(
        base / "submissions",
        [("honest", atk.solution_01()), ("flood", atk.flood(ctx)), ("big_strings", atk.big_strings(ctx))],
    )
    return grade("flood", base, paths, "--memory-mb", "2048")


def _surrogate_run(base: Path):
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=base / "canary.txt")
    paths = write(base / "submissions", [("honest", atk.solution_01()), ("surrogates", atk.surrogates(ctx))])
    return grade("surrogates", base, paths)


def _latin1_run(base: Path):
    paths = write(base / "submissions", [("honest", atk.solution_01())])
    latin1 = os.fsencode(base / "submissions") + b"/caf\xe9_01.ipynb"  # not valid UTF-8 as a name
    with open(latin1, "w", encoding="utf-8") as handle:
        nbformat.write(atk.solution_01(), handle)
    return grade("latin1", base, [*paths, Path(os.fsdecode(latin1))])


FORMULA_NAMES = ['=HYPERLINK("http:evil.example";"click")', "-2+3+cmd|' -C calc'!A0", "@SUM(1+1)*cmd|'x'!A0"]
CSV_EXPORTS = [
    "grades.csv",
    "summary.csv",
    "history.csv",
    "table.csv",
    "exports/nbgrader.csv",
    "exports/canvas.csv",
    "exports/moodle.csv",
    "exports/unmatched.csv",
]


def _formula_run(base: Path):
    """Students whose file names (so student ids and paths) are spreadsheet formulas."""
    return grade(
        "formula",
        base,
        write(
            base / "submissions",
            [("honest", atk.solution_01()), *[(f"{name}_01", atk.solution_01()) for name in FORMULA_NAMES]],
        ),
    )


def _properties_run(base: Path):
    """An honest lesson 01 and the three notebooks that hide a breached property behind a wrapped observe."""
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=base / "canary.txt")
    paths = write(
        base / "submissions",
        [("honest", atk.solution_01()), *((student, build(ctx)) for student, (build, _) in HIDDEN_PROPERTIES.items())],
    )
    return grade("properties", base, paths)


def _kill_run(base: Path):
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=base / "canary.txt")
    paths = write(base / "submissions", [("honest", atk.solution_01()), ("killer", atk.killer(ctx))])
    return grade("kill", base, paths)


def _daemon_run(base: Path):
    """The daemon and the package tamperer, with a throwaway copy of bpkit first on PYTHONPATH."""
    canary = base / "canary.txt"
    canary.write_text("the instructor's file outside --out\n")
    copy = base / "pkg" / "bpkit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(copy.parent)}
    found = subprocess.run(
        [sys.executable, "-c", "import bpkit; print(bpkit.__file__)"],
        cwd=base,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert found.strip() == str(copy / "__init__.py"), f"the package copy is not the one imported: {found}"
    package_before = snapshot(copy)
    subs = base / "submissions"
    ctx = atk.Ctx(
        token=base.name, out=base / "out", canary=canary, victims=[subs / "honest.ipynb"], real_package=str(PACKAGE)
    )
    marker = f"{base.name}-daemon"
    paths = write(
        subs, [("honest", atk.solution_01()), ("daemon", atk.daemon(ctx, marker)), ("tamper", atk.package_tamper(ctx))]
    )
    run = grade("daemon", base, paths, env=env, linger=4.0)
    return run, package_before, snapshot(copy), marker


def _lesson_run(base: Path):
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=base / "canary.txt")
    paths = write(
        base / "submissions",
        [("liar_01", atk.lesson_liar(ctx)), ("honest_meta00_01", atk.honest_with_lesson_00_metadata(ctx))],
    )
    return grade("lesson", base, paths, "--lesson", "01")


def _resume_runs(base: Path):
    """Grade honest + cheater, forge grades.csv (cheater at full marks, rows for `late`), then --resume."""
    wrong = atk.notebook("01", atk.IMPORTS, atk.WRONG_FUNCTIONS)
    honest, cheater, late = write(
        base / "submissions", [("honest", atk.solution_01()), ("cheater", wrong), ("late", wrong)]
    )
    first = grade("resume-first", base, [honest, cheater])
    assert_completed(first, ["honest", "cheater"])
    for name in ("grades.csv", "summary.csv"):
        path = first.out / name
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields, rows = reader.fieldnames, list(reader)
        forged = []
        for row in rows:
            if stem_of(row) == "cheater":  # rewritten by hand: full marks
                full = {
                    "points": row.get("max_points"),
                    "total": row.get("max_points"),
                    "status": "pass",
                    "message": "passed (5 cases)",
                    "percentage": "100.0",
                }
                row.update({k: v for k, v in full.items() if k in fields})
            elif stem_of(row) == "honest":  # replayed for a student never graded
                forged.append({**row, "submission": str(late), "student": row["student"].replace("honest", "late")})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows + forged)
        path.write_text(buffer.getvalue(), encoding="utf-8")
    second = grade("resume-second", base, [honest, cheater, late], "--resume", out=first.out)
    return first, second


def _killed_runs(base: Path):
    """SIGKILL a grader while a notebook sleeps, then run the grader again with the same TMPDIR."""
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=base / "canary.txt")
    sleeper, honest = write(base / "submissions", [("sleeper", atk.sleeper(ctx)), ("honest", atk.solution_01())])
    tmpdir = base / "tmp"
    flag = f"asleep-{base.name}"
    started = time.monotonic()

    def sleeping() -> bool:  # the sleeper's flag file (unsandboxed), else its kernel has had 8 s to start
        return any(tmpdir.rglob(flag)) or time.monotonic() - started > 8

    first = grade("killed-first", base, [sleeper], tmpdir=tmpdir, out=base / "out1", kill_when=sleeping, timeout=120)
    leftovers = files_in(tmpdir)
    second = grade("killed-second", base, [honest], tmpdir=tmpdir, out=base / "out2")
    return first, leftovers, second


# -- issue 20: what a sandbox sees; stalls, crashes and leftovers -----------------------------------

CUSTOM_EXERCISES = '''"""An instructor's own exercise file, given with --exercises (never to a sandbox)."""
import numpy as np

from bpkit.checks import Case, Exercise, case_rng, register

register(Exercise(id="attack_demo_double", lesson="02", points=1, description="2 * z",
                  cases=lambda: [Case("z", (case_rng(1).normal(size=3),))], reference=lambda z: 2 * z))
'''
SIGHT_VARIANTS = {  # the same class graded every way a sandbox is made
    "jobs2": (),
    "student": ("--student", "reader"),
    "no_fork_server": ("--no-fork-server",),
    "cluster": ("--cluster", "local:2"),
}


def _sight_runs(base: Path) -> dict[str, GradeRun]:
    """A reader next to an honest student, graded four ways, with secrets all around the class folder."""
    home_secret = Path.home() / f".bpkit-attack-{base.name}" / "id_ed25519"
    home_secret.parent.mkdir(mode=0o700)
    home_secret.write_text(f"PRIVATE KEY of the instructor {base.name}\n")
    home_secret.chmod(0o600)
    CLEANUP.append(home_secret.parent)
    next_to_class = base / "grading-notes.txt"
    next_to_class.write_text("the instructor's notes, next to the class folder\n")
    clone = base / "other-clone" / "solutions"
    clone.mkdir(parents=True)
    shutil.copyfile(atk.SOLUTION_01, clone / "01_neurons.ipynb")
    exercises = base / f"exercises-{base.name}.py"
    exercises.write_text(CUSTOM_EXERCISES)
    # The class lives outside /tmp, as a real class folder does (a sandbox's /tmp is its own, so a class
    # under the test's tmp_path would be out of sight whatever the grader binds).
    subs = home_secret.parent / "class"
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=next_to_class)
    secrets_ = [
        str(home_secret),
        str(next_to_class),
        str(clone / "01_neurons.ipynb"),
        str(exercises),
        str(base / "submissions.zip"),
    ]
    # One folder per student (as `bpkit lab` homes or nbgrader collect them): re-grading one student with
    # --student must not leave the classmates' folders visible.
    subs.mkdir()
    paths = [
        *write(subs / "honest", [("01_neurons", atk.solution_01())]),
        *write(subs / "reader", [("01_neurons", atk.reader(ctx, secrets_))]),
    ]
    shutil.make_archive(str(base / "submissions"), "zip", subs)  # the class's Canvas download, next to the class
    shutil.copyfile(base / "submissions.zip", subs / "reader" / "submissions.zip")  # ...and in a student's folder
    runs = {}
    for name, extra in SIGHT_VARIANTS.items():
        runs[name] = grade(
            f"sight-{name}", base, paths, "--exercises", str(exercises), *extra, out=base / f"out-{name}"
        )
    return runs


def _stall_run(base: Path) -> GradeRun:
    """Stallers, crashers and litter, one after another (--jobs 1: litter is graded before finder)."""
    subs = base / "class"
    ctx = atk.Ctx(token=base.name, out=base / "out", canary=base / "canary.txt")
    paths = write(
        subs,
        [
            ("honest", atk.solution_01()),
            ("staller", atk.channel_staller(ctx)),
            ("endless", atk.endless(ctx)),
            ("litter", atk.litter(ctx)),
            ("finder", atk.finder(ctx)),
            ("hog", atk.tmpfs_hog(ctx)),
            ("future", atk.solution_01()),
        ],
    )
    far = 300_000_000_000  # seconds since 1970: the year 11476
    os.utime(subs / "future.ipynb", (far, far))
    (subs / "zero.ipynb").symlink_to("/dev/zero")  # a notebook that never ends
    (subs / "copycat.ipynb").symlink_to(atk.SOLUTION_01)  # the instructor's solution, by link
    paths += [subs / "zero.ipynb", subs / "copycat.ipynb"]
    return grade("stall", base, paths, "--jobs", "1", "--timeout", "20", "--memory-mb", "600", timeout=600)


CLEANUP: list[Path] = []  # folders made outside pytest's tmp_path
BUILDERS = {  # longest first; PARALLEL_RUNS of them at a time (kernels mostly wait: 2 cores suffice)
    "sight": _sight_runs,
    "stall": _stall_run,
    "main": _main_run,
    "killed": _killed_runs,
    "daemon": _daemon_run,
    "resume": _resume_runs,
    "flood": _flood_run,
    "kill": _kill_run,
    "lesson": _lesson_run,
    "surrogates": _surrogate_run,
    "latin1": _latin1_run,
    "formula": _formula_run,
    "properties": _properties_run,
}
if not BWRAP:  # their attacks are only safe to count on inside the sandbox: their tests are skipped
    del BUILDERS["daemon"], BUILDERS["kill"], BUILDERS["sight"], BUILDERS["stall"]
PARALLEL_RUNS = 4


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Start every run at once (at the first test that needs one); each fixture below waits for its own."""
    bases = {name: tmp_path_factory.mktemp(f"{SESSION}-{name}") for name in BUILDERS}
    pool = ThreadPoolExecutor(max_workers=PARALLEL_RUNS, thread_name_prefix="grade-run")
    yield {name: pool.submit(build, bases[name]) for name, build in BUILDERS.items()}
    pool.shutdown(wait=True)
    for folder in CLEANUP:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def main_run(launched):
    return launched["main"].result()


@pytest.fixture(scope="module")
def flood_run(launched):
    return launched["flood"].result()


@pytest.fixture(scope="module")
def surrogate_run(launched):
    return launched["surrogates"].result()


@pytest.fixture(scope="module")
def latin1_run(launched):
    return launched["latin1"].result()


@pytest.fixture(scope="module")
def formula_run(launched):
    return launched["formula"].result()


@pytest.fixture(scope="module")
def properties_run(launched):
    return launched["properties"].result()


@pytest.fixture(scope="module")
def kill_run(launched):
    return launched["kill"].result()


@pytest.fixture(scope="module")
def daemon_run(launched):
    return launched["daemon"].result()


@pytest.fixture(scope="module")
def lesson_run(launched):
    return launched["lesson"].result()


@pytest.fixture(scope="module")
def resume_runs(launched):
    return launched["resume"].result()


@pytest.fixture(scope="module")
def killed_runs(launched):
    return launched["killed"].result()


RUNS = {
    "main": "main_run",
    "flood": "flood_run",
    "surrogates": "surrogate_run",
    "latin1": "latin1_run",
    "kill": "kill_run",
    "lesson": "lesson_run",
    "formula": "formula_run",
    "properties": "properties_run",
}


def a_run(request, name: str) -> GradeRun:
    return request.getfixturevalue(RUNS[name])


# -- every run: completes, stays bounded, keeps the honest ------------------------------------------


@pytest.mark.parametrize("name", ["main", "flood"])
def test_run_completes_with_rows_for_every_submission(request, name):
    run = a_run(request, name)
    assert_completed(run, [p.stem for p in run.submissions])
    assert len(run.summary()) == len(run.submissions), run.why()


@pytest.mark.parametrize("name", ["main", "flood", "surrogates", pytest.param("kill", marks=needs_sandbox)])
def test_no_gradebook_row_over_20_kb_and_feedback_files_bounded(request, name):
    run = a_run(request, name)
    assert run.rc == 0, run.why()
    for row in run.grades():
        buffer = io.StringIO()
        csv.writer(buffer).writerow(row.values())
        size = len(buffer.getvalue().encode("utf-8"))
        assert size <= ROW_LIMIT, f"{row['student']}/{row['exercise']}: a {size}-byte row"
    for path in (run.out / "feedback").iterdir():
        assert path.stat().st_size <= FEEDBACK_LIMIT, f"{path.name}: {path.stat().st_size} bytes"


@pytest.mark.parametrize(
    "name, honest",
    [
        ("main", "honest_a"),
        ("main", "honest_z"),
        ("flood", "honest"),
        ("surrogates", "honest"),
        ("latin1", "honest"),
        ("properties", "honest"),
        pytest.param("kill", "honest", marks=needs_sandbox),
    ],
)
def test_honest_victims_keep_full_marks(request, name, honest):
    run = a_run(request, name)
    assert_completed(run, [honest])
    rows = run.rows(honest)
    assert {row["exercise"] for row in rows} == set(atk.LESSON_01_IDS), rows
    assert all(row["status"] == "pass" and row["points"] == row["max_points"] for row in rows), rows


@pytest.mark.parametrize("name", ["main", "flood"])
def test_grader_peak_memory_stays_under_400_mb(request, name):
    run = a_run(request, name)
    assert run.peak_mb > 0, "the grader's memory could not be read"
    assert run.peak_mb < PEAK_LIMIT_MB, f"grader VmHWM {run.peak_mb:.0f} MB; {run.why()}"


def test_gradebook_has_flags_and_sandbox_columns_and_honest_work_has_no_flag(main_run):
    grades = main_run.grades()
    summary = main_run.summary()
    assert grades and "flags" in grades[0], f"grades.csv columns: {list(grades[0]) if grades else []}"
    assert "flags" in summary[0] and "sandbox" in summary[0], f"summary.csv columns: {list(summary[0])}"
    for student in ("honest_a", "honest_z"):
        assert flags_of(main_run, student).strip() == "", f"{student} flagged: {flags_of(main_run, student)}"
    expected = "bwrap" if BWRAP else "none"
    assert {row["sandbox"] for row in summary} == {expected}


def test_nothing_of_the_main_run_survives_it(main_run):
    assert main_run.rc == 0, main_run.why()
    assert not main_run.survivors, f"still running after the grader exited: {[s[:300] for s in main_run.survivors]}"
    left = files_in(main_run.tmpdir)
    assert not left, f"files left in TMPDIR after the run: {left[:10]}"


def test_output_files_are_the_instructors_alone(main_run):
    # The run's umask is 022, which would make files rw-r--r--: on a shared JupyterHub every user could
    # read every grade. --out is rwx------, and so is every folder in it; every file is rw-------.
    assert main_run.rc == 0, main_run.why()
    assert oct(main_run.out.stat().st_mode & 0o777) == oct(0o700)
    found = list(main_run.out.rglob("*"))
    modes = {str(p.relative_to(main_run.out)): oct(p.stat().st_mode & 0o777) for p in found}
    assert {"gradebook.sqlite", "grades.csv", "report.html", "exports/canvas.csv"} <= set(modes), sorted(modes)
    assert sum(name.startswith("feedback/") for name in modes) >= 2, sorted(modes)
    wrong = {
        name: mode for name, mode in modes.items() if mode != oct(0o700 if (main_run.out / name).is_dir() else 0o600)
    }
    assert not wrong, wrong


# -- forged verdicts (the functions are wrong: only a forged verdict could score) -------------------


@needs_sandbox
def test_records_pre_written_to_the_observation_channel_score_zero(main_run):
    assert_zero(main_run, "forge_file")


@needs_sandbox
def test_fake_json_and_pickle_in_sys_modules_score_zero(main_run):
    assert_zero(main_run, "fake_modules")


@needs_sandbox
def test_global_exec_compile_open_shadows_score_zero(main_run):
    assert_zero(main_run, "shadow_builtins")


@needs_sandbox
def test_settrace_rewriting_frame_locals_scores_zero(main_run):
    assert_zero(main_run, "settrace")


@needs_sandbox
def test_input_transformer_rewriting_the_graders_cells_scores_zero(main_run):
    assert_zero(main_run, "input_transformer")


@needs_sandbox
def test_functions_that_inspect_their_callers_score_zero(main_run):
    assert_zero(main_run, "frame_inspection")


# -- reference answers ---------------------------------------------------------------------------------


@needs_sandbox
@pytest.mark.parametrize("student", ["reference_import", "reference_source"])
def test_reference_answers_from_bpkit_score_zero_or_are_flagged(main_run, student):
    assert_completed(main_run, [student])
    points = main_run.total(student)
    flagged = "reference-answers" in flags_of(main_run, student)
    assert points == 0 or flagged, f"{student}: {points} points and no reference-answers flag"


def test_capstone_predict_by_lookup_in_the_shipped_digits_gets_no_points(main_run):
    assert_completed(main_run, ["capstone_13"])
    rows = {row["exercise"]: row for row in main_run.rows("capstone_13")}
    assert "predict" in rows, f"no predict row: {sorted(rows)}"
    assert rows["predict"]["lesson"] == "13"
    assert rows["predict"]["points"] == "0", f"predict scored by lookup: {rows['predict']['message'][:300]}"


# -- submissions reaching each other and the instructor ---------------------------------------------


@needs_sandbox
def test_snoop_cannot_edit_other_students_notebooks(main_run):
    victims = [p for p in main_run.submissions if p.stem.startswith("honest")]
    changed = [p.name for p in victims if digest(p) != main_run.before[str(p)]]
    assert not changed, f"edited on disk by another submission: {changed}"
    assert_zero(main_run, "snoop")


@needs_sandbox
def test_snoop_cannot_touch_other_feedback_or_the_gradebook(main_run):
    assert main_run.rc == 0, main_run.why()
    for student in ("honest_a", "honest_z"):
        text = main_run.feedback(student)
        assert "PWNED" not in text and "weighted_sum" in text, f"{student}'s feedback:\n{text[:300]}"
    forged = [row for row in main_run.grades() if "forged" in row["student"]]
    assert not forged, f"forged rows in grades.csv: {forged}"


@needs_sandbox
def test_snoop_cannot_write_outside_out(main_run):
    base = main_run.base
    assert (base / "canary.txt").read_text() == "the instructor's file outside --out\n"
    assert not list(base.glob("pwned-*")), "a file was written next to --out"
    other = Path("/tmp") / f"bpkit-otherclass-{base.name}" / "out" / "feedback" / "alice.md"
    assert other.read_text() == "# Feedback for alice (another class)\n", "another class's feedback was overwritten"


@needs_sandbox
def test_killing_the_grader_and_every_visible_process_does_not_stop_the_run(kill_run):
    # With SIGKILL the grader's exit code is -9: recorded here, pytest itself is never in reach.
    assert kill_run.rc == 0, f"the grader did not survive the killer; {kill_run.why()}"
    assert_completed(kill_run, ["honest", "killer"])
    assert_zero(kill_run, "killer")


@needs_sandbox
def test_a_daemon_does_not_outlive_its_submission_nor_change_files_later(daemon_run):
    run, _, _, marker = daemon_run
    assert_completed(run, ["honest", "daemon", "tamper"])
    alive = [s[:100] + " ... " + s[-200:] for s in run.survivors if marker in s]
    assert not alive, f"the daemon survived the run: {alive}"
    changed = sorted(k for k in set(run.at_exit) | set(run.later) if run.at_exit.get(k) != run.later.get(k))
    assert not changed, f"changed after the grader exited: {changed}"
    assert "PWNED" not in run.feedback("honest")
    assert not [row for row in run.grades() if "forged" in row["student"]]
    assert (run.base / "canary.txt").read_text() == "the instructor's file outside --out\n"
    assert_zero(run, "daemon")


@needs_sandbox
def test_the_bpkit_package_cannot_be_tampered_with(daemon_run):
    run, before, after, _ = daemon_run
    assert run.rc == 0, run.why()
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert not changed, f"package files changed by a submission: {[Path(k).name for k in changed]}"
    assert "PACKAGE-TAMPERED" not in run.feedback("tamper"), run.feedback("tamper")[-600:]


# -- what the kernel says about itself (issue 20) ----------------------------------------------------------


@pytest.mark.parametrize("student", sorted(HIDDEN_PROPERTIES))
def test_a_wrapped_observe_cannot_hide_a_breached_property(properties_run, student):
    """Mutation, overflow, recursion hidden by wrapping the harness: the exercise fails, the file is flagged."""
    _, exercise = HIDDEN_PROPERTIES[student]
    assert_completed(properties_run, [student])
    rows = {row["exercise"]: row for row in properties_run.rows(student)}
    assert exercise in rows, f"no row for {exercise}: {sorted(rows)}"
    row = rows[exercise]
    assert (row["status"], row["points"]) == ("fail", "0"), (row["status"], row["points"], row["message"][:300])
    assert "harness-tampered" in flags_of(properties_run, student).replace(";", " ").split(), rows
    assert "harness-tampered" in {flag for r in properties_run.summary_of(student) for flag in r["flags"].split(";")}
    assert "harness-tampered" not in flags_of(properties_run, "honest")


# -- limits ------------------------------------------------------------------------------------------------


@needs_sandbox
def test_memory_cap_covers_the_whole_process_tree(main_run):
    assert_completed(main_run, ["memory"])
    text = main_run.feedback("memory")
    assert "MEMORY-ATTACK-HELD" not in text, "three children held 3.6 GB under --memory-mb 2048"
    statuses = {row["exercise"]: row["status"] for row in main_run.rows("memory")}
    assert "error" in statuses.values(), f"no error row for the memory attack: {statuses}"


def test_a_700_mb_line_leaves_the_grader_bounded(flood_run):
    assert_completed(flood_run, ["flood"])
    assert flood_run.peak_mb < PEAK_LIMIT_MB, f"grader VmHWM {flood_run.peak_mb:.0f} MB"
    assert_zero(flood_run, "flood")


def test_30_mb_strings_stay_out_of_the_gradebook_and_feedback(flood_run):
    assert_completed(flood_run, ["big_strings"])
    for row in flood_run.rows("big_strings"):
        assert len(row["message"].encode("utf-8")) < ROW_LIMIT, f"{row['exercise']}: {len(row['message'])} chars"
    assert flood_run.feedback_path("big_strings").stat().st_size <= FEEDBACK_LIMIT
    assert_zero(flood_run, "big_strings")


# -- bookkeeping ------------------------------------------------------------------------------------------


def test_lone_surrogates_do_not_stop_the_run_and_files_stay_utf8(surrogate_run):
    assert_completed(surrogate_run, ["honest", "surrogates"])
    for path in [
        surrogate_run.out / "grades.csv",
        surrogate_run.out / "summary.csv",
        *(surrogate_run.out / "feedback").iterdir(),
    ]:
        path.read_bytes().decode("utf-8")  # strict: raises on an encoded surrogate
    assert "weighted_sum" in surrogate_run.feedback("surrogates")
    assert_zero(surrogate_run, "surrogates")


def test_a_latin1_file_name_grades(latin1_run):
    assert latin1_run.rc == 0, latin1_run.why()
    raw = (latin1_run.out / "grades.csv").read_bytes().decode("utf-8")  # strict UTF-8
    summary = latin1_run.summary()
    assert len(summary) == 2, f"summary rows: {summary}; {latin1_run.why()}"
    cafe = [row for row in summary if stem_of(row).startswith("caf")]
    assert len(cafe) == 1 and cafe[0]["lesson"] == "01", summary
    assert cafe[0]["total"] == cafe[0]["max_points"] == str(atk.LESSON_01_POINTS), cafe
    assert len(latin1_run.rows(stem_of(cafe[0]))) == len(atk.LESSON_01_IDS) and "01" in raw
    assert len(list((latin1_run.out / "feedback").iterdir())) == 2


def test_file_names_that_are_formulas_give_no_formula_cell_in_any_csv_export(formula_run):
    # Issue 20: a file name starting `=HYPERLINK(` produced 12 formula cells across the 7 CSV exports.
    assert formula_run.rc == 0, formula_run.why()
    cells = {}
    for name in CSV_EXPORTS:
        with open(formula_run.out / name, newline="", encoding="utf-8") as handle:
            cells[name] = [cell for row in csv.reader(handle) for cell in row]
    formulas = {name: [c for c in found if c[:1] in ("=", "+", "-", "@", "\t", "\r")] for name, found in cells.items()}
    assert not any(formulas.values()), formulas
    students = {row["student"] for row in formula_run.grades()}
    assert students == {"honest", *[f"'{name}" for name in FORMULA_NAMES]}, students  # kept, made text
    for name in FORMULA_NAMES:  # graded like anyone else
        assert formula_run.total(f"{name}_01") == atk.LESSON_01_POINTS, formula_run.rows(f"{name}_01")
        # every export but unmatched.csv, which lists students missing from a roster (this class has none)
        assert all(f"'{name}" in cells[export] for export in CSV_EXPORTS if export != "exports/unmatched.csv"), name


def test_lesson_metadata_that_disagrees_with_the_file_name_is_invalid(main_run):
    assert_completed(main_run, ["liar_01"])
    rows = main_run.rows("liar_01")
    assert len(rows) == 1 and rows[0]["status"] == "invalid", [(r["exercise"], r["status"]) for r in rows]
    assert rows[0]["points"] == "0"
    assert "00" in rows[0]["message"] and "01" in rows[0]["message"], rows[0]["message"]


def test_the_lesson_option_is_the_assignment_and_another_lessons_notebook_is_invalid_for_it(lesson_run):
    """--lesson 01 says what was handed in to; a notebook whose metadata is lesson 00 is invalid for 01 (issue 19:
    it is never graded as 01, whatever it defines), with a reason naming both lessons."""
    assert_completed(lesson_run, ["liar_01", "honest_meta00_01"])
    for student in ("liar_01", "honest_meta00_01"):
        rows = lesson_run.rows(student)
        assert [(row["lesson"], row["status"], row["points"]) for row in rows] == [("01", "invalid", "0")], rows
        assert "lesson-00 notebook" in rows[0]["message"] and "lesson 01" in rows[0]["message"], rows[0]["message"]


def test_resume_does_not_trust_rows_the_grader_did_not_write(resume_runs):
    _, second = resume_runs
    assert_completed(second, ["honest", "cheater", "late"])
    assert second.total("honest") == atk.LESSON_01_POINTS
    for student in ("cheater", "late"):
        assert second.total(student) == 0, f"{student}: forged rows trusted on --resume: {second.rows(student)}"
        summary = second.summary_of(student)
        assert len(summary) == 1 and summary[0]["total"] == "0", summary


def test_a_killed_run_leaves_nothing_in_tmpdir_after_the_next_run(killed_runs):
    first, leftovers, second = killed_runs
    assert first.rc == -signal.SIGKILL, f"the first run was meant to be killed; {first.why()}"
    assert second.rc == 0, second.why()
    still = [name for name in leftovers if Path(name).exists()]
    assert not still, f"left by the killed run and still in TMPDIR after the next run: {still}"


# -- issue 20: the sandbox sees only what a notebook needs ------------------------------------------


@pytest.fixture(scope="module")
def sight_runs(launched):
    return launched["sight"].result()


@pytest.fixture(scope="module")
def stall_run(launched):
    return launched["stall"].result()


@needs_sandbox
@pytest.mark.parametrize("variant", list(SIGHT_VARIANTS))
def test_a_notebook_reads_nothing_it_was_not_handed(sight_runs, variant):
    """The instructor's 0600 key, a file next to the class, another clone's solutions, --exercises, the
    class zip, a classmate's folder, and any path of the test run: unreadable and unseen with --jobs 2,
    --student, --no-fork-server and --cluster local:2 alike."""
    run = sight_runs[variant]
    assert run.rc == 0, run.why()
    by_student: dict = {}
    for row in run.grades():  # one folder per student: rows are told apart by the student column
        by_student.setdefault(row["student"], []).append(row)
    assert set(by_student) == ({"reader"} if variant == "student" else {"reader", "honest"}), run.why()
    assert all(row["points"] == "0" for row in by_student["reader"]), by_student["reader"]
    feedback = (run.out / "feedback" / "reader_01.md").read_text(encoding="utf-8")
    assert "READER-HITS" not in feedback, (
        f"{variant}: the reader found {feedback[feedback.find('READER-HITS') :][:600]}"
    )
    assert "PRIVATE KEY" not in feedback
    if variant != "student":
        assert {r["exercise"]: r["status"] for r in by_student["honest"]} == {i: "pass" for i in atk.LESSON_01_IDS}


@needs_sandbox
def test_a_kernel_that_stops_reading_cannot_stall_the_run(stall_run):
    assert_completed(stall_run, ["honest", "staller", "endless", "litter", "finder", "hog", "future"])
    assert_zero(stall_run, "staller")
    assert stall_run.seconds < 400, stall_run.why()
    assert all(row["status"] == "pass" for row in stall_run.rows("honest")), stall_run.rows("honest")


@needs_sandbox
def test_an_endless_exercise_costs_only_that_exercise(stall_run):
    status = {row["exercise"]: row["status"] for row in stall_run.rows("endless")}
    expected = {eid: "pass" if eid in atk.ENDLESS_RIGHT else "fail" for eid in atk.LESSON_01_IDS}  # fail: not defined
    assert status == {**expected, "weighted_sum": "timeout"}, status


@needs_sandbox
def test_nothing_a_submission_writes_is_seen_by_the_next(stall_run):
    feedback = (stall_run.out / "feedback" / "finder_01.md").read_text(encoding="utf-8")
    assert "FINDER-HITS" not in feedback, feedback[feedback.find("FINDER-HITS") :][:300]
    assert_zero(stall_run, "litter")


@needs_sandbox
def test_tmpfs_files_count_against_the_memory_cap(stall_run):
    rows = stall_run.rows("hog")
    assert rows and all(row["points"] == "0" for row in rows)
    feedback = (stall_run.out / "feedback" / "hog_01.md").read_text(encoding="utf-8")
    assert "memory cap" in feedback, feedback[:1500]


@needs_sandbox
@pytest.mark.parametrize("student", ["zero", "copycat"])
def test_a_notebook_that_is_a_link_is_refused_not_followed(stall_run, student):
    rows = stall_run.rows(student)
    assert [row["status"] for row in rows] == ["invalid"], rows
    assert "symbolic link" in rows[0]["message"]


@needs_sandbox
def test_a_file_time_in_the_year_11476_does_not_stop_the_run(stall_run):
    assert all(row["status"] == "pass" for row in stall_run.rows("future")), stall_run.rows("future")
