-- try_task_lock --
-- Only one coordinator per task at a time; released at COMMIT/ROLLBACK (needs a transaction).
SELECT pg_try_advisory_xact_lock(%(key)s);

-- insert_frames --
-- Creates every aligned frame in [first, last] once: start_time is UNIQUE, so a
-- frame another coordinator already made is skipped, never duplicated.
-- The extra columns are the Python-side defaults of fields that have no db_default.
INSERT INTO {table} ({start}{default_columns})
SELECT s{default_values}
FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz, %(step)s::interval) AS s
ON CONFLICT ({start}) DO NOTHING;

-- claim_frames --
-- Locks up to %(limit)s due frames, newest first, skipping frames another worker holds.
-- The lock lasts until the claiming transaction ends: a crashed worker releases it.
SELECT * FROM {table}
WHERE NOT calculated AND NOT failed
  AND (next_attempt_at IS NULL OR next_attempt_at <= now())
ORDER BY {start} DESC
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- store_frames --
-- Stores a batch's calculated frames (results and done mark: every column save() writes) in
-- one statement, in the batch's transaction: each commits with its calculate() writes.
-- Values are cast to their column's type without modifier (varchar, not varchar(100)), so
-- an over-long value fails on assignment, as in save(), instead of being cut short.
UPDATE {table} AS target SET {assignments}
FROM (VALUES {rows}) AS source ({columns})
WHERE target.{pk} = source.{pk};

-- column_types --
-- Each column of a table (a quoted name) and its type without modifier.
SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
WHERE attrelid = %(table)s::regclass AND attnum > 0 AND NOT attisdropped;

-- count_due --
-- How many frames are due now, counting no further than %(limit)s (cheap on a backlog).
SELECT count(*) FROM (
  SELECT 1 FROM {table}
  WHERE NOT calculated AND NOT failed
    AND (next_attempt_at IS NULL OR next_attempt_at <= now())
  LIMIT %(limit)s
) AS due;

-- next_retry_at --
-- The earliest time a frame waiting for a retry becomes due again.
SELECT min(next_attempt_at) FROM {table}
WHERE NOT calculated AND NOT failed AND next_attempt_at > now();

-- mark_late_frames --
-- Puts calculated frames back to pending (stale) when an item arrived after their data was
-- read: each frame at most once per tick, found by its UNIQUE start, so the cost follows the
-- late items, not the number of frames. Frames before %(keep_from)s may have lost data: kept.
-- One row per late item in; one row per frame marked out, with its count of late items.
UPDATE {table} AS f
SET calculated = false, attempts = 0, next_attempt_at = NULL, last_error = '',
    recomputes = f.recomputes + 1, recomputed_at = now(), recompute_reason = 'late',
    late_items = f.late_items + late.items
FROM (
  SELECT item.start_time, count(*) AS items
  FROM unnest(%(starts)s::timestamptz[], %(arrived)s::timestamptz[]) AS item(start_time, arrived)
  JOIN {table} AS g ON g.{start} = item.start_time
  WHERE g.calculated AND g.calculated_at < item.arrived + %(settle)s::interval
  GROUP BY item.start_time
) AS late
WHERE f.{start} = late.start_time
  AND f.calculated
  AND (%(keep_from)s::timestamptz IS NULL OR f.{start} >= %(keep_from)s::timestamptz)
RETURNING late.items;

-- try_transaction_lock --
-- Only one holder at a time runs the guarded work; released at COMMIT/ROLLBACK (or when a
-- killed worker's connection closes), so it holds through PgBouncer's transaction pooling.
SELECT pg_try_advisory_xact_lock(%(key)s);

-- memory_cutoff_bounds --
-- The start of the oldest frame not calculated and of the newest calculated one, in ONE
-- statement (one snapshot): read apart, a worker (newest first) could calculate a newer frame
-- in between while an older one is still open, and the cutoff would pass that open frame.
SELECT (SELECT min({start}) FROM {table} WHERE NOT calculated),
       (SELECT max({start}) FROM {table} WHERE calculated);

-- claim_frame_runs --
-- Claims exactly as claim_frames (the same statement, inside) and returns what was claimed as
-- runs of back-to-back frames, oldest first: (first start, end of the last frame, frames).
WITH claimed AS (
{claim}
)
SELECT min({start}), max({start}) + %(duration)s::interval, count(*)
FROM (SELECT {start}, {start} - row_number() OVER (ORDER BY {start}) * %(duration)s::interval
        AS island
      FROM claimed) AS numbered
GROUP BY island
ORDER BY 1;

-- aggregate_frames --
-- Fills the frames this transaction claimed (every frame in the claimed runs: they hold no
-- other, frames being unique by start) from ONE grouped read of their stream rows and marks them calculated,
-- all or nothing; a frame without rows gets the empty-group values. analysis_time is the
-- frame's share of the statement so far; calculated_at is when the statement (its snapshot)
-- started: when its data was read.
UPDATE {table} AS target SET {assignments},
  calculated = true, calculated_at = statement_timestamp(),
  attempts = target.attempts + 1, next_attempt_at = NULL, last_error = '',
  analysis_time = extract(epoch FROM clock_timestamp() - statement_timestamp()) / %s,
  cleanup_time = 0
FROM (SELECT frame.{pk} AS stream_analysis_frame, grouped.*
      FROM {table} AS frame
      LEFT JOIN ({grouped}) AS grouped ON grouped.{bucket} = frame.{start}
      WHERE {runs}) AS source
WHERE target.{pk} = source.stream_analysis_frame;
