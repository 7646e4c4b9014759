"""Write a synthetic live stream of tweets, like a Twitter sample stream."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from demo.models import Tweet

WORDS = [
    "stream",
    "frame",
    "analysis",
    "django",
    "dramatiq",
    "postgres",
    "tweet",
    "data",
    "time",
    "window",
    "count",
]


def positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Write tweets stamped with the current time, at a steady rate, until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rate", type=positive, default=5.0, help="tweets per second")
        parser.add_argument(
            "--duration", type=float, default=0.0, help="seconds to run (0: until Ctrl-C)"
        )
        parser.add_argument(
            "--history",
            type=float,
            default=0.0,
            help="first write this many seconds of past tweets (a backlog to analyse)",
        )

    def handle(self, *args: Any, rate: float, duration: float, history: float, **options: Any):
        if duration < 0 or history < 0:
            raise CommandError("--duration and --history must not be negative.")
        if history:
            self.write_history(rate, history)
        deadline = time.monotonic() + duration if duration else None
        written = 0
        try:
            while deadline is None or time.monotonic() < deadline:
                Tweet.objects.create(text=self.text(), created_at=timezone.now())
                written += 1
                time.sleep(random.expovariate(rate))
        except KeyboardInterrupt:
            pass
        self.stdout.write(f"Wrote {written} live tweets.")

    def write_history(self, rate: float, seconds: float) -> None:
        now = timezone.now()
        count = int(rate * seconds)
        Tweet.objects.bulk_create(
            Tweet(text=self.text(), created_at=now - timedelta(seconds=random.uniform(0, seconds)))
            for _ in range(count)
        )
        self.stdout.write(f"Wrote {count} past tweets over {seconds:.0f} s.")

    @staticmethod
    def text() -> str:
        return " ".join(random.choices(WORDS, k=random.randint(3, 12)))
