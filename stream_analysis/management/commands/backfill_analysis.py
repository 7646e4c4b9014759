from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ... import scheduling, signals
from ..base import tasks_or_error


class Command(BaseCommand):
    help = (
        "Create every missing frame over the whole stream (gaps included) for one task or "
        "all; the workers then calculate them. --force also recalculates calculated and "
        "failed frames."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", nargs="?", help="task key (default: every task)")
        parser.add_argument(
            "--force", action="store_true", help="recalculate frames that are already done"
        )

    def handle(self, *args: Any, key: str | None, force: bool, **options: Any) -> None:
        for task in tasks_or_error(key):
            created, reset = scheduling.backfill(task, force=force)
            signals.tick_requested.send(sender=type(task), task=task)
            self.stdout.write(f"{task.key}: created {created} frames, reset {reset}.")
