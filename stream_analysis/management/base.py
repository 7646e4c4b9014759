"""Shared helpers of the management commands."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError

from ..exceptions import StreamAnalysisError
from ..models import AnalysisTask


def task_or_error(key: str) -> AnalysisTask:
    """The task with ``key``, or a CommandError (one line, no traceback) naming valid keys."""
    try:
        return AnalysisTask.require(key)
    except StreamAnalysisError as exc:
        raise CommandError(str(exc)) from exc


def tasks_or_error(key: str | None) -> list[AnalysisTask]:
    """``[task]`` for a key, or every configured task when ``key`` is None."""
    if key is not None:
        return [task_or_error(key)]
    tasks = AnalysisTask.get()
    if not tasks:
        raise CommandError("No analysis task is configured: add ANALYSIS_TIME_FRAME_TASKS.")
    return tasks


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a plain-text table: columns padded to their widest cell, two spaces apart.

    Cells that look like numbers (or "-") are right-aligned, the others left-aligned.
    """
    table = [list(header), *map(list, rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    numeric = [all(is_number(row[i]) for row in table[1:]) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ).rstrip()
        for row in table
    ]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell == "-"
    return True


def format_time(moment: datetime | None) -> str:
    """A time in UTC to the second (to the millisecond when it has a fraction), "-" if None."""
    if moment is None:
        return "-"
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(sep=" ", timespec=spec).removesuffix("+00:00")


def format_duration(duration: timedelta) -> str:
    """A duration as "15s", "1m10s", "2h", "1d12h" or "20ms"."""
    if duration < timedelta(seconds=1):
        return f"{duration / timedelta(milliseconds=1):g}ms"
    seconds = duration.total_seconds()
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{value:g}{unit}" for value, unit in parts if value)


def format_number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


#: The times a command accepts: frame arithmetic (a frame before, a frame after)
#: must stay within what Python's datetime can hold.
EARLIEST_TIME = datetime(1000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)


def parse_time(option: str, value: str) -> datetime:
    """An ISO 8601 time given to ``option``; without an offset it is UTC.

    Raises a CommandError naming the expected format, or the accepted range
    (years 1000 to 8999) for a time near the ends of the calendar.
    """
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        in_range = EARLIEST_TIME <= moment < LATEST_TIME
    except ValueError:
        raise CommandError(
            f"{option} {value!r} is not an ISO 8601 time: write e.g. 2026-01-01T10:00:00Z "
            "or 2026-01-01T11:00:00+01:00 (without an offset, UTC)."
        ) from None
    except OverflowError:
        in_range = False
    if not in_range:
        raise CommandError(
            f"{option} {value!r} is out of range: give a time from {EARLIEST_TIME:%Y-%m-%d} "
            f"to before {LATEST_TIME:%Y-%m-%d} (UTC)."
        )
    return moment


#: Above this many frames, a command that resets or creates frames asks first
#: (on a terminal) or needs ``--yes`` (in a script).
CONFIRM_ABOVE = 10_000


def confirm(question: str, *, yes: bool, refusal: str) -> None:
    """Go on if ``yes``, or if the user answers y to ``question`` on a terminal.

    Without a terminal (a script, cron) and without ``yes`` it raises a
    CommandError ``refusal``: nobody is there to answer. A "no" raises too.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(refusal)
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("Cancelled: nothing changed.")
