"""bpkit.grading.overrides: the instructor's overrides applied to the submissions that count."""

from __future__ import annotations

from bpkit.grading.overrides import OVERRIDE_FLAG, apply_overrides, unapplied_overrides
from bpkit.grading.tables import Latest


def submission(student: str, status: str = "graded", points: tuple[int, ...] = (0, 1)) -> Latest:
    rows = [
        dict(exercise=f"ex{i}", points=p, max_points=2, status="pass" if p == 2 else "fail", message="m", flags="")
        for i, p in enumerate(points)
    ]
    return Latest(1, f"{student}_01.ipynb", student, "01", "0" * 64, "", "", status, sum(points), 4, "", "bwrap", rows)


def override(student: str, exercise: str, points: int, reason: str = "a fair reading") -> dict:
    return dict(student=student, lesson="01", exercise=exercise, points=points, reason=reason)


def test_an_override_sets_the_points_keeps_the_reason_and_recomputes_the_total():
    (sub,) = apply_overrides([submission("ann")], [override("ann", "ex0", 2)])
    assert [row["points"] for row in sub.rows] == [2, 1] and sub.total == 3
    assert sub.rows[0]["message"].startswith("Set to 2 / 2 points by the instructor (was 0): a fair reading")
    assert OVERRIDE_FLAG in sub.flags.split(";") and all(OVERRIDE_FLAG in row["flags"] for row in sub.rows)
    assert sub.overrides == [dict(override("ann", "ex0", 2), was=0, max_points=2)]


def test_an_override_cannot_give_more_than_the_exercise_is_worth():
    (sub,) = apply_overrides([submission("ann")], [override("ann", "ex1", 9)])
    assert [row["points"] for row in sub.rows] == [0, 2] and sub.total == 2


def test_other_students_and_invalid_or_conflicting_hand_ins_are_left_alone_and_listed_as_unapplied():
    subs = [submission("ann"), submission("bob", status="invalid"), submission("cy", status="conflict")]
    wanted = [override("bob", "ex0", 2), override("cy", "ex0", 2), override("dee", "ex0", 2)]
    after = apply_overrides(subs, wanted)
    assert after == subs  # nothing to apply to: every submission as it was
    assert unapplied_overrides(after, wanted) == wanted
