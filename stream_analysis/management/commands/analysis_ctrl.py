"""The original's ``analysis_ctrl start|stop KEY``: deprecated, as ``stream_analysis``."""

from __future__ import annotations

import warnings
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ..base import task_or_error

DEPRECATED = (
    "'analysis_ctrl' is deprecated: use 'manage.py stream_analysis start|stop KEY' (same effect)."
)


class Command(BaseCommand):
    help = f"Start or stop an analysis task. {DEPRECATED}"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop"])
        parser.add_argument("key", help="task key from ANALYSIS_TIME_FRAME_TASKS")

    def handle(self, *args: Any, action: str, key: str, **options: Any) -> None:
        warnings.warn(DEPRECATED, DeprecationWarning, stacklevel=2)
        self.stderr.write(DEPRECATED)  # Python hides DeprecationWarnings from manage.py
        task = task_or_error(key)
        task.schedule() if action == "start" else task.cancel()
        self.stdout.write(f"{task.name} {'started' if action == 'start' else 'stopped'}.")
