from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...retention import cleanup


class Command(BaseCommand):
    help = (
        "Delete stream data that every task reading the stream has analysed "
        "(before the oldest frame any of them still needs)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Deleted {cleanup()} stream items.")
