"""Benchmarks of stream_analysis: scripts that print figures (they assert nothing).

Run from the repository root::

    python -m bench.throughput   # frames/s drained by real workers vs the raw limit
    python -m bench.backfill     # creating a million due frames in one tick

Each script creates its own database (``bench_stream_analysis``, or
``$BENCH_DATABASE``) on the embedded PostgreSQL, or on the server of
``$DATABASE_URL``, migrates it, and drops it at the end.
"""
