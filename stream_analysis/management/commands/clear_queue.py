from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ..base import task_or_error


class Command(BaseCommand):
    help = (
        "Delete a task's pending frames and its queued messages. While the task runs, "
        "frames newer than its newest remaining frame are created again at the next tick."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="task key from ANALYSIS_TIME_FRAME_TASKS")

    def handle(self, *args: Any, key: str, **options: Any) -> None:
        messages, frames = task_or_error(key).clear_queue()
        self.stdout.write(f"Cleared {messages} queued messages and {frames} pending frames.")
