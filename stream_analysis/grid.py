"""Pure arithmetic of time frames: which frames exist, cutoffs, backoff, lock keys.

Nothing here touches the database, so all of it is unit-tested in milliseconds.
Frames are aligned to multiples of their DURATION since the Unix epoch (UTC),
shifted by an optional OFFSET: 15 s frames start at :00, :15, :30 and :45 of
every minute, whatever the stream's first item; hourly frames with a 30-minute
OFFSET start at :30. That is the tumbling window of stream engines.

The stream's latest time is its watermark: a frame closes once the watermark
has passed the frame's end by the frame's LATENESS (Flink's allowed lateness,
Kafka Streams' grace period).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from .exceptions import StreamError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

K = TypeVar("K")


def require_aware(moment: datetime, what: str) -> datetime:
    """Return ``moment`` in UTC; naive datetimes are rejected, not guessed."""
    if not isinstance(moment, datetime):
        raise StreamError(f"{what} must be a datetime, got {moment!r}.")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise StreamError(
            f"{what} returned a naive datetime ({moment!r}). Return timezone-aware "
            "datetimes (USE_TZ = True, or datetime.now(UTC))."
        )
    return moment.astimezone(UTC)


ZERO = timedelta(0)


def frame_start(moment: datetime, duration: timedelta, offset: timedelta = ZERO) -> datetime:
    """Start of the frame holding ``moment``: the previous ``EPOCH + offset + k·duration``."""
    moment = require_aware(moment, "frame_start()")
    return moment - (moment - EPOCH - offset) % duration


@dataclass(frozen=True)
class FrameRange:
    """Frames ``first``, ``first + duration``, … ``last`` (inclusive), all aligned."""

    first: datetime
    last: datetime
    duration: timedelta

    @property
    def count(self) -> int:
        return (self.last - self.first) // self.duration + 1

    @property
    def end(self) -> datetime:
        """End of the last frame."""
        return self.last + self.duration

    def chunks(self, size: int) -> Iterator[FrameRange]:
        """This range cut into consecutive ranges of at most ``size`` frames each."""
        first = self.first
        while first <= self.last:
            last = min(first + (size - 1) * self.duration, self.last)
            yield FrameRange(first=first, last=last, duration=self.duration)
            first = last + self.duration


def grid_label(duration: timedelta, offset: timedelta = ZERO) -> str:
    """The frame grid as text, e.g. ``'15s+0s'``: what must not change while frames exist."""
    return f"{duration.total_seconds():g}s+{(offset % duration).total_seconds():g}s"


def frames_to_create(
    *,
    duration: timedelta,
    earliest: datetime,
    latest: datetime,
    newest_existing_start: datetime | None,
    offset: timedelta = ZERO,
    lateness: timedelta = ZERO,
) -> FrameRange | None:
    """The frames to create so that every closed frame of the stream exists.

    A frame [s, s + duration) is closed once the stream's latest time has reached
    its end plus ``lateness`` (``s + duration + lateness <= latest``). Creation
    continues after the newest existing frame, or starts at the frame holding the
    stream's earliest item. Returns None when there is nothing to create.
    """
    earliest = require_aware(earliest, "get_earliest_stream_time()")
    latest = require_aware(latest, "get_latest_stream_time()")
    if latest < earliest:
        raise StreamError(
            f"get_latest_stream_time() ({latest}) is before get_earliest_stream_time() "
            f"({earliest}). Check the stream interface's queries."
        )
    first = frame_start(earliest, duration, offset)
    if newest_existing_start is not None:
        first = max(first, newest_existing_start + duration)
    last = frame_start(latest - lateness, duration, offset) - duration
    if last < first:
        return None
    return FrameRange(first=first, last=last, duration=duration)


def backfill_frames(
    *,
    duration: timedelta,
    earliest: datetime,
    latest: datetime,
    offset: timedelta = ZERO,
    lateness: timedelta = ZERO,
) -> FrameRange | None:
    """Every closed frame from the stream's earliest item on (existing ones included)."""
    return frames_to_create(
        duration=duration,
        earliest=earliest,
        latest=latest,
        newest_existing_start=None,
        offset=offset,
        lateness=lateness,
    )


def next_close(
    latest: datetime, duration: timedelta, offset: timedelta = ZERO, lateness: timedelta = ZERO
) -> datetime:
    """The stream time at which the next frame closes: the first still-open frame's
    end plus ``lateness``."""
    return frame_start(latest - lateness, duration, offset) + duration + lateness


def idle_watermark(
    latest: datetime,
    latest_seen_at: datetime | None,
    now: datetime,
    idle_timeout: timedelta | None,
) -> datetime:
    """The stream time to close frames up to: ``latest``, or ``now`` once the stream is idle.

    The stream is idle when its latest time has not moved for ``idle_timeout`` of
    wall-clock time (``latest_seen_at`` is when it last moved). Only for live
    streams whose item times follow the wall clock: an idle replay of old data
    would close every frame up to now.
    """
    if idle_timeout is None or latest_seen_at is None or now - latest_seen_at < idle_timeout:
        return latest
    return max(latest, now)


def late_frame_starts(
    arrivals: Iterable[tuple[datetime, datetime]],
    duration: timedelta,
    offset: timedelta = ZERO,
) -> dict[datetime, datetime]:
    """Per frame start, the last arrival time of its items among ``arrivals``.

    ``arrivals`` are (item time, arrival time) pairs, as the stream reports them.
    """
    latest_arrival: dict[datetime, datetime] = {}
    for moment, arrived in arrivals:
        start = frame_start(moment, duration, offset)
        arrived = require_aware(arrived, "get_late_arrivals()")
        if start not in latest_arrival or arrived > latest_arrival[start]:
            latest_arrival[start] = arrived
    return latest_arrival


def memory_cutoff(
    oldest_uncalculated_start: datetime | None, newest_calculated_start: datetime | None
) -> datetime | None:
    """The earliest stream time a frame model still needs (None: keep everything).

    Data before the oldest frame that still has to be calculated is no longer
    needed; with every frame calculated, data before the newest frame is not.
    """
    if oldest_uncalculated_start is not None:
        return oldest_uncalculated_start
    return newest_calculated_start


def combine_cutoffs(cutoffs: Iterable[tuple[K, datetime | None]]) -> dict[K, datetime | None]:
    """Per key (a stream class), the minimum cutoff of all its users; None wins."""
    combined: dict[K, datetime | None] = {}
    for key, cutoff in cutoffs:
        if key not in combined:
            combined[key] = cutoff
            continue
        current = combined[key]
        if current is None or cutoff is None:
            combined[key] = None
        else:
            combined[key] = min(current, cutoff)
    return combined


def retry_delay(attempts: int, base: float, cap: float) -> timedelta:
    """Backoff before the next try after ``attempts`` failed tries: base, 2·base, 4·base…"""
    exponent = max(attempts - 1, 0)
    return timedelta(seconds=min(cap, base * 2 ** min(exponent, 32)))


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key derived from text (never SQL built from it)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def contiguous_runs(
    starts: Iterable[datetime], duration: timedelta
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` of each run of back-to-back frames among ``starts`` (any order).

    Frames that follow each other merge into one span, so a batch of frames
    claimed newest first reads its stream in as few ranges as possible.
    """
    runs: list[tuple[datetime, datetime]] = []
    for start in sorted(set(starts)):
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], start + duration)
        else:
            runs.append((start, start + duration))
    return runs
