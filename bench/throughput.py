"""End-to-end drain throughput of real workers, against the raw limit of this machine.

Run from the repository root::

    python -m bench.throughput [--frames 20000] [--processes 2] [--threads 4]

Two figures, measured in the same run on the same PostgreSQL:

* **raw limit**: two processes claim and delete rows of a scratch table with
  plain psycopg 3, one row per commit (``DELETE … WHERE id = (SELECT … FOR
  UPDATE SKIP LOCKED LIMIT 1)``). No framework can claim frames one per
  commit faster than this.
* **drain**: ``--frames`` pending frames are created, a real worker
  (``python -m dramatiq … --processes P --threads T``) is started, and
  ``calculate`` messages are sent; frames/s is measured from the first
  frame's ``calculated_at`` to the last one's. ``calculate()`` is trivial
  (``len(stream_data)``), so this is the framework's own cost: once with a
  stream that makes no query (``synthetic``) and once with a stream read from
  a table with the ORM (``table``, one query per frame, as in real use).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from . import common

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RAW_CLAIM = (
    "DELETE FROM bench_scratch WHERE id = "
    "(SELECT id FROM bench_scratch ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    parser.add_argument("--frames", type=int, default=20_000, help="frames to drain per stream")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument(
        "--messages", type=int, help="calculate messages sent (default: processes x threads)"
    )
    parser.add_argument(
        "--stream", choices=["synthetic", "table", "both"], default="both",
        help="which frame model to drain",
    )  # fmt: skip
    parser.add_argument(
        "--readings-per-frame", type=int, default=2, help="rows per frame of the table stream"
    )
    parser.add_argument("--batch-size", type=int, help="sets STREAM_ANALYSIS_BATCH_SIZE")
    parser.add_argument("--raw-rows", type=int, default=20_000, help="rows of the raw measure")
    parser.add_argument("--raw-processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per drain")
    return parser.parse_args(argv)


# -- the raw limit -------------------------------------------------------------


def raw_limit(rows: int, processes: int, claim: str = RAW_CLAIM) -> tuple[int, float]:
    """(rows deleted, seconds) by ``processes`` claimers, one row per commit."""
    common.sql("DROP TABLE IF EXISTS bench_scratch")
    common.sql("CREATE TABLE bench_scratch (id bigint PRIMARY KEY, payload int NOT NULL)")
    common.sql("INSERT INTO bench_scratch SELECT i, i FROM generate_series(1, %s) AS i", [rows])
    common.sql("ANALYZE bench_scratch")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    kwargs = common.libpq_kwargs()
    claimers = [
        context.Process(target=_raw_claimer, args=(kwargs, claim, barrier, results))
        for _ in range(processes)
    ]
    for claimer in claimers:
        claimer.start()
    reports = [results.get(timeout=600) for _ in claimers]
    for claimer in claimers:
        claimer.join()
    common.sql("DROP TABLE bench_scratch")
    started = min(r[1] for r in reports)
    finished = max(r[2] for r in reports)
    return sum(r[0] for r in reports), finished - started


def _raw_claimer(kwargs: dict[str, Any], claim: str, barrier: Any, results: Any) -> None:
    import psycopg

    deleted = 0
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        barrier.wait()
        started = time.time()
        while conn.execute(claim).rowcount:
            deleted += 1
        results.put((deleted, started, time.time()))


# -- the drain -----------------------------------------------------------------


def create_readings(frame_class: Any, frames_count: int, per_frame: int) -> int:
    """``per_frame`` readings spread over each frame's 15 s; returns rows inserted."""
    from bench.benchapp.models import Reading

    total = frames_count * per_frame
    step = frame_class.DURATION.total_seconds() / per_frame
    common.sql(
        f"INSERT INTO {Reading._meta.db_table} (created_at, value) "
        "SELECT %s::timestamptz + make_interval(secs => i * %s), random() "
        "FROM generate_series(0, %s - 1) AS i",
        [T0, step, total],
    )
    common.sql(f"ANALYZE {Reading._meta.db_table}")
    return total


def drain(key: str, frame_class: Any, count: int, messages: int, timeout: float) -> dict:
    """Send ``messages`` calculate messages and wait until no frame is due."""
    from actors.tasks import calculate

    sent = time.monotonic()
    for _ in range(messages):
        calculate.send(key)
    while due := frame_class.unfinished_frames().count():
        _progress(key, count - due, count)
        if time.monotonic() - sent > timeout:
            raise RuntimeError(f"{key}: {due} frames still due after {timeout} s")
        time.sleep(0.2)
    wall = time.monotonic() - sent
    _progress(key, count, count, end="\n")
    table = frame_class._meta.db_table
    done, failed, first, last, analysis, items = common.sql(
        f"SELECT count(*) FILTER (WHERE calculated), count(*) FILTER (WHERE failed), "
        f"min(calculated_at), max(calculated_at), avg(analysis_time), "
        f"coalesce(sum(item_count), 0) FROM {table}"
    )
    return {
        "done": done, "failed": failed, "span": (last - first).total_seconds(),
        "wall": wall, "analysis": analysis or 0.0, "items": items,
    }  # fmt: skip


def _progress(key: str, done: int, total: int, end: str = "") -> None:
    if sys.stderr.isatty():
        print(f"\r  draining {key}: {done:,} / {total:,}", end=end, file=sys.stderr, flush=True)


# -- the report ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.batch_size:
        os.environ["STREAM_ANALYSIS_BATCH_SIZE"] = str(args.batch_size)
    common.setup_django()
    from bench.benchapp.models import SyntheticFrame, TableFrame
    from stream_analysis.settings import app_settings

    messages = args.messages or args.processes * args.threads
    keys = ["synthetic", "table"] if args.stream == "both" else [args.stream]
    models = {"synthetic": SyntheticFrame, "table": TableFrame}
    with common.bench_database() as database:
        print(f"$ {common.command_line()}")
        print(
            f"PostgreSQL {common.server_version()} (database {database}), "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
            f"BATCH_SIZE={app_settings.BATCH_SIZE}, "
            f"TIME_BUDGET={app_settings.TIME_BUDGET} s, {messages} calculate messages"
        )
        raw_rows, raw_seconds = raw_limit(args.raw_rows, args.raw_processes)
        raw_rate = raw_rows / raw_seconds
        rows: list[list[object]] = [
            [f"raw: claim+delete 1 row/commit, {args.raw_processes} processes (psycopg)",
             raw_rows, raw_seconds, raw_rate, "", "1.00"],
        ]  # fmt: skip
        for key in keys:
            common.create_frames(models[key], args.frames, T0)
            if key == "table":
                create_readings(models[key], args.frames, args.readings_per_frame)
        worker = common.Worker(args.processes, args.threads)
        print(f"worker: {worker.shown_command}")
        results = {}
        with worker:
            for key in keys:
                results[key] = drain(key, models[key], args.frames, messages, args.timeout)
                rows.append(_drain_row(key, results[key], args, raw_rate))
        print()
        common.print_table(
            ["measurement", "items", "seconds", "per second", "wall/s", "x raw"], rows
        )
        _print_checks(results, args)


def _drain_row(key: str, result: dict, args: argparse.Namespace, raw_rate: float) -> list[object]:
    rate = (result["done"] - 1) / result["span"] if result["span"] else float("nan")
    label = {
        "synthetic": "drain, stream without queries",
        "table": f"drain, table stream ({args.readings_per_frame} rows/frame)",
    }[key]
    return [
        f"{label}, {args.processes} proc x {args.threads} threads",
        result["done"],
        result["span"],
        rate,
        result["done"] / result["wall"],
        f"{rate / raw_rate:.2f}",
    ]


def _print_checks(results: dict[str, dict], args: argparse.Namespace) -> None:
    print()
    print("per second: from the first frame's calculated_at to the last one's;")
    print("wall/s: from the first send() to the poll that found nothing due.")
    for key, result in results.items():
        expected = args.frames * (args.readings_per_frame if key == "table" else 0)
        ok = result["done"] == args.frames and not result["failed"] and result["items"] == expected
        print(
            f"check {key}: {result['done']:,} calculated, {result['failed']} failed, "
            f"items counted {result['items']:,} (expected {expected:,}) -> "
            f"{'ok' if ok else 'MISMATCH'}; mean analysis_time "
            f"{result['analysis'] * 1e3:.3f} ms"
        )


if __name__ == "__main__":
    main()
