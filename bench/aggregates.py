"""The batch path against its limit: four ways to the same per-frame count and average.

Run from the repository root::

    python -m bench.aggregates [--frames 100000] [--calc-frames 20000] [--rows-per-frame 5]
    python -m bench.aggregates --e2e [--e2e-frames 1000000]   # adds the end-to-end run

One run, one PostgreSQL, one ``Reading`` table (``--rows-per-frame`` rows in
every 10 s frame), the same results (``item_count``, ``average``):

(a) **limit**: one hand-written ``UPDATE … FROM (SELECT date_bin(…), count(*),
    avg(value) … GROUP BY 1)`` over all ``--frames`` frames, what a SQL user
    schedules with pg_cron. No claim, no retry, no bookkeeping.
(b) **AGGREGATES**: ``--frames`` pending ``AggregateFrame`` frames drained by a
    real worker (claim with SKIP LOCKED, one UPDATE per claimed batch).
(c) **batch reads**: ``--calc-frames`` ``calculate()`` frames with
    ``BATCH_READ = True``, drained by the same worker.
(d) **per frame**: the same ``calculate()`` without batch reads (one stream
    query per frame, the path before the batch path).

Rates are frames per second of wall time, from the first ``calculate`` message
sent to the poll (every 20 ms) that found no frame due. ``--e2e`` then empties
the tables, writes ``--e2e-frames`` x ``--rows-per-frame`` readings, sends ONE
coordinator tick and times until every frame is created and calculated by the
worker, printing the peak resident memory of each worker process.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import common

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DURATION = timedelta(seconds=10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.aggregates", description=__doc__)
    parser.add_argument("--frames", type=int, default=100_000, help="frames of (a) and (b)")
    parser.add_argument("--calc-frames", type=int, default=20_000, help="frames of (c) and (d)")
    parser.add_argument("--rows-per-frame", type=int, default=5, help="readings per frame")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker process")
    parser.add_argument("--aggregate-batch-size", type=int, help="AGGREGATE_BATCH_SIZE")
    parser.add_argument("--e2e", action="store_true", help="add the end-to-end run")
    parser.add_argument("--e2e-frames", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per drain")
    return parser.parse_args(argv)


# -- data -----------------------------------------------------------------------------


def write_readings(frames: int, per_frame: int, closing: bool = False) -> int:
    """``per_frame`` readings evenly spread in each of ``frames`` frames from T0."""
    from bench.benchapp.models import Reading

    table = Reading._meta.db_table
    total = frames * per_frame
    step = DURATION.total_seconds() / per_frame
    common.sql(
        f"INSERT INTO {table} (created_at, value) "
        "SELECT %s::timestamptz + make_interval(secs => i * %s), (i %% 97)::float "
        "FROM generate_series(0, %s - 1) AS i",
        [T0, step, total],
    )
    if closing:  # one reading at the end of the last frame: it closes
        common.sql(
            f"INSERT INTO {table} (created_at, value) VALUES (%s, 0)", [T0 + frames * DURATION]
        )
    # Hint bits and visibility map set now, so that no measured statement pays for them.
    common.sql(f"VACUUM ANALYZE {table}")
    return total


# -- (a) the limit ----------------------------------------------------------------------

LIMIT_UPDATE = """
UPDATE {frames} AS f SET item_count = agg.n, average = agg.a,
  calculated = true, calculated_at = now(), attempts = f.attempts + 1
FROM (SELECT date_bin(%(step)s::interval, created_at, %(t0)s::timestamptz) AS bucket,
             count(*) AS n, avg(value) AS a
      FROM {readings} WHERE created_at >= %(t0)s AND created_at < %(end)s
      GROUP BY 1) AS agg
WHERE f.start_time = agg.bucket
"""


def limit(frames: int) -> float:
    """Seconds of the hand-written statement over ``frames`` pending frames."""
    from django.db import transaction

    from bench.benchapp.models import LimitFrame, Reading

    common.create_frames(LimitFrame, frames, T0)
    sql = LIMIT_UPDATE.format(frames=LimitFrame._meta.db_table, readings=Reading._meta.db_table)
    params = {"step": DURATION, "t0": T0, "end": T0 + frames * DURATION}
    started = time.perf_counter()
    with transaction.atomic():
        common.sql(sql, params)
    seconds = time.perf_counter() - started
    assert LimitFrame.objects.filter(calculated=True).count() == frames
    return seconds


# -- (b), (c), (d): a real worker drains ------------------------------------------------


class PeakRss:
    """The largest resident memory seen of each process of a worker, polled."""

    def __init__(self, worker: common.Worker) -> None:
        import psutil

        assert worker.proc is not None
        self.root = psutil.Process(worker.proc.pid)
        self.peak: dict[int, int] = {}

    def poll(self) -> None:
        import psutil

        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            self.peak[process.pid] = max(self.peak.get(process.pid, 0), rss)

    def worker_processes_mb(self) -> list[float]:
        """Peaks of the worker processes (not the supervising parent), in MB."""
        return [rss / 1e6 for pid, rss in sorted(self.peak.items()) if pid != self.root.pid]


def drain(key: str, frame_class: Any, messages: int, timeout: float, rss: PeakRss) -> float:
    """Send ``messages`` calculate messages; seconds until no frame of ``key`` is due."""
    from actors.tasks import calculate

    started = time.perf_counter()
    for _ in range(messages):
        calculate.send(key)
    while frame_class.unfinished_frames().exists():
        rss.poll()
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{key}: frames still due after {timeout} s")
        time.sleep(0.02)
    return time.perf_counter() - started


def check(frame_class: Any, frames: int, per_frame: int) -> str:
    """'ok' when every frame is calculated with the true count and average."""
    from django.db.models import Avg, Count, Q, Sum

    stats = frame_class.objects.aggregate(
        done=Count("pk", filter=Q(calculated=True)),
        failed=Count("pk", filter=Q(failed=True)),
        items=Sum("item_count"),
        wrong=Count("pk", filter=~Q(item_count=per_frame)),
        mean=Avg("average"),
    )
    ok = stats["done"] == frames and not stats["failed"] and stats["items"] == frames * per_frame
    return "ok" if ok and not stats["wrong"] else f"MISMATCH {stats}"


# -- end to end ---------------------------------------------------------------------------


def end_to_end(args: argparse.Namespace, worker: common.Worker, rss: PeakRss) -> dict[str, Any]:
    """Every frame of a fresh stream created by one tick and calculated, timed."""
    from actors.tasks import coordinate
    from bench.benchapp.models import AggregateFrame, Reading

    common.sql(f"TRUNCATE {AggregateFrame._meta.db_table}, {Reading._meta.db_table}")
    started = time.perf_counter()
    rows = write_readings(args.e2e_frames, args.rows_per_frame, closing=True)
    written = time.perf_counter() - started
    rss.peak.clear()
    started = time.perf_counter()
    coordinate.send("aggregates")
    while (
        AggregateFrame.objects.count() < args.e2e_frames
        or AggregateFrame.unfinished_frames().exists()
    ):
        rss.poll()
        if time.perf_counter() - started > args.timeout:
            raise RuntimeError(f"end to end: not done after {args.timeout} s")
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "written": written,
        "seconds": seconds,
        "check": check(AggregateFrame, args.e2e_frames, args.rows_per_frame),
        "rss": rss.worker_processes_mb(),
    }


# -- the report -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.aggregate_batch_size:
        os.environ["STREAM_ANALYSIS_AGGREGATE_BATCH_SIZE"] = str(args.aggregate_batch_size)
    common.setup_django()
    from bench.benchapp.models import AggregateFrame, BatchReadFrame, PerFrameFrame
    from stream_analysis.settings import app_settings

    messages = args.processes * args.threads
    with common.bench_database() as database:
        print(f"$ {common.command_line()}")
        print(
            f"PostgreSQL {common.server_version()} (database {database}), {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.2f}, AGGREGATE_BATCH_SIZE="
            f"{app_settings.AGGREGATE_BATCH_SIZE}, BATCH_READ_BATCH_SIZE="
            f"{app_settings.BATCH_READ_BATCH_SIZE}, BATCH_SIZE={app_settings.BATCH_SIZE}, "
            f"{args.rows_per_frame} readings per 10 s frame"
        )
        write_readings(max(args.frames, args.calc_frames), args.rows_per_frame)
        limit_seconds = limit(args.frames)
        for frame_class, count in (
            (AggregateFrame, args.frames),
            (BatchReadFrame, args.calc_frames),
            (PerFrameFrame, args.calc_frames),
        ):
            common.create_frames(frame_class, count, T0)
        worker = common.Worker(args.processes, args.threads)
        print(f"worker: {worker.shown_command}")
        with worker:
            rss = PeakRss(worker)
            seconds = {
                key: drain(key, frame_class, messages, args.timeout, rss)
                for key, frame_class in (
                    ("aggregates", AggregateFrame),
                    ("batch_read", BatchReadFrame),
                    ("per_frame", PerFrameFrame),
                )
            }
            drain_rss = rss.worker_processes_mb()
            checks = {
                label: check(frame_class, count, args.rows_per_frame)
                for label, frame_class, count in (
                    ("(b)", AggregateFrame, args.frames),
                    ("(c)", BatchReadFrame, args.calc_frames),
                    ("(d)", PerFrameFrame, args.calc_frames),
                )
            }
            e2e = end_to_end(args, worker, rss) if args.e2e else None
        report(args, limit_seconds, seconds, checks, drain_rss, e2e)


def report(
    args: argparse.Namespace,
    limit_seconds: float,
    seconds: dict[str, float],
    checks: dict[str, str],
    drain_rss: list[float],
    e2e: dict[str, Any] | None,
) -> None:
    limit_rate = args.frames / limit_seconds
    per_frame_rate = args.calc_frames / seconds["per_frame"]
    rows: list[list[object]] = [
        ["(a) limit: one hand-written UPDATE … GROUP BY", args.frames, limit_seconds,
         limit_rate, "1.00", ""],
    ]  # fmt: skip
    for key, label, count in (
        ("aggregates", "(b) AGGREGATES, real worker", args.frames),
        ("batch_read", "(c) calculate(), BATCH_READ, real worker", args.calc_frames),
        ("per_frame", "(d) calculate(), per frame, real worker", args.calc_frames),
    ):
        rate = count / seconds[key]
        rows.append([label, count, seconds[key], rate, f"{rate / limit_rate:.2f}",
                     f"{rate / per_frame_rate:.2f}"])  # fmt: skip
    print()
    common.print_table(["measurement", "frames", "seconds", "frames/s", "x (a)", "x (d)"], rows)
    print()
    for label, verdict in checks.items():
        print(f"check {label}: {verdict}")
    print("peak RSS of the worker processes while draining: " + _mb(drain_rss))
    if e2e is not None:
        print(
            f"\nend to end: {args.e2e_frames:,} frames over {e2e['rows']:,} readings "
            f"(written in {e2e['written']:.1f} s, not counted): one tick to every frame "
            f"created and calculated in {e2e['seconds']:.1f} s "
            f"({args.e2e_frames / e2e['seconds']:,.0f} frames/s), check {e2e['check']}; "
            f"peak RSS of the worker processes: {_mb(e2e['rss'])}"
        )


def _mb(values: list[float]) -> str:
    return ", ".join(f"{v:.0f} MB" for v in values) or "(not seen)"


if __name__ == "__main__":
    main()
