"""The check machinery: exercises, cases, verdicts and the hints that explain them.

A check has two halves so that grading can keep the verdict out of the student's kernel:
1. *observe* (in `_harness`): call the learner's function on each case, record output or error;
2. *verdict* (here, `Exercise.verdict`): compare the observation with the reference answer (or with
   the exercise's own `compare_answer`) and explain a mismatch.
In a notebook both halves run in one process: `checks.weighted_sum(weighted_sum)`.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpkit.checks import _harness
from bpkit.checks._harness import Unknown


class CheckFailure(AssertionError):
    """A learner's answer disagrees with the contract; the message says how and what to try."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows just the message: the checker's internals would bury the hint."""
        first, *rest = str(self).splitlines() or [""]
        return [f"CheckFailure: {first}", *rest]


MUTATION_HINT = (
    "work on a copy or build a new array (e.g. `w - lr * grad`, not `w -= lr * grad`): "
    "the caller still needs the original"
)
SLOW_HINT = (
    "your function is far slower than needed (the answer takes well under a second): look for work "
    "repeated inside a loop, e.g. `x in some_list` scans the whole list each time (a set answers at once), "
    "or for a loop that never ends"
)
UNWATCHED_HINT = (
    "the check watches the calls your function makes (to see whether it calls itself): leave "
    "sys.setprofile, sys.settrace and threads out of it"
)
NO_RECORD_HINT = (
    "the check's record of the call is incomplete: code in the notebook changed the checking code "
    "(bpkit.checks); remove it, restart the kernel and run the notebook again"
)
NONE_HINT = (
    "your function returned None: end it with `return <the result>` (print() only shows a value, "
    "it does not give it back to the caller)"
)


@dataclass
class Case:
    """One input to try: positional args, keyword args and a short human label."""

    label: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    # False: a case for a limit (recursion depth, time), not for telling mistakes apart; a hint's evidence
    # leaves it out, so naming a mistake does not run every registered mistake on it too.
    evidence: bool = True


@dataclass
class Mistake:
    """A typical wrong implementation and the hint to show when an answer behaves like it."""

    fn: Callable
    hint: str


@dataclass
class Exercise:
    """One exercise id: its cases, its reference answer, and how to compare an answer with it."""

    id: str
    lesson: str
    points: int
    description: str
    cases: Callable[[], list[Case]]
    reference: Callable
    mistakes: list[Mistake] = field(default_factory=list)
    # A comparison of its own, (exercise, case, received) -> None, failing through exercise.fail / expect,
    # for answers that one reference value cannot check (random draws, any valid order). None: expect(reference).
    compare_answer: Callable[[Exercise, Case, Any], None] | None = None
    kind: str = "plain"  # how the harness materialises the output: plain / iterate / nodes
    rtol: float = 1e-6
    atol: float = 1e-8
    mutation_matters: bool = True  # the contract says inputs stay unchanged
    strict_fp: bool = False  # overflow / 0/0 / divide-by-zero raise during the call (stability exercises)
    generic_hint: str = "compare your formula with the one in the exercise text, term by term"
    grader_cases: Callable[[], list[Case]] | None = None  # more cases, tried only by `bpkit grade`
    # Where a returned tuple differs, named as the exercise names it: ("dx", "dW", "db") for the items
    # of a returned tuple, or a function of the index path, e.g. (1, 0, 0) -> "dW1". None: "item 2 ...".
    names: tuple | Callable[[tuple], str | None] | None = None
    mutation_hint: str = MUTATION_HINT  # shown when an input the contract keeps unchanged was changed
    structure_hint: str | None = None  # shown when the answer has the wrong structure (not a tuple of n items)
    time_limit: float = _harness.DEFAULT_TIME_LIMIT  # seconds per case
    slow_hint: str = SLOW_HINT
    # The exercise's own hint for an error it knows (a matmul of the wrong shapes, float() of an array...), tried
    # before the general ones; None where the error is not one it knows.
    error_hints: Callable[[dict], str | None] | None = None

    def graded_cases(self) -> list[Case]:
        """What `bpkit grade` tries: the notebook's cases, then the grader-only ones."""
        return self.cases() + (self.grader_cases() if self.grader_cases is not None else [])

    def __call__(self, fn: Any) -> None:
        """Check `fn` against every case; print one line on success, raise CheckFailure otherwise."""
        if fn is None or not callable(fn):
            raise CheckFailure(
                f"{self.id}: expected a function, got {type(fn).__name__}. Define `def {self.id}(...)` "
                f"in the exercise cell, run that cell, then run this check again."
            )
        cases = self.cases()
        observations: list[dict] = []
        for index, case in enumerate(cases):
            observations.append(self._observe(fn, case, self.time_limit))
            try:
                self.verdict(index, observations[-1], cases)
            except CheckFailure:
                if "output" not in observations[-1]:
                    raise  # an error or a time limit: its hint does not name a mistake, so needs no evidence
                # Judge again with the other cases observed too, so a hint names a mistake only if that
                # mistake reproduces the answer on every case (a few seconds at most: an answer may be slow).
                started = time.monotonic()
                for later in cases[index + 1 :]:
                    left = EVIDENCE_BUDGET - (time.monotonic() - started)
                    if left <= 0:
                        break
                    limit = min(self.time_limit, left)
                    seen = self._observe(fn, later, limit)
                    if limit < self.time_limit and seen.get("error", {}).get("time_limit"):
                        break  # cut short by the evidence budget, not by the answer: no evidence either way
                    observations.append(seen)
                self.verdict(index, observations[index], cases, observations)
                raise
        print(f"✔ {self.id} passed ({len(cases)} cases)")

    def _observe(self, fn: Callable, case: Case, time_limit: float | None) -> dict:
        observation = _harness.observe(fn, case.args, case.kwargs, self.kind, self.strict_fp, time_limit)
        # The same JSON round trip as in grading, so a notebook and the grader agree exactly.
        return json.loads(json.dumps(observation))

    def verdict(
        self, index: int, observation: dict, cases: list[Case] | None = None, observations: list[dict] | None = None
    ) -> None:
        """Judge one JSON observation of case `index`; raise CheckFailure when it is wrong.

        observations: the answer's observations of the other cases too (as many as were made), the
        evidence a hint needs; without them the cases before `index` count as passed, as in a check
        that stops at its first failing case.
        """
        cases = cases or self.cases()
        token = _EVIDENCE.set(_Evidence(index, cases, observations))
        try:
            self._verdict(index, observation, cases)
        finally:
            _EVIDENCE.reset(token)

    def _verdict(self, index: int, observation: dict, cases: list[Case]) -> None:
        case = cases[index]
        if "error" in observation:
            error = observation["error"]
            if error.get("not_implemented"):
                raise CheckFailure(
                    f"{self.id}: not implemented yet. Replace `raise NotImplementedError` in the "
                    f"exercise cell with your code, run that cell, then run this check again."
                )
            if error.get("time_limit"):
                self.fail(
                    case,
                    f"did not return within {error['time_limit']:g} s, so the check stopped it",
                    hint=self.slow_hint,
                )
            self.fail(case, f"raised {error['type']}: {error['message']}", hint=self.error_hint(error))
        if observation.get("unwatched"):
            self.fail(
                case, f"switched off the check's watch over its calls ({observation['unwatched']})", hint=UNWATCHED_HINT
            )
        if self.mutation_matters:
            changed = self.changed_args(index, observation, cases)
            if changed is None:
                self.fail(case, "no record of its arguments after the call came back", hint=NO_RECORD_HINT)
            if changed:
                names = ", ".join(f"argument {i + 1}" for i in changed)
                self.fail(case, f"changed its input ({names}) in place", hint=self.mutation_hint)
        received = _harness.decode(observation["output"])
        if self.compare_answer is not None:
            self.compare_answer(self, case, received)
        else:
            self.expect(case, received, self.reference(*_copy_args(case.args), **case.kwargs))

    def changed_args(self, index: int, observation: dict, cases: list[Case] | None = None) -> list[int] | None:
        """Positions of the arguments whose arrays differ after the call from the case's own; None: no record.

        Decided here from values: the digests the kernel read after the call against the digests of
        what the check sent (an argument without arrays cannot change: its digest is None).
        """
        case = (cases or self.cases())[index]
        sent = _harness.arg_digests(case.args, case.args)
        after = observation.get("after")
        if not isinstance(after, list) or len(after) != len(sent):
            return None
        return [i for i, (before, now) in enumerate(zip(sent, after)) if before is not None and now != before]

    # -- helpers for comparisons ---------------------------------------------------------------

    def expect(self, case: Case, received: Any, expected: Any, hint: str | None = None) -> None:
        """Fail unless received matches expected (same structure, shapes, values within tolerance)."""
        problem = compare(expected, received, self.rtol, self.atol, names=self.names)
        if problem is None:
            return
        self.fail(case, problem, expected=expected, received=received, hint=hint or self.diagnose(case, received))

    def diagnose(self, case: Case, received: Any) -> str:
        """Name the typical mistake whose output matches what the learner returned.

        First a mistake whose whole output equals the answer; then, for a tuple or list, one that
        explains the first part where the answer goes wrong (the rest may be wrong differently).
        """
        if received is None:
            return NONE_HINT
        evidence = _EVIDENCE.get()
        if evidence is not None and evidence.nested:
            return self.generic_hint  # judging a mistake's own output: only pass or fail matters
        wrongs, whole = [], []
        for mistake in self.mistakes:
            try:
                with np.errstate(all="ignore"):  # an unstable mistake must not print warnings here
                    wrong = mistake.fn(*_copy_args(case.args), **case.kwargs)
            except Exception:
                continue
            if compare(wrong, received, self.rtol, self.atol) is None:
                whole.append(mistake)
            wrongs.append((mistake, wrong))
        hint = self._only_hint(whole, evidence)
        if hint:
            return hint
        expected = self.reference(*_copy_args(case.args), **case.kwargs)
        found = difference(expected, received, self.rtol, self.atol)
        if found is not None and found[0]:
            path = [i for i, _ in found[0]]
            part = _item_at(received, path)
            explains = []
            for mistake, wrong in wrongs:
                try:
                    wrong_part = _item_at(wrong, path)
                except (IndexError, KeyError, TypeError):
                    continue
                if compare(wrong_part, part, self.rtol, self.atol) is None:
                    explains.append(mistake)
            hint = self._only_hint(explains, evidence, path=path)
            if hint:
                return hint
        if self.structure_hint and found is not None and not found[0] and isinstance(expected, (tuple, list)):
            return self.structure_hint  # not a tuple/list of the right length at all
        shape_hint = _shape_hint(received, expected)
        if shape_hint:
            return shape_hint
        relation = difference_hint(expected, received, case, self.reference, self.rtol, self.atol)
        if relation and relation.startswith(EVERYWHERE):
            relation = self._relation_everywhere(relation, expected, evidence)
        return relation or self.generic_hint

    def _relation_everywhere(self, relation: str, expected: Any, evidence) -> str | None:
        """A relation hint (sign, constant factor, offset) as every other case observed bears it out, or None.

        A case the answer passed contradicts it unless its expected value is all zeros (c * 0 = 0); a case it
        failed must show the same relation; one that raised contradicts it; one not observed does not count.
        A factor that differs from case to case is still named where the answer is an array (a scalar is
        always some multiple of the expected one, so it says nothing there).
        """
        if evidence is None:
            return relation
        factor = FACTOR.match(relation)
        varying = False
        for j, other, learner in evidence.others():
            if learner is not None and "error" in learner:
                return None
            other_expected = self.reference(*_copy_args(other.args), **other.kwargs)
            if learner is None or self._passes(j, learner, evidence.cases):
                try:
                    if not np.allclose(np.asarray(other_expected, dtype=float), 0.0, atol=self.atol):
                        if not factor:
                            return None
                        varying = True  # a factor of 1 here
                except (TypeError, ValueError):
                    return None
                continue
            theirs = _harness.decode(learner["output"])
            found = difference_hint(other_expected, theirs, other, self.reference, self.rtol, self.atol)
            if found is None:
                return None
            if factor and FACTOR.match(found):
                varying = varying or FACTOR.match(found).group(1) != factor.group(1)
            elif _relation_key(found) != _relation_key(relation):
                return None
        if not varying:
            return relation
        if np.size(_first_array(expected)) > 1:
            return (
                f"your answer is a multiple of the expected one on every case, {factor.group(1)} times here but "
                f"another multiple elsewhere: a factor that depends on the input is wrong (a division by N, the "
                f"number of classes, a size, or by lam, 1 - p...)"
            )
        return None

    def _only_hint(self, candidates: list[Mistake], evidence, path: list | None = None) -> str | None:
        """The hint of the one mistake (among candidates) that behaves like the answer on every case seen."""
        if evidence is None or not candidates:
            return candidates[0].hint if candidates and len({m.hint for m in candidates}) == 1 else None
        fitting = [m for m in candidates if self._consistent(m, evidence, path)]
        hints = {m.hint for m in fitting}
        return fitting[0].hint if len(hints) == 1 else None

    def _consistent(self, mistake: Mistake, evidence, path: list | None) -> bool:
        """Does the mistake behave like the answer on every other case observed?

        Whole output (path None): it passes where the answer passed and returns the same where it failed.
        One part (path): that part of its output equals the answer's (the reference's where the answer passed).
        """
        for j, other, learner in evidence.others():
            with np.errstate(all="ignore"):
                own = json.loads(
                    json.dumps(_harness.observe(mistake.fn, other.args, other.kwargs, self.kind, False, None))
                )
            if learner is not None and "error" in learner:
                if "error" not in own or own["error"]["type"] != learner["error"]["type"]:
                    return False
                continue
            if "error" in own:
                return False
            if path is not None:
                theirs = (
                    _harness.decode(learner["output"])
                    if learner is not None
                    else self.reference(*_copy_args(other.args), **other.kwargs)
                )
                try:
                    if (
                        compare(
                            _item_at(_harness.decode(own["output"]), path), _item_at(theirs, path), self.rtol, self.atol
                        )
                        is not None
                    ):
                        return False
                except (IndexError, KeyError, TypeError):
                    return False
                continue
            learner_passed = learner is None or self._passes(j, learner, evidence.cases)
            if learner_passed != self._passes(j, own, evidence.cases):
                return False
            if (
                not learner_passed
                and compare(_harness.decode(own["output"]), _harness.decode(learner["output"]), self.rtol, self.atol)
                is not None
            ):
                return False
        return True

    def _passes(self, index: int, observation: dict, cases: list[Case]) -> bool:
        token = _EVIDENCE.set(_Evidence(index, cases, None, nested=True))
        try:
            self._verdict(index, observation, cases)
            return True
        except CheckFailure:
            return False
        finally:
            _EVIDENCE.reset(token)

    def error_hint(self, error: dict) -> str:
        """The hint for an answer that raised `error` (type and message): the exercise's own, else a general one."""
        return (self.error_hints(error) if self.error_hints else None) or self.general_error_hint(error)

    def general_error_hint(self, error: dict) -> str:
        message = error["message"].lower()
        if "shape" in message or "matmul" in message or "broadcast" in message:
            return "a shape mismatch: write the shape of every array next to your code, e.g. # (N, D_in)"
        if error["type"] == "NameError":
            return "a name your function uses is not defined: run the cells above first, or check the spelling"
        return "run your function on the input above in a new cell to see where it fails"

    def fail(self, case: Case, problem: str, expected: Any = None, received: Any = None, hint: str = "") -> None:
        lines = [f"{self.id} failed on {case.label}: {problem}", f"  input:    {format_args(case)}"]
        if expected is not None or received is not None:
            lines.append(f"  expected: {format_value(expected)}")
            lines.append(f"  received: {format_value(received)}")
        if hint:
            lines.append(f"  hint:     {hint}")
        raise CheckFailure("\n".join(lines))


@dataclass
class StableExercise(Exercise):
    """An exercise whose answer must be numerically stable: overflow, 0/0 and x/0 raise while it is checked.

    The harness turns those floating-point events into errors (`strict_fp`, in a notebook check and in
    batch grading alike), so an unstable formula fails even where its output happens to come out right,
    and each event is explained by the exercise's own hint.
    """

    strict_fp: bool = True
    overflow_hint: str = ""  # an exponent overflowed
    invalid_hint: str = ""  # 0/0 or inf/inf; empty: "a 0/0 or inf/inf appeared: " + the overflow hint
    divide_hint: str = ""  # x/0, log(0) among them; empty: as for 0/0
    large_hint: str = ""  # a wrong value only on inputs of magnitude 1e3 (no error raised): an instability

    def diagnose(self, case: Case, received: Any) -> str:
        hint = super().diagnose(case, received)
        large = "1e3" in case.label or "1000" in case.label
        named = hint in {m.hint for m in self.mistakes}
        return self.large_hint if self.large_hint and large and not named and hint != NONE_HINT else hint

    def general_error_hint(self, error: dict) -> str:
        text = f"{error['type']} {error['message']}".lower()
        if "overflow" in text or "range error" in text:  # NumPy's "overflow encountered", math's "range error"
            return self.overflow_hint
        zero_by_zero = self.invalid_hint or "a 0/0 or inf/inf appeared: " + self.overflow_hint
        if "invalid value" in text:
            return zero_by_zero
        if "divide" in text:
            return self.divide_hint or zero_by_zero
        return super().general_error_hint(error)


EXERCISES: dict[str, Exercise] = {}

# Seconds a notebook check spends, after the first failing case, observing the rest for a hint's evidence.
EVIDENCE_BUDGET = 2.0


@dataclass
class _Evidence:
    """What a verdict knows of the answer: the failing case, all cases, and the observations made."""

    index: int
    cases: list
    observations: list | None
    nested: bool = False  # judging a mistake's output to see whether it passes: no hint needed

    def others(self):
        """(index, case, the answer's observation) of every other case a hint may rest on, in order.

        The observation is None for an earlier case that passed (a check that stopped at its first failure
        keeps no observations); cases not observed (the time budget ran out) and cases that are no evidence
        (Case.evidence False) are left out.
        """
        for j, case in enumerate(self.cases):
            if j == self.index or not case.evidence:
                continue
            if self.observations is None:
                if j > self.index:
                    return
                yield j, case, None
            elif j < len(self.observations):
                yield j, case, self.observations[j]
            else:
                return


_EVIDENCE: contextvars.ContextVar[_Evidence | None] = contextvars.ContextVar("bpkit_evidence", default=None)

# The grader draws every check input from a secret per-run seed, so a notebook cannot know (or
# store answers for) the inputs it will be graded on. In a learner's notebook no secret is set and
# each checker's own fixed seeds give the same cases every time.
_SECRET_SEED: contextvars.ContextVar[int | None] = contextvars.ContextVar("bpkit_secret_seed", default=None)


def case_rng(seed: int) -> np.random.Generator:
    """The generator a checker builds its cases from: `seed` alone, or mixed with the grading secret."""
    secret = _SECRET_SEED.get()
    return np.random.default_rng(seed if secret is None else [secret, seed])


@contextlib.contextmanager
def secret_seed(secret: int | None):
    """Within this block (in this thread), case_rng mixes `secret` into every checker seed."""
    token = _SECRET_SEED.set(secret)
    try:
        yield
    finally:
        _SECRET_SEED.reset(token)


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the catalogue; ids are unique."""
    if exercise.id in EXERCISES:
        raise ValueError(f"exercise id {exercise.id!r} registered twice")
    EXERCISES[exercise.id] = exercise
    return exercise


# -- comparison and formatting ------------------------------------------------------------------


def _copy_args(args: tuple) -> tuple:
    import copy

    return tuple(arg if isinstance(arg, dict) and "__graph__" in arg else copy.deepcopy(arg) for arg in args)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def compare(expected: Any, received: Any, rtol: float, atol: float, names=None) -> str | None:
    """Return None when received matches expected, else a short description of the difference.

    `names` (an Exercise's) names the place of a difference inside a returned tuple, e.g. "dW1: ".
    """
    found = difference(expected, received, rtol, atol)
    if found is None:
        return None
    path, problem = found
    return describe_path(path, names) + problem


def describe_path(path: tuple, names=None) -> str:
    """ "item 2 of the returned tuple: " for path ((1, "tuple"),), or the exercise's own name for it."""
    items = "".join(f"item {i + 1}{' of the returned tuple' if kind == 'tuple' else ''}: " for i, kind in path)
    indexes = tuple(i for i, _ in path)
    if indexes and names is not None:
        if callable(names):
            name = names(indexes)
        else:
            name = names[indexes[0]] if len(indexes) == 1 and indexes[0] < len(names) else None
        if name:  # the position too where it is short: "dW (item 2 of the returned tuple): "
            return f"{name} ({items[:-2]}): " if len(indexes) == 1 else f"{name}: "
    return items


def _item_at(value: Any, path: list[int]) -> Any:
    for i in path:
        value = value[i]
    return value


def difference(expected: Any, received: Any, rtol: float, atol: float) -> tuple[tuple, str] | None:
    """None when received matches expected, else (path to the first difference, what differs there)."""
    if isinstance(received, Unknown):
        return (), f"returned {received!r}, which is not a number or an array"
    if received is None and expected is not None:
        return (), "returned None (is a `return` missing?)"
    if isinstance(expected, (tuple, list)):
        kind = type(expected).__name__
        if not isinstance(received, (tuple, list)):
            return (), f"returned {type(received).__name__}, expected a {kind} of {len(expected)} items"
        if len(received) != len(expected):
            return (), f"returned {len(received)} items, expected {len(expected)}"
        for i, (e, r) in enumerate(zip(expected, received)):
            found = difference(e, r, rtol, atol)
            if found:
                return ((i, kind), *found[0]), found[1]
        return None
    if _is_number(expected) or (isinstance(expected, np.ndarray) and expected.ndim == 0):
        if isinstance(received, np.ndarray) and received.size == 1 and received.ndim <= 1:
            received = received.reshape(())
        if not (_is_number(received) or (isinstance(received, np.ndarray) and received.ndim == 0)):
            shape = f" of shape {received.shape}" if isinstance(received, np.ndarray) else ""
            return (), f"returned {type(received).__name__}{shape}, expected a single number"
        if not np.isfinite(received) and np.isfinite(expected):
            return (), f"returned {received}, expected a finite number"
        # equal_nan: a typical mistake that yields NaN is recognised when the learner's answer does too
        if not np.isclose(float(received), float(expected), rtol=rtol, atol=atol, equal_nan=True):
            return (), "wrong value"
        return None
    if isinstance(expected, np.ndarray):
        if not isinstance(received, np.ndarray):
            if isinstance(received, (list, tuple)):
                try:
                    received = np.asarray(received, dtype=float)
                except (TypeError, ValueError):
                    return (), f"returned a {type(received).__name__} that is not an array of numbers"
            else:
                return (), f"returned {type(received).__name__}, expected an array of shape {expected.shape}"
        if received.shape != expected.shape:
            return (), f"returned shape {received.shape}, expected shape {expected.shape}"
        if received.dtype.kind == "b" and expected.dtype.kind != "b":
            received = received.astype(float)
        if not np.all(np.isfinite(received)) and np.all(np.isfinite(expected)):
            return (), "contains NaN or inf where the answer is finite"
        if not np.allclose(received, expected, rtol=rtol, atol=atol, equal_nan=True):
            worst = np.unravel_index(np.argmax(np.abs(received - expected)), expected.shape)
            return (), f"wrong values (largest difference at index {tuple(int(i) for i in worst)})"
        return None
    if expected != received:
        return (), "wrong value"
    return None


def _shape_hint(received: Any, expected: Any) -> str | None:
    if isinstance(expected, tuple) and isinstance(received, (tuple, list)) and len(expected) == len(received):
        for e, r in zip(expected, received):
            hint = _shape_hint(r, e)
            if hint:
                return hint
        return None
    if isinstance(expected, np.ndarray) and isinstance(received, np.ndarray):
        if expected.ndim == 2 and received.shape == expected.shape[::-1] and expected.shape[0] != expected.shape[1]:
            return "the shape is transposed: check the order of the matrix product (x @ W or x.T @ dout?)"
        if received.shape != expected.shape and received.size == expected.size:
            return (
                f"same numbers of entries but the wrong shape: reshape or keep the axes of the input {expected.shape}"
            )
        if received.ndim < expected.ndim:
            return "an axis is missing: did you sum or average over an axis that should stay?"
    return None


def _argument_names(reference: Callable, case: Case) -> list[tuple[str, Any]]:
    """(name, value) of each argument of the case, named as the reference names its parameters."""
    try:
        names = list(inspect.signature(reference).parameters)
    except (TypeError, ValueError):
        names = []
    named = [(names[i] if i < len(names) else f"argument {i + 1}", a) for i, a in enumerate(case.args)]
    return named + list(case.kwargs.items())


# The relation hints of difference_hint that claim to hold on the whole answer: Exercise.diagnose gives one
# only where every case observed shows the same relation.
EVERYWHERE = ("your answer has the opposite sign", "your answer is ", "every entry is off by the same amount")


FACTOR = re.compile(r"your answer is (\S+) times the expected one everywhere")


def _first_array(value: Any) -> Any:
    """The first item of a tuple answer (where difference_hint looks first), else the value."""
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value


def _relation_key(hint: str) -> str:
    """A relation hint without the case's own numbers that it quotes, e.g. '(= 0.5)' of 'plus b (= 0.5)'."""
    return re.sub(r"\(= [^)]*\)", "", hint)


def difference_hint(
    expected: Any, received: Any, case: Case, reference: Callable, rtol: float, atol: float
) -> str | None:
    """Say how a numeric answer differs from the expected one, where one simple relation explains all of it.

    A sign, a constant factor, an offset equal to one of the inputs (the bias, say), a transpose, or a
    few wrong entries; None when no such relation holds (then nothing is guessed).
    """
    if isinstance(expected, tuple) and isinstance(received, (tuple, list)) and len(expected) == len(received):
        for e, r in zip(expected, received):
            if difference(e, r, rtol, atol) is not None:
                return difference_hint(e, r, case, reference, rtol, atol)
        return None
    try:
        e = np.asarray(expected, dtype=float)
        r = np.asarray(received, dtype=float)
    except (TypeError, ValueError):
        return None
    if r.shape != e.shape:
        if r.size == e.size == 1:
            r = r.reshape(e.shape)
        elif e.ndim == 2 and r.shape == e.shape[::-1] and np.allclose(r.T, e, rtol=rtol, atol=atol):
            return "your answer is the transpose of the expected one: check the order of a matrix product or a .T"
        else:
            return None
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(r))) or e.size == 0:
        return None
    close = lambda a, b: np.allclose(a, b, rtol=rtol, atol=atol)  # noqa: E731
    if close(r, -e):
        return (
            "your answer has the opposite sign of the expected one everywhere: a sign error (a minus too many or "
            "too few)"
        )
    scale = np.max(np.abs(e))
    if scale > 0 and np.all((np.abs(e) > 1e-9 * scale) | (np.abs(r) <= atol)):
        ratios = r[np.abs(e) > 1e-9 * scale] / e[np.abs(e) > 1e-9 * scale]
        c = float(np.median(ratios))
        if c != 0 and close(r, c * e):
            return (
                f"your answer is {c:.6g} times the expected one everywhere: a constant factor is wrong "
                f"(a division or multiplication by a constant, such as N, 2 or the learning rate, too many or too few)"
            )
    offset = r - e
    if close(offset, offset.flat[0]) and abs(offset.flat[0]) > atol:
        d = offset.flat[0]
        for name, value in _argument_names(reference, case):
            if _is_number(value) and not isinstance(value, bool) and float(value) != 0:
                if np.isclose(d, float(value), rtol=rtol, atol=atol):
                    return (
                        f"your answer is the expected one plus {name} (= {float(value):.6g}): {name} is counted "
                        "once too often"
                    )
                if np.isclose(d, -float(value), rtol=rtol, atol=atol):
                    return f"your answer is the expected one minus {name} (= {float(value):.6g}): {name} is missing"
        if e.size > 1:
            return f"every entry is off by the same amount, {d:.6g}: a constant term is wrong"
    if e.size > 1:
        wrong = ~np.isclose(r, e, rtol=rtol, atol=atol)
        if 0 < wrong.sum() <= max(1, e.size // 4):
            where = [tuple(int(i) for i in idx) for idx in np.argwhere(wrong)[:3]]
            shown = ", ".join(str(w[0]) if len(w) == 1 else str(w) for w in where)
            return (
                f"only {int(wrong.sum())} of {e.size} entries are wrong (at index "
                f"{shown}{', ...' if wrong.sum() > 3 else ''}): "
                f"the formula is right in general; look at what is special about those entries"
            )
    return None


def format_value(value: Any) -> str:
    """A short one-line rendering of an input or output for failure messages."""
    if isinstance(value, np.ndarray):
        body = np.array2string(value, precision=4, threshold=8, edgeitems=2, separator=", ").replace("\n", "")
        return f"array{value.shape} {body}" if value.ndim else body
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, list):
        shown = ", ".join(format_value(v) for v in value[:6])
        return "[" + shown + (", ..." if len(value) > 6 else "") + "]"
    if isinstance(value, dict) and "__graph__" in value:
        return f"a Value graph of {len(value['__graph__'])} nodes"
    if isinstance(value, np.random.Generator):
        return "rng"
    if isinstance(value, np.ufunc):
        return f"np.{value.__name__}"
    if callable(value):
        doc = (getattr(value, "__doc__", None) or "").strip().splitlines()
        return doc[0] if doc and len(doc[0]) < 80 else getattr(value, "__name__", "a function")
    return repr(value)


def format_args(case: Case) -> str:
    parts = [format_value(a) for a in case.args] + [f"{k}={format_value(v)}" for k, v in case.kwargs.items()]
    return ", ".join(parts)
