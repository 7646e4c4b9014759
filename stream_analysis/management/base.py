"""Shared helpers of the management commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from ..exceptions import StreamAnalysisError
from ..models import AnalysisTask


def task_or_error(key: str) -> AnalysisTask:
    """The task with ``key``, or a CommandError (one line, no traceback) naming valid keys."""
    try:
        return AnalysisTask.require(key)
    except StreamAnalysisError as exc:
        raise CommandError(str(exc)) from exc


def tasks_or_error(key: str | None) -> list[AnalysisTask]:
    """``[task]`` for a key, or every configured task when ``key`` is None."""
    if key is not None:
        return [task_or_error(key)]
    tasks = AnalysisTask.get()
    if not tasks:
        raise CommandError("No analysis task is configured: add ANALYSIS_TIME_FRAME_TASKS.")
    return tasks
