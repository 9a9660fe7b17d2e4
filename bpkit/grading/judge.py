"""Step 5 of grading: turn the kernel's observations into a status and message per exercise.

Runs in the grader's process with the real checkers: the expected answers never leave it.
"""

from __future__ import annotations

from bpkit.grading.execute import Run

TAMPERED_FLAG = "harness-tampered"


def judge_exercise(exercise, cases: list, run: Run, defined_in: int | None = None) -> tuple[str, str]:
    """Status and message of one exercise, decided here from what the kernel returned.

    defined_in: the notebook cell whose source defines the exercise's function, if any.
    """
    from bpkit.checks import CheckFailure

    if exercise.id in run.missing:
        found = run.missing[exercise.id]
        if found == "none" and defined_in in run.error_at:
            return "fail", (
                f"`{exercise.id}` is not defined because its cell did not run: {run.error_at[defined_in]}. "
                f"Fix that cell, run it, then run its check"
            )
        if found == "none":
            return "fail", f"`{exercise.id}` is not defined: the notebook has no such function (renamed or deleted?)"
        return "fail", f"`{exercise.id}` is a {found}, not a function: define it with `def {exercise.id}(...)`"
    observations = run.observations.get(exercise.id)
    if observations is None:
        if exercise.id in run.unchecked:
            return run.unchecked[exercise.id]
        return "error", "not checked: the kernel produced no result for it"
    if len(observations) != len(cases):
        return "error", "not checked: the kernel's reply did not have one result per case"
    tampered = _tampered(observations)
    if tampered:
        return "fail", (
            f"not graded: code in this notebook replaced the checking code the grader runs in the kernel "
            f"({'; '.join(tampered[:3])}). Remove that code; your instructor sees this flag"
        )
    # All read before any is judged: each verdict may consult the others as a hint's evidence.
    if any(not isinstance(o, dict) or not ("output" in o or "error" in o) for o in observations):
        return "error", "not checked: the kernel's reply could not be read"
    for index, observation in enumerate(observations):
        try:
            # Every case's observation is evidence: a hint names a mistake only if it reproduces them all.
            exercise.verdict(index, observation, cases, observations=observations)
        except CheckFailure as failure:
            return "fail", str(failure)
        except Exception as exc:  # a malformed observation or a checker bug must not stop the gradebook
            return "error", f"the checker could not judge the result ({type(exc).__name__}: {exc})"
    return "pass", f"passed ({len(cases)} cases)"


def _tampered(observations: list) -> list[str]:
    """What the kernel found replaced in its checking code, as reported with the observations."""
    found: list[str] = []
    for observation in observations:
        reported = observation.get("tampered") if isinstance(observation, dict) else None
        if reported:
            items = reported if isinstance(reported, list) else ["the kernel reported a change"]
            found += [str(item)[:200] for item in items if str(item)[:200] not in found]
    return found


def run_flags(run: Run) -> list[str]:
    """The submission's flags that come from running it: `harness-tampered` when any check saw tampering."""
    observed = [o for observations in run.observations.values() if isinstance(observations, list) for o in observations]
    return [TAMPERED_FLAG] if _tampered(observed) else []
