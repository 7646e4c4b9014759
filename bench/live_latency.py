"""Live frames during a long backlog: how soon after closing is a live frame calculated?

Run from the repository root::

    python -m bench.live_latency [--backlog 100000] [--seconds 90]

A backlog of ``--backlog`` pending frames (``synthetic`` task, 2 ms of work each)
drains on one real worker (2 processes x 4 threads) while a live 15 s task
(``live``) reads a stream written in real time, 10 readings a second. The live
task is ticked once; it re-arms itself at each frame close, as in production.
For every live frame: the seconds from its close (its end, by the wall clock) to
its calculation, and how many backlog frames were still pending then. The
figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from . import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.live_latency", description=__doc__)
    parser.add_argument("--backlog", type=int, default=100_000, help="pending backlog frames")
    parser.add_argument("--seconds", type=float, default=90.0, help="how long the stream runs")
    return parser.parse_args(argv)


def make_backlog(frames: int) -> None:
    from datetime import UTC, datetime

    from bench.benchapp.models import SyntheticFrame

    common.create_frames(SyntheticFrame, frames, datetime(2025, 1, 1, tzinfo=UTC))


def run_live_stream(seconds: float) -> list[tuple[float, int]]:
    """Write readings stamped now for ``seconds``; sample the backlog as it goes."""
    from django.utils import timezone

    from actors.tasks import coordinate
    from bench.benchapp.models import Reading, SyntheticFrame

    samples = []
    deadline = time.monotonic() + seconds
    Reading.objects.create(created_at=timezone.now(), value=0.0)
    coordinate.send("live")
    while time.monotonic() < deadline:
        Reading.objects.create(created_at=timezone.now(), value=1.0)
        pending = SyntheticFrame.objects.filter(calculated=False).count()
        samples.append((time.time(), pending))
        time.sleep(0.1)  # the stream's rate: 10 readings a second
    return samples


def pending_at(samples: list[tuple[float, int]], moment: float) -> int:
    before = [pending for at, pending in samples if at <= moment]
    return before[-1] if before else samples[0][1]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.setup_django()
    from actors.tasks import calculate
    from bench.benchapp.models import LiveFrame
    from stream_analysis.settings import app_settings

    with common.bench_database():
        make_backlog(args.backlog)
        env = {"BENCH_CALCULATE_SECONDS": "0.002"}
        with common.Worker(processes=2, threads=4, env=env) as worker:
            for _ in range(app_settings.CONCURRENCY):
                calculate.send("synthetic")  # what the coordinator's top-up sends
            samples = run_live_stream(args.seconds)
            time.sleep(5)  # let the last closed live frame be calculated
        rows: list[list[Any]] = []
        for frame in LiveFrame.objects.filter(calculated=True).order_by("start_time"):
            closed = frame.end_time.timestamp()
            latency = frame.calculated_at.timestamp() - closed
            rows.append([f"{frame.end_time:%H:%M:%S}", frame.item_count, latency,
                         pending_at(samples, closed)])  # fmt: skip
        print(f"$ {common.command_line()}")
        print(f"worker: {worker.shown_command} (2 ms of work per backlog frame)")
        print(f"backlog: {args.backlog:,} frames; live stream for {args.seconds:.0f} s\n")
        common.print_table(["live frame end", "items", "s to calculated", "backlog pending"], rows)
        if rows:
            worst = max(row[2] for row in rows)
            print(f"\nworst: {worst:.2f} s after closing; live frames: {len(rows)}")


if __name__ == "__main__":
    main()
