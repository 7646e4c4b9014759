from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import operations
from ...status import TaskStatus, task_status
from ..base import (
    format_duration,
    format_number,
    format_table,
    format_time,
    parse_time,
    task_or_error,
    tasks_or_error,
)

STATUS_HEADER = (
    "KEY", "STATE", "DURATION", "DONE", "PENDING", "FAILED", "NEWEST END (UTC)",
    "LAG (s)", "ANALYSIS (s)", "CLEANUP (s)", "CUTOFF (UTC)",
)  # fmt: skip


class Command(BaseCommand):
    help = (
        "Start, stop, list, show the status of, or recompute analysis tasks. 'start KEY' runs "
        "the task (frames are created and calculated by the workers); 'stop KEY' pauses it; "
        "'status [KEY] [--json]' shows counts, lag and timings; 'recompute KEY --from ISO "
        "--to ISO' puts the existing frames overlapping that range back to pending."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "list", "status", "recompute"])
        parser.add_argument("key", nargs="?", help="task key from ANALYSIS_TIME_FRAME_TASKS")
        parser.add_argument(
            "--json", action="store_true", help="status: print a JSON list, for scripts"
        )
        parser.add_argument(
            "--from",
            dest="start",
            metavar="ISO",
            help="recompute: start of the range, ISO 8601 (e.g. 2026-01-01T10:00:00Z; "
            "without an offset, UTC)",
        )
        parser.add_argument(
            "--to", dest="end", metavar="ISO", help="recompute: end of the range (excluded)"
        )

    def handle(self, *args: Any, action: str, key: str | None, **options: Any) -> None:
        refuse_foreign_options(action, options)
        if action in ("start", "stop"):
            self.start_or_stop(action, key)
        elif action == "recompute":
            self.recompute(key, options["start"], options["end"])
        elif action == "status":
            self.status(key, as_json=options["json"])
        else:
            for task in tasks_or_error(key):
                state = "running" if task.is_running else "stopped"
                self.stdout.write(f"{task.key}\t{state}\t{task.name}")

    def start_or_stop(self, action: str, key: str | None) -> None:
        task = task_or_error(require_key(action, key))
        task.schedule() if action == "start" else task.cancel()
        self.stdout.write(f"{'Started' if action == 'start' else 'Stopped'} {task.key}.")

    def status(self, key: str | None, *, as_json: bool) -> None:
        statuses = [task_status(task) for task in tasks_or_error(key)]
        if as_json:
            self.stdout.write(json.dumps([s.as_json() for s in statuses], indent=2))
            return
        for line in format_table(STATUS_HEADER, map(status_row, statuses)):
            self.stdout.write(line)
        for status in statuses:
            for note in status_notes(status):
                self.stdout.write(f"{status.key}: {note}")

    def recompute(self, key: str | None, start: str | None, end: str | None) -> None:
        usage = "stream_analysis recompute KEY --from ISO --to ISO"
        task = task_or_error(require_key("recompute", key, usage))
        if start is None or end is None:
            raise CommandError(f"'recompute' needs --from and --to: {usage}.")
        first, last = parse_time("--from", start), parse_time("--to", end)
        if first >= last:
            raise CommandError(f"--from ({start}) must be before --to ({end}).")
        frame_class = task.get_frame_class()
        count = operations.recompute(frame_class, frame_class.get_in_range(first, last))
        self.stdout.write(
            f"{task.key}: {count} frames overlapping [{format_time(first)}, "
            f"{format_time(last)}) UTC back to pending."
        )
        if count and not task.is_running:
            self.stdout.write(
                f"{task.key} is stopped: they wait for 'stream_analysis start {task.key}'."
            )


def require_key(action: str, key: str | None, usage: str = "") -> str:
    if key is None:
        raise CommandError(
            f"'{action}' needs a task key: {usage or f'stream_analysis {action} KEY'}."
        )
    return key


#: Options that only make sense with one action.
OPTION_ACTIONS = {
    "json": ("status", "--json"),
    "start": ("recompute", "--from"),
    "end": ("recompute", "--to"),
}


def refuse_foreign_options(action: str, options: dict[str, Any]) -> None:
    for dest, (owner, flag) in OPTION_ACTIONS.items():
        if options.get(dest) and action != owner:
            raise CommandError(f"{flag} only applies to '{owner}', not to '{action}'.")


def status_notes(status: TaskStatus) -> list[str]:
    """What the table has no column for: a rollup held back, the trail of recomputes."""
    notes = []
    if status.held_back_by is not None:
        notes.append(f"held back by {status.held_back_by}")
    if any(status.recomputes.values()):
        reasons = ", ".join(f"{reason} {n}" for reason, n in status.recomputes.items())
        notes.append(f"recomputed {reasons}; {status.late_items} late items")
    return notes


def status_row(status: TaskStatus) -> list[str]:
    """One task's line of the status table."""
    return [
        status.key,
        "running" if status.running else "stopped",
        format_duration(status.duration),
        str(status.done),
        str(status.pending),
        str(status.failed),
        format_time(status.newest_calculated_end),
        format_number(status.lag_seconds, 1),
        format_number(status.avg_analysis_time, 3),
        format_number(status.avg_cleanup_time, 3),
        format_time(status.cutoff),
    ]
