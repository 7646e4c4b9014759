"""The cost of a rollup level: a year of 15 s frames summed into quarter hours.

Run from the repository root::

    python -m bench.rollup [--days 365] [--recomputed 0 100 1000]

``SyntheticFrame`` gets ``--days`` of calculated 15 s frames (365 days: 2,102,400),
inserted in SQL. Then ``QuarterHourFrame`` (``FrameStream.of(SyntheticFrame)``,
15 minutes: 35,040 frames a year) is timed:

1. its first tick: the watermark over the source frames and the creation of
   every quarter hour (one INSERT);
2. calculating every quarter hour in this process (``calculate_due_frames``,
   batches of ``BATCH_SIZE``; each frame sums its 60 source frames with one
   aggregate query): frames per second;
3. a tick with nothing new (the steady state);
4. for each count in ``--recomputed``, a tick after that many random source frames
   were recalculated: the quarter hours over them are marked stale (the cost
   follows the recalculated frames, not the 2.1 million).

The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

from . import common

T0 = datetime(2025, 1, 1, tzinfo=UTC)
KEY = "quarter"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rollup", description=__doc__)
    parser.add_argument("--days", type=int, default=365, help="days of 15 s source frames")
    parser.add_argument("--recomputed", type=int, nargs="+", default=[0, 100, 1000])
    return parser.parse_args(argv)


def fill_source(days: int) -> int:
    """``days`` of calculated 15 s SyntheticFrames from T0 (item_count 1 to 4)."""
    from bench.benchapp.models import SyntheticFrame

    table = SyntheticFrame._meta.db_table
    frames = days * 24 * 60 * 4
    common.sql(f"TRUNCATE {table}")
    common.sql(
        f"INSERT INTO {table} (start_time, calculated, calculated_at, item_count)"
        " SELECT s, true, now() - interval '1 day', 1 + (extract(epoch FROM s)::bigint / 15) %% 4"
        " FROM generate_series(%s::timestamptz, %s::timestamptz, interval '15 seconds') AS s",
        [T0, T0 + (frames - 1) * SyntheticFrame.DURATION],
    )
    common.sql(f"ANALYZE {table}")
    return frames


def recalculate_sources(count: int, frames: int, rng: random.Random) -> None:
    """``count`` random source frames recalculated, as a worker would have committed them
    (recomputes + 1): their recalculation is reported to the rollup ``commit_margin()``
    after ``calculated_at``, so it is set that far back: reported now."""
    from bench.benchapp.models import SyntheticFrame
    from stream_analysis.rollups import commit_margin

    starts = [T0 + rng.randrange(frames) * SyntheticFrame.DURATION for _ in range(count)]
    when = datetime.now(UTC) - commit_margin()
    SyntheticFrame.objects.filter(start_time__in=starts).update(
        recomputes=1, calculated_at=when, recompute_reason="late"
    )


def timed(what: str, rows: list[list[object]], action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action()
    rows.append([what, time.perf_counter() - started])
    return result


def measure(days: int, recomputed: list[int]) -> list[list[object]]:
    from django.db.models import Sum

    from bench.benchapp.models import QuarterHourFrame, SyntheticFrame
    from stream_analysis import calculation
    from stream_analysis.models import AnalysisTask

    rows: list[list[object]] = []
    frames = timed(
        f"insert {days} days of 15 s source frames (SQL)", rows, lambda: fill_source(days)
    )
    task = AnalysisTask.require(KEY)
    result = timed("first tick: watermark + create quarter hours", rows, lambda: common.tick(task))
    print(f"source frames: {frames:,}; quarter hours created: {result.created:,}")
    started = time.perf_counter()
    drained = calculation.calculate_due_frames(QuarterHourFrame, deadline=time.monotonic() + 3600)
    seconds = time.perf_counter() - started
    rows.append([f"calculate {drained.calculated:,} quarter hours (one process)", seconds])
    rows.append(["  frames per second", drained.calculated / seconds])
    timed("tick with nothing new", rows, lambda: common.tick(task))
    rng = random.Random(11)
    time.sleep(0.1)  # the next tick's window starts after the recalculations below
    for count in recomputed:
        recalculate_sources(count, frames, rng)
        time.sleep(0.1)  # past ARRIVAL_SETTLE (0.05 s in bench.settings)
        result = timed(
            f"tick after {count} source frames recalculated", rows, lambda: common.tick(task)
        )
        rows.append(["  quarter hours marked stale", result.recomputed])
        QuarterHourFrame.objects.filter(calculated=False).update(calculated=True)
        SyntheticFrame.objects.filter(recomputes__gt=0).update(recomputes=0)
    total = QuarterHourFrame.objects.aggregate(v=Sum("item_count"))["v"]
    source_total = SyntheticFrame.objects.aggregate(v=Sum("item_count"))["v"]
    print(f"sum of the quarter hours: {total:,}; of the 15 s frames: {source_total:,}")
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with common.bench_session():
        rows = measure(args.days, args.recomputed)
        print()
        common.print_table(["step", "seconds (or count)"], rows)


if __name__ == "__main__":
    main()
