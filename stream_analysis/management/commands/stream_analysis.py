from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ..base import task_or_error, tasks_or_error


class Command(BaseCommand):
    help = (
        "Start, stop, list or show the status of analysis tasks. 'start KEY' runs the task "
        "(frames are created and calculated by the workers); 'stop KEY' pauses it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "list", "status"])
        parser.add_argument("key", nargs="?", help="task key from ANALYSIS_TIME_FRAME_TASKS")

    def handle(self, *args: Any, action: str, key: str | None, **options: Any) -> None:
        if action in ("start", "stop"):
            if key is None:
                raise CommandError(f"'{action}' needs a task key: stream_analysis {action} KEY.")
            task = task_or_error(key)
            task.schedule() if action == "start" else task.cancel()
            self.stdout.write(f"{'Started' if action == 'start' else 'Stopped'} {task.key}.")
            return
        for task in tasks_or_error(key):
            self.stdout.write(self.describe(task, detailed=action == "status"))

    def describe(self, task: Any, *, detailed: bool) -> str:
        state = "running" if task.is_running else "stopped"
        line = f"{task.key}\t{state}\t{task.name}"
        if not detailed:
            return line
        frame_class = task.get_frame_class()
        manager = frame_class._default_manager
        done = frame_class.count_completed()
        pending = frame_class.due_frames().count()
        failed = manager.filter(failed=True).count()
        counts = f"done={done}\tpending={pending}\tfailed={failed}"
        return f"{line}\tduration={frame_class.DURATION}\t{counts}"
