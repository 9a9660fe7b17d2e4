"""`bpkit grade --plan`: the table of who handed in what, for which lesson, with every note; grades nothing."""

from __future__ import annotations

import re

from bpkit.grading.records import CONFLICT, INVALID, NOT_IN_ROSTER, OTHER_NAME, Collection

# Characters that would change how the plan reads in a terminal: controls and bidirectional overrides.
_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: str, limit: int) -> str:
    """Text as the plan prints it: no control or bidirectional-override characters, capped."""
    text = _UNSHOWN.sub("?", str(text).replace("\n", " ").replace("\t", " "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_plan(collection: Collection) -> str:
    """The table file -> student -> lesson -> notes that `bpkit grade --plan` prints; grades nothing."""
    rows = [("FILE", "STUDENT", "LESSON", "NOTES")]
    for record in sorted(collection.records, key=lambda r: (r.student, r.lesson, r.where)):
        notes = []
        if record.late:
            count = record.days_late
            days = "days unknown" if count is None else f"{count} day{'s' * (count != 1)}"
            notes.append(f"late, {days} ({record.late_from})")
        for kind, why in record.problems.items():
            notes.append(f"{kind}: {why}")
        notes += record.notes
        who = record.student or "?"
        if record.name and record.name != record.student:
            who += f" ({record.name})"
        rows.append(
            (
                shown(record.where, 300),
                shown(f"{who} by {record.matched}" if record.matched else who, 80),
                record.lesson or "?",
                shown("; ".join(notes) or "ok", 400),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  -----")
    statuses = [r.status for r in collection.records if not r.same_as]
    counts = {kind: sum(kind in r.problems for r in collection.records) for kind in (NOT_IN_ROSTER, OTHER_NAME)}
    lines.append("")
    lines.append(
        f"{len(collection.records)} notebooks, {len({r.student for r in collection.records if r.student})} "
        f"students, lessons {', '.join(sorted({r.lesson for r in collection.records if r.lesson})) or 'none'}"
        f": "
        f"{statuses.count('ok')} to grade, {statuses.count(CONFLICT)} in conflict, {statuses.count(INVALID)} "
        f"invalid, {sum(bool(r.same_as) for r in collection.records)} the same as another, "
        f"{counts[NOT_IN_ROSTER]} not in the roster, {sum(r.late for r in collection.records)} late"
    )
    for source, layout in collection.sources:
        lines.append(f"source {shown(source, 100)}: read as {layout}")
    missing = collection.missing()
    if missing:
        lines.append(
            f"roster students with nothing here: {', '.join(shown(m, 40) for m in missing[:40])}"
            + (f" and {len(missing) - 40} more" if len(missing) > 40 else "")
        )
    for where, why in collection.skipped:
        lines.append(f"left aside: {shown(where, 100)}: {why}")
    return "\n".join(lines) + "\n"
