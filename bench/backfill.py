"""Creating a long backlog: the coordinator's tick over ~174 days of 15 s frames.

Run from the repository root::

    python -m bench.backfill [--frames 1000000]

The stream (``SyntheticStream``, no queries) spans exactly ``--frames`` closed
15 s frames, 1,000,000 by default: 173.6 days. Timed, in order:

1. **tick**: ``coordinator.create_unfinished_frames()`` in ``transaction.atomic()``, as
   the coordinator runs it (advisory lock, one ``INSERT … generate_series … ON
   CONFLICT DO NOTHING``, count of due frames up to what a top-up needs), until
   COMMIT. After it every frame is due.
2. **count due**: counting every due frame (``unfinished_frames().count()``).
3. **first claim**: claiming one batch in a fresh transaction, the drain's first step.
4. **tick again**: a second tick, which has nothing to create.
5. **backfill, all exist**: ``backfill.backfill()`` over the full table (each
   row conflicts).
6. **backfill, empty table**: ``backfill.backfill()`` after a TRUNCATE.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from . import common

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "synthetic"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000, help="closed 15 s frames")
    return parser.parse_args(argv)


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def set_stream_span(frame_class: Any, frames: int) -> timedelta:
    """Make the synthetic stream hold exactly ``frames`` closed frames (starting off-grid)."""
    earliest = T0 + timedelta(seconds=7)
    latest = T0 + frames * frame_class.DURATION + timedelta(seconds=3)
    frame_class.STREAM_CLASS.earliest, frame_class.STREAM_CLASS.latest = earliest, latest
    return latest - earliest


def first_claim(frame_class: Any) -> int:
    from django.db import transaction

    from stream_analysis import calculation
    from stream_analysis.settings import app_settings

    with transaction.atomic():
        return len(calculation.claim_frames(frame_class, app_settings.BATCH_SIZE))


def measure(frame_class: Any, frames: int) -> list[list[object]]:
    from django.test import override_settings

    from stream_analysis import backfill
    from stream_analysis.models import AnalysisTask

    task = AnalysisTask.require(KEY)
    table = frame_class._meta.db_table
    # Measures one tick creating every frame: lift the per-tick cap for it.
    with override_settings(STREAM_ANALYSIS_MAX_FRAMES_PER_TICK=max(frames, 1)):
        result, tick_s = timed(lambda: common.tick(task))
    due, count_s = timed(lambda: frame_class.unfinished_frames().count())
    claimed, claim_s = timed(lambda: first_claim(frame_class))
    again, again_s = timed(lambda: common.tick(task))
    (created, _), existing_s = timed(lambda: backfill.backfill(task))
    common.sql(f"TRUNCATE {table}")
    (refilled, _), empty_s = timed(lambda: backfill.backfill(task))
    return [
        [f"tick: create every due frame (due counted up to {result.due})",
         result.created, tick_s, result.created / tick_s],
        ["count due frames", due, count_s, due / count_s],
        ["first claim of a batch", claimed, claim_s, ""],
        ["tick again (nothing to create)", again.created, again_s, ""],
        ["backfill, every frame exists", created, existing_s, frames / existing_s],
        ["backfill, empty table", refilled, empty_s, refilled / empty_s],
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.setup_django()
    from bench.benchapp.models import SyntheticFrame

    span = set_stream_span(SyntheticFrame, args.frames)
    with common.bench_database() as database:
        print(f"$ {common.command_line()}")
        print(
            f"PostgreSQL {common.server_version()} (database {database}), {os.cpu_count()} "
            f"cores, load average {os.getloadavg()[0]:.2f}; stream spans "
            f"{span.total_seconds() / 86400:.1f} days, {args.frames:,} closed 15 s frames"
        )
        rows = measure(SyntheticFrame, args.frames)
        print()
        common.print_table(["step", "frames", "seconds", "frames/s"], rows)


if __name__ == "__main__":
    main()
