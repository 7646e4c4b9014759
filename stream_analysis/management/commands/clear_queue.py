from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

from ... import states
from ...models import AnalysisTask, BaseTimeFrame
from ..base import format_time, task_or_error


class Command(BaseCommand):
    help = (
        "Delete a task's pending frames (every frame not calculated yet: pending, retrying, "
        "and stale ones with the results they had) and its queued messages. Ticks only "
        "create frames after the task's newest frame, so a deleted frame older than the "
        "newest calculated or failed one is never created again ('backfill_analysis' "
        "recreates it only while its stream data lasts, and the next cleanup may delete that "
        "data). Refuses on a running task unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="task key from ANALYSIS_TIME_FRAME_TASKS")
        parser.add_argument(
            "--force",
            action="store_true",
            help="clear a running task too (its workers may be calculating these frames)",
        )

    def handle(self, *args: Any, key: str, force: bool, **options: Any) -> None:
        task = task_or_error(key)
        lost = describe_lost(task)
        if task.is_running and not force:
            due = task.get_frame_class().unfinished_frames().count()
            raise CommandError(
                f"{task.key} is running: clear_queue would delete {due} pending frames"
                + (f", of which {lost.format(verb='would')}" if lost else "")
                + f". Stop it first ('stream_analysis stop {task.key}'), or pass --force."
            )
        messages, frames = task.clear_queue()
        self.stdout.write(f"Cleared {messages} queued messages and {frames} pending frames.")
        if lost:
            lost = lost.format(verb="will")
            self.stdout.write(
                f"Of those, {lost}. 'backfill_analysis {task.key}' recreates them while their "
                "stream data lasts."
            )


def describe_lost(task: AnalysisTask) -> str:
    """The pending frames no tick would create again once deleted, in words ("" if none),
    with a ``{verb}`` placeholder.

    Ticks create frames after the newest existing one: once the pending frames
    are gone, that is the newest calculated or failed frame.
    """
    frame_class: type[BaseTimeFrame] = task.get_frame_class()
    kept = frame_class._default_manager.filter(states.CALCULATED | states.FAILED)
    newest_kept = kept.aggregate(v=models.Max("start_time"))["v"]
    if newest_kept is None:
        return ""
    lost = (
        frame_class.unfinished_frames()
        .filter(start_time__lt=newest_kept)
        .aggregate(
            count=models.Count("pk"), first=models.Min("start_time"), last=models.Max("start_time")
        )
    )
    if not lost["count"]:
        return ""
    end = lost["last"] + frame_class.DURATION
    return (
        f"{lost['count']} frames from {format_time(lost['first'])} to {format_time(end)} UTC "
        "{verb} never be created again (ticks only create frames after the newest remaining "
        f"one, {format_time(newest_kept)} UTC) and the next cleanup may delete their stream data"
    )
