"""Exporting a million frames as CSV and JSON: the memory stays bounded.

Run from the repository root::

    python -m bench.results_export [--frames 1000000]

``TableFrame`` gets ``--frames`` calculated 15 s frames (inserted in SQL). Then
each export is requested from the plain view (``stream_analysis.views``, as a
staff user with the view permission would) and its streamed body is read to
the end, chunk by chunk, as a WSGI server sends it. Printed per export: rows,
bytes, seconds, and the process's peak RSS growth (``ru_maxrss``) during it.
The issue's target: under 50 MB of growth for 1,000,000 frames.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime

from . import common

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.results_export", description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000)
    return parser.parse_args(argv)


def fill(frames: int) -> None:
    from bench.benchapp.models import TableFrame

    table = TableFrame._meta.db_table
    common.sql(f"TRUNCATE {table}")
    common.sql(
        f"INSERT INTO {table} (start_time, calculated, calculated_at, analysis_time, item_count)"
        " SELECT s, true, now(), 0.001, (extract(epoch FROM s)::bigint / 15) %% 97"
        " FROM generate_series(%s::timestamptz, %s::timestamptz, interval '15 seconds') AS s",
        [T0, T0 + (frames - 1) * TableFrame.DURATION],
    )
    common.sql(f"ANALYZE {table}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def export(kind: str, frames: int) -> list[object]:
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    from bench.benchapp.models import TableFrame
    from stream_analysis import views

    user = User.objects.get_or_create(username="bench", is_staff=True, is_superuser=True)[0]
    end = T0 + frames * TableFrame.DURATION
    request = RequestFactory().get("/", {"start": T0.isoformat(), "end": end.isoformat()})
    request.user = user
    before = peak_rss_mb()
    started = time.perf_counter()
    response = views.results_view(request, model="benchapp.tableframe", kind=kind)
    size = rows = 0
    for chunk in response.streaming_content:  # type: ignore[attr-defined]
        size += len(chunk)
        # A CSV line per frame; a JSON frame is a list opening with its start time: ["20…
        rows += chunk.count(b"\n") if kind == "csv" else chunk.count(b'["')
    seconds = time.perf_counter() - started
    rows -= 1  # the CSV header line; the JSON list of fields
    return [kind, rows, f"{size / 1e6:.1f} MB", seconds, peak_rss_mb() - before]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with common.bench_session():
        fill(args.frames)
        print(f"peak RSS before the exports: {peak_rss_mb():.1f} MB")
        rows = [export("csv", args.frames), export("json", args.frames)]
        print()
        common.print_table(["export", "frames", "body", "seconds", "peak RSS growth MB"], rows)


if __name__ == "__main__":
    main()
