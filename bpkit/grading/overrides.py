"""The instructor's last word: overrides of an exercise's points, with a reason, applied to the
submissions that count (`bpkit grade --override STUDENT:LESSON:EXERCISE=POINTS --reason TEXT`).

The gradebook (`store.Store`) keeps them signed; these functions apply them when the exports are
written, so every export, the feedback and the report agree.
"""

from __future__ import annotations

from dataclasses import replace

from bpkit.grading.tables import Latest

OVERRIDE_FLAG = "override"


def apply_overrides(latest: list[Latest], overrides: list[dict]) -> list[Latest]:
    """The submissions that count with the instructor's overrides in their exercise rows (points set, the
    reason in the message, flag `override`). An override of a lesson with no graded exercise row (missing,
    invalid) applies to nothing: unapplied_overrides lists it."""
    by_lesson: dict[tuple[str, str], dict[str, dict]] = {}
    for o in overrides:
        by_lesson.setdefault((o["student"], o["lesson"]), {})[o["exercise"]] = o
    changed = []
    for sub in latest:
        given = by_lesson.get((sub.student, sub.lesson))
        if not given or sub.status in ("invalid", "conflict"):
            changed.append(sub)
            continue
        rows, applied = [], []
        for row in sub.rows:
            o = given.get(row["exercise"])
            if o is None:
                rows.append(row)
                continue
            points = min(int(o["points"]), int(row["max_points"]))
            applied.append(dict(o, was=row["points"], points=points, max_points=row["max_points"]))
            rows.append(
                dict(
                    row,
                    points=points,
                    override=o["reason"],
                    message=f"Set to {points} / {row['max_points']} points by the instructor "
                    f"(was {row['points']}): {o['reason']}\n" + row["message"],
                )
            )
        if not applied:
            changed.append(sub)
            continue
        flags = ";".join([f for f in sub.flags.split(";") if f] + [OVERRIDE_FLAG])
        changed.append(
            replace(
                sub,
                rows=[dict(r, flags=flags) for r in rows],
                flags=flags,
                overrides=applied,
                total=sum(int(r["points"]) for r in rows),
            )
        )
    return changed


def unapplied_overrides(latest: list[Latest], overrides: list[dict]) -> list[dict]:
    """Overrides with no exercise row to apply to: no submission, or one that is invalid or in conflict."""
    applied = {(s.student, s.lesson, o["exercise"]) for s in latest for o in s.overrides}
    return [o for o in overrides if (o["student"], o["lesson"], o["exercise"]) not in applied]
