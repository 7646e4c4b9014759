"""System checks of rollups: a rollup's frames must tile its source's frames exactly.

A rollup frame reads the source frames that start inside it; if its DURATION
were not a whole multiple of the source's, or its grid (OFFSET) not on the
source's, a source frame would straddle two rollup frames and be counted in
one of them only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core import checks
from django.utils.module_loading import import_string

from .check_errors import error
from .rollups import is_rollup
from .settings import app_settings


@checks.register()
def check_rollups(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    configured = {}
    for task in app_settings.tasks().values():
        try:
            configured[task.frame_class_path] = import_string(task.frame_class_path)
        except ImportError:
            continue  # reported by check_tasks (E004)
    calculated = set(configured.values())
    for frame_class in configured.values():
        if is_rollup(frame_class):
            found.extend(check_rollup(frame_class, calculated))
    return found


def check_rollup(frame_class: Any, calculated: set[Any]) -> list[checks.CheckMessage]:
    from .models import BaseTimeFrame

    name = frame_class.__name__
    source = frame_class.STREAM_CLASS.SOURCE
    if not (isinstance(source, type) and issubclass(source, BaseTimeFrame)):
        return [
            error(
                40,
                f"{name}.STREAM_CLASS is a FrameStream of {source!r}, not of a frame model.",
                "Write STREAM_CLASS = FrameStream.of(SourceFrame) with a BaseTimeFrame model.",
                frame_class,
            )
        ]
    if source is frame_class:
        return [
            error(
                40,
                f"{name} is a rollup of itself.",
                "Point FrameStream.of() at the finer frame model it sums up.",
                frame_class,
            )
        ]
    return (
        check_tiling(frame_class, source)
        + check_no_idle_close(frame_class)
        + check_source_calculated(frame_class, source, calculated)
        + check_source_indexes(frame_class, source)
    )


def check_tiling(frame_class: Any, source: Any) -> list[checks.CheckMessage]:
    """DURATION a whole multiple of the source's, and OFFSET on the source's grid."""
    name, duration, step = frame_class.__name__, frame_class.DURATION, source.DURATION
    if not all(isinstance(v, timedelta) and v > timedelta(0) for v in (duration, step)):
        return []  # reported by check_duration (E006)
    if duration % step:
        return [
            error(
                41,
                f"{name}.DURATION ({duration}) is not a whole multiple of its source "
                f"{source.__name__}'s DURATION ({step}): a source frame would straddle "
                "two rollup frames.",
                f"Set {name}.DURATION to a multiple of {step}, "
                f"e.g. {step * max(1, duration // step)}.",
                frame_class,
            )
        ]
    if (frame_class.OFFSET - source.OFFSET) % step:
        return [
            error(
                42,
                f"{name}.OFFSET ({frame_class.OFFSET}) is not on the grid of its source "
                f"{source.__name__} (OFFSET {source.OFFSET}, DURATION {step}): its frames "
                "would start in the middle of a source frame.",
                f"Set {name}.OFFSET to {source.OFFSET % step} plus a multiple of {step}.",
                frame_class,
            )
        ]
    return []


def check_no_idle_close(frame_class: Any) -> list[checks.CheckMessage]:
    if frame_class.IDLE_TIMEOUT is None:
        return []
    return [
        error(
            43,
            f"{frame_class.__name__}.IDLE_TIMEOUT is set, but a rollup frame must wait for "
            "every source frame it covers, not for the wall clock.",
            "Remove IDLE_TIMEOUT from the rollup (set it on the source frame model).",
            frame_class,
        )
    ]


def check_source_calculated(
    frame_class: Any, source: Any, calculated: set[Any]
) -> list[checks.CheckMessage]:
    if source in calculated:
        return []
    return [
        checks.Warning(
            f"{frame_class.__name__} rolls up {source.__name__}, which no task in "
            "ANALYSIS_TIME_FRAME_TASKS calculates: it will wait for its frames forever.",
            hint=f"Add a task whose frame_class_path is {source.__module__}.{source.__name__}.",
            obj=frame_class,
            id="stream_analysis.W040",
        )
    ]


#: The partial indexes of BaseTimeFrame.Meta that a rollup's queries on its source read.
SOURCE_INDEXES = ("_open", "_redo")


def check_source_indexes(frame_class: Any, source: Any) -> list[checks.CheckMessage]:
    names = [index.name or "" for index in source._meta.indexes]
    missing = [s for s in SOURCE_INDEXES if not any(n.endswith(s) for n in names)]
    if not missing:
        return []
    return [
        checks.Warning(
            f"{source.__name__} lost BaseTimeFrame's indexes {', '.join(missing)} (its Meta "
            f"does not inherit BaseTimeFrame.Meta): each tick of its rollup "
            f"{frame_class.__name__} scans its whole table.",
            hint=f"Write 'class Meta(BaseTimeFrame.Meta):' in {source.__name__}.",
            obj=source,
            id="stream_analysis.W041",
        )
    ]
