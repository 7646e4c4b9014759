from __future__ import annotations

import argparse
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from tqdm import tqdm

from ... import backfill, grid, signals
from ...models import AnalysisTask
from ...status import frame_counts
from .. import base
from ..base import confirm, format_duration, format_time, tasks_or_error

#: Seconds between two counts of the pending frames while waiting for them to drain.
POLL_SECONDS = 0.5
#: Exit status after Ctrl-C, as a shell reports a process ended by SIGINT.
INTERRUPTED = 130


class Command(BaseCommand):
    help = (
        "Create every missing frame over the whole stream (gaps included) for one task or "
        "all, in one transaction; the workers then calculate them. --force also "
        "recalculates calculated and failed frames (their results are replaced). It first "
        "prints its plan (frames and range per task); above 10000 frames it asks (--yes in "
        "scripts; without a terminal it refuses). With --wait (the default on a "
        "terminal), then show the frames draining until none is pending; Ctrl-C stops "
        "watching, the workers go on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", nargs="?", help="task key (default: every task)")
        parser.add_argument(
            "--force", action="store_true", help="recalculate frames that are already done"
        )
        parser.add_argument(
            "--yes", action="store_true", help="do not ask, however many frames (for scripts)"
        )
        parser.add_argument(
            "--wait",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="after creating, wait until no frame of a running task is pending "
            "(default: only when stdout is a terminal)",
        )

    def handle(
        self,
        *args: Any,
        key: str | None,
        force: bool,
        wait: bool | None,
        yes: bool,
        **options: Any,
    ) -> None:
        tasks = tasks_or_error(key)
        self.committed = False
        try:
            self.create(tasks, force=force, yes=yes)
            if self.stdout.isatty() if wait is None else wait:
                self.drain(tasks)
        except KeyboardInterrupt:
            self.interrupted()

    def create(self, tasks: list[AnalysisTask], *, force: bool, yes: bool) -> None:
        """Backfill every task in one transaction, with a bar counting the frames covered.

        The plan is printed first; above ``CONFIRM_ABOVE`` frames the user confirms it.
        """
        plans = [(task, backfill.backfill_plan(task.get_frame_class())) for task in tasks]
        total = sum(plan.count for _, plan in plans if plan is not None)
        for task, plan in plans:
            self.stdout.write(describe_plan(task.key, plan, force=force))
        self.stdout.flush()
        if total > base.CONFIRM_ABOVE:
            confirm(
                f"Backfill {total} frames?",
                yes=yes,
                refusal=f"backfill_analysis would cover {total} frames (more than "
                f"{base.CONFIRM_ABOVE}) and nobody is at a terminal to confirm: pass --yes.",
            )
        lines = []
        with self.progress("creating", total) as bar, transaction.atomic():
            transaction.on_commit(self.mark_committed)
            for task, plan in plans:
                created, reset = 0, 0
                if plan is not None:
                    created, reset = backfill.backfill_range(
                        task.get_frame_class(), plan, force=force, progress=bar.update
                    )
                signals.tick_requested.send(sender=type(task), task=task)
                lines.append(f"{task.key}: created {created} frames, reset {reset}.")
        for line in lines:
            self.stdout.write(line)

    def mark_committed(self) -> None:
        self.committed = True

    def drain(self, tasks: list[AnalysisTask]) -> None:
        """Show the pending frames of the running tasks going down, until none is left."""
        watched = []
        for task in tasks:
            if task.is_running:
                watched.append(task)
            else:
                self.stdout.write(
                    f"{task.key} is stopped: its frames wait for "
                    f"'stream_analysis start {task.key}'."
                )
        pending = count_pending(watched)
        if pending:
            self.stdout.write(
                f"Waiting for {pending} frames to be calculated (Ctrl-C stops watching; "
                "the workers go on)."
            )
            self.stdout.flush()
            with self.progress("calculating", pending) as bar:
                while pending:
                    time.sleep(POLL_SECONDS)
                    pending = count_pending(watched)
                    bar.update(max(bar.total - pending, 0) - bar.n)
        for task in watched:
            counts = frame_counts(task.get_frame_class())
            self.stdout.write(f"{task.key}: {counts['done']} done, {counts['failed']} failed.")

    def progress(self, what: str, total: int) -> tqdm[Any]:
        """A bar on stderr (stdout stays for the result lines); hidden when not a terminal."""
        return tqdm(total=total, desc=what, unit=" frames", file=self.stderr._out, disable=None)

    def interrupted(self) -> None:
        if self.committed:
            message = "Stopped watching: the frames stay queued and the workers go on."
        else:
            message = "Interrupted: the backfill was rolled back, no frame was created or reset."
        self.stderr.write(message)
        raise SystemExit(INTERRUPTED)


def describe_plan(key: str, plan: grid.FrameRange | None, *, force: bool) -> str:
    """One task's plan in a line: how many frames over which range."""
    if plan is None:
        return f"{key}: plan: the stream is empty, no frame to create."
    done = "calculated and failed ones are recalculated" if force else "existing ones are kept"
    return (
        f"{key}: plan: {plan.count} frames of {format_duration(plan.duration)} from "
        f"{format_time(plan.first)} to {format_time(plan.end)} UTC ({done})."
    )


def count_pending(tasks: list[AnalysisTask]) -> int:
    """Frames still to calculate (pending, retrying or stale) over ``tasks``."""
    return sum(task.get_frame_class().unfinished_frames().count() for task in tasks)
