from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import operations
from ...exceptions import MissingDataError
from ...status import TaskStatus, task_status
from .. import base
from ..base import (
    confirm,
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
        "--to ISO' puts the existing frames overlapping that range back to pending: their "
        "results are replaced. It refuses frames whose stream data may have been cleaned up "
        "(--allow-missing-data recomputes them and marks them missing_data), --dry-run "
        "only says what would change, and above 10000 frames it asks first (--yes in "
        "scripts)."
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
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="recompute: change nothing; say how many frames would be reset",
        )
        parser.add_argument(
            "--yes",
            action="store_true",
            help="recompute: do not ask, however many frames (for scripts)",
        )
        parser.add_argument(
            "--allow-missing-data",
            action="store_true",
            help="recompute: also frames whose stream data may have been cleaned up; "
            "they are marked missing_data",
        )

    def handle(self, *args: Any, action: str, key: str | None, **options: Any) -> None:
        refuse_foreign_options(action, options)
        if action in ("start", "stop"):
            self.start_or_stop(action, key)
        elif action == "recompute":
            self.recompute(key, options["start"], options["end"], options)
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

    def recompute(
        self, key: str | None, start: str | None, end: str | None, options: dict[str, Any]
    ) -> None:
        usage = "stream_analysis recompute KEY --from ISO --to ISO"
        task = task_or_error(require_key("recompute", key, usage))
        if start is None or end is None:
            raise CommandError(f"'recompute' needs --from and --to: {usage}.")
        first, last = parse_time("--from", start), parse_time("--to", end)
        if first >= last:
            raise CommandError(f"--from ({start}) must be before --to ({end}).")
        frame_class = task.get_frame_class()
        frames = frame_class.get_in_range(first, last)
        span = f"[{format_time(first)}, {format_time(last)}) UTC"
        plan = operations.recompute_plan(frame_class, frames)
        if options["dry_run"]:
            self.stdout.write(describe_recompute(task.key, span, plan))
            self.stdout.write("Dry run: nothing changed.")
            return
        allow = options["allow_missing_data"]
        if plan.missing_data and not allow:
            raise CommandError(missing_data_refusal(task.key, plan))
        if plan.frames > base.CONFIRM_ABOVE:
            confirm(
                f"{describe_recompute(task.key, span, plan)} Go on?",
                yes=options["yes"],
                refusal=f"{task.key}: recompute would reset {plan.frames} frames (more than "
                f"{base.CONFIRM_ABOVE}) and nobody is at a terminal to confirm: pass --yes, "
                "or narrow --from/--to (--dry-run shows what would change).",
            )
        try:
            count = operations.recompute(frame_class, frames, allow_missing_data=allow)
        except MissingDataError as exc:  # the stream was cleaned up meanwhile
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{task.key}: {count} frames overlapping {span} back to pending.")
        if count and plan.missing_data:
            self.stdout.write(
                f"{plan.missing_data} of them may have lost stream data: marked missing_data."
            )
        if count and not task.is_running:
            self.stdout.write(
                f"{task.key} is stopped: they wait for 'stream_analysis start {task.key}'."
            )


def describe_recompute(key: str, span: str, plan: operations.RecomputePlan) -> str:
    text = (
        f"{key}: recompute would put {plan.frames} frames overlapping {span} back to pending "
        f"({plan.calculated} of them calculated: their results are replaced"
    )
    if plan.missing_data:
        text += (
            f"; {plan.missing_data} start before {format_time(plan.complete_from)} UTC "
            "and may have lost their stream data"
        )
    return text + ")."


def missing_data_refusal(key: str, plan: operations.RecomputePlan) -> str:
    return (
        f"{key}: {plan.missing_data} of the {plan.frames} frames start before "
        f"{format_time(plan.complete_from)} UTC, the frame of the stream's earliest stored "
        "item: their data may have been cleaned up, and recomputing them would replace their "
        "results with partial ones. Nothing changed. Start --from there, or pass "
        "--allow-missing-data to recompute them anyway, marked missing_data."
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
    "dry_run": ("recompute", "--dry-run"),
    "yes": ("recompute", "--yes"),
    "allow_missing_data": ("recompute", "--allow-missing-data"),
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
