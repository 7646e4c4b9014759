"""The coordinator's tick with RECOMPUTE_LATE: its cost follows late items, not frames.

Run from the repository root::

    python -m bench.late_tick [--frames 1000000] [--late 0 10 100 1000]

For each frame count (10,000, then ``--frames``), the table holds that many
*calculated* 15 s frames and the stream a first and a last reading. Then, for
each number of late items in ``--late``, that many readings arrive for random
calculated frames, and one tick is timed (``create_due_frames`` in
``transaction.atomic()``, until COMMIT): it reads the arrivals since the last
tick and puts the frames they belong to back to pending. Between rounds the
frames are marked calculated again. The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import common

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "late"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.late_tick", description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000, help="calculated 15 s frames")
    parser.add_argument("--late", type=int, nargs="+", default=[0, 10, 100, 1000])
    return parser.parse_args(argv)


def fill(frame_class: Any, frames: int) -> None:
    """``frames`` calculated frames from T0, and the stream's first and last readings."""
    from django.utils import timezone

    from bench.benchapp.models import LateReading

    table = frame_class._meta.db_table
    common.sql(f"TRUNCATE {table}, {LateReading._meta.db_table}")
    common.sql(
        f"INSERT INTO {table} (start_time, calculated, calculated_at, item_count)"
        " SELECT generate_series(%s::timestamptz, %s::timestamptz, interval '15 seconds'),"
        " true, now() - interval '1 hour', 0",
        [T0, T0 + (frames - 1) * frame_class.DURATION],
    )
    common.sql(f"ANALYZE {table}")
    old = timezone.now() - timedelta(hours=1)
    LateReading.objects.bulk_create(
        [
            LateReading(created_at=T0, ingested_at=old),
            LateReading(created_at=T0 + frames * frame_class.DURATION, ingested_at=old),
        ]
    )


def arrive_late(frame_class: Any, frames: int, count: int, rng: random.Random) -> None:
    from django.utils import timezone

    from bench.benchapp.models import LateReading

    now = timezone.now()
    span = frames * frame_class.DURATION.total_seconds()  # the stream's frames
    LateReading.objects.bulk_create(
        LateReading(created_at=T0 + timedelta(seconds=rng.uniform(0, span - 1)), ingested_at=now)
        for _ in range(count)
    )


def settle() -> None:
    """Wait until the arrivals are older than ARRIVAL_SETTLE (the tick reads them then)."""
    from stream_analysis.settings import app_settings

    time.sleep(app_settings.ARRIVAL_SETTLE + 0.01)


def measure(frames: int, late_counts: list[int]) -> list[list[object]]:
    from bench.benchapp.models import LateFrame
    from stream_analysis.models import AnalysisTask

    task = AnalysisTask.require(KEY)
    fill(LateFrame, frames)
    common.tick(task)  # the first tick starts watching arrivals from now on
    rng = random.Random(1)
    rows: list[list[object]] = []
    for count in late_counts:
        arrive_late(LateFrame, frames, count, rng)
        settle()
        started = time.perf_counter()
        result = common.tick(task)
        seconds = time.perf_counter() - started
        rows.append([f"{frames:,} frames", count, result.recomputed, seconds * 1000])
        LateFrame.objects.filter(calculated=False).update(calculated=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with common.bench_session():
        rows = []
        for frames in sorted({10_000, args.frames}):
            rows += measure(frames, args.late)
        print()
        common.print_table(["table", "late items", "frames recomputed", "tick ms"], rows)


if __name__ == "__main__":
    main()
