"""Times of a collection: the --due option, the late penalty, and the times files and zip entries carry.

A hand-in time comes from the collection (a zip entry's time, a file's modification time); one that
is no date, before 1980 or after tomorrow is refused with a reason, never trusted nor a crash.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bpkit.grading.records import CollectionError

EARLIEST = datetime(1980, 1, 1, tzinfo=timezone.utc)  # no zip nor LMS time is older
DAY = timedelta(days=1)


def parse_due(text: str | datetime) -> datetime:
    """--due as an aware UTC time (a time without a zone is local time); CollectionError when it is not one."""
    if isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            raise CollectionError(
                f"--due {str(text)[:40]!r} is not a date and time like 2026-12-01T23:59 "
                f"(local time) or 2026-12-01T23:59Z (UTC)"
            ) from None
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError, OSError):
        raise CollectionError(f"--due {str(text)[:40]!r} is out of range") from None


@dataclass(frozen=True)
class LatePenalty:
    """Percentage points off per started day late, at most `maximum` points in all."""

    per_day: float
    maximum: float = 100.0

    def deduction(self, percent: float, days: int | None) -> float:
        """Points taken off `percent` for `days` late (None: late by a marker only, counted as one day)."""
        days = 1 if days is None else max(days, 0)
        return min(self.per_day * days, self.maximum, max(percent, 0.0))

    def apply(self, percent: float, days: int | None) -> float:
        """The percentage after the penalty (never below 0)."""
        return percent - self.deduction(percent, days)


def parse_late_penalty(text: str) -> LatePenalty:
    """--late-penalty PERCENT_PER_DAY[:MAX_PERCENT], e.g. `10` or `10:50`; CollectionError when malformed."""
    parts = str(text).strip().split(":")
    try:
        if len(parts) > 2:
            raise ValueError
        numbers = [float(p) for p in parts]
    except ValueError:
        raise CollectionError(
            f"--late-penalty {str(text)[:40]!r}: write PERCENT_PER_DAY or "
            f"PERCENT_PER_DAY:MAX_PERCENT, "
            f"e.g. 10 (10 points a day) or 10:50 (at most 50 in all)"
        ) from None
    if not all(math.isfinite(n) and 0 <= n <= 100 for n in numbers):
        raise CollectionError(f"--late-penalty {str(text)[:40]!r}: both numbers are percentages from 0 to 100")
    return LatePenalty(numbers[0], numbers[1] if len(numbers) == 2 else 100.0)


def checked_time(seconds: float, what: str) -> tuple[datetime | None, str, str]:
    """(the UTC time, what, "") or (None, what, why not): NaN, before 1980, after tomorrow, beyond what a date holds."""
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
    except (ValueError, OverflowError, OSError, TypeError):
        return None, what, f"{what} {str(seconds)[:24]} is no date"
    if moment < EARLIEST or moment > datetime.now(timezone.utc) + DAY:
        return None, what, f"{what} {moment:%Y-%m-%d} is not a real hand-in time"
    return moment, what, ""


def zip_time(info: zipfile.ZipInfo) -> tuple[datetime | None, str, str]:
    """When the entry was written: the UTC time of its extended-timestamp field, else its DOS time read as
    local time."""
    extra = info.extra
    while len(extra) >= 4:
        tag, size = int.from_bytes(extra[:2], "little"), int.from_bytes(extra[2:4], "little")
        body = extra[4 : 4 + size]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return checked_time(int.from_bytes(body[1:5], "little", signed=True), "zip entry time")
        extra = extra[4 + size :]
    try:
        return checked_time(datetime(*info.date_time).timestamp(), "zip entry time")
    except (ValueError, OverflowError, OSError):
        return None, "zip entry time", f"zip entry time {info.date_time!r} is no date"
