from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...retention import StreamCleanup, cleanup_exclusively, preview_cleanup
from ..base import format_time


class Command(BaseCommand):
    help = (
        "Delete stream data that every task reading the stream has analysed "
        "(before the oldest frame any of them still needs). --dry-run only says, per "
        "stream, the cutoff and how many items would go."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="delete nothing; print each stream's cutoff and how many items would go",
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        if not dry_run:
            deleted = cleanup_exclusively()
            if deleted is None:
                raise CommandError("Another cleanup is running right now; nothing deleted.")
            self.stdout.write(f"Deleted {deleted} stream items.")
            return
        plans = preview_cleanup()
        for plan in plans:
            self.stdout.write(describe(plan))
        total = sum(plan.count for plan in plans)
        self.stdout.write(f"Dry run: nothing deleted; {total} stream items would go.")


def describe(plan: StreamCleanup) -> str:
    name = plan.stream_class.__name__
    if plan.cutoff is None:
        return f"{name}: no cutoff (a task still needs every item), 0 items would go."
    return f"{name}: cutoff {format_time(plan.cutoff)} UTC, {plan.count} items would go."
