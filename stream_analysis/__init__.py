"""Periodic analysis of streaming data in fixed time frames.

The names below are importable from ``stream_analysis``. The models are loaded
lazily, on first access, because Django's app registry must be ready first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError, StreamAnalysisError, StreamError, UnknownTaskError
from .streams import AbstractStream

if TYPE_CHECKING:
    from .model_stream import ModelStream
    from .models import AnalysisTask, BaseTimeFrame, TimedIntervalMixin
    from .retention import cleanup, get_stream_cutoff_times

__all__ = [
    "AbstractStream",
    "AnalysisTask",
    "BaseTimeFrame",
    "ConfigurationError",
    "ModelStream",
    "StreamAnalysisError",
    "StreamError",
    "TimedIntervalMixin",
    "UnknownTaskError",
    "cleanup",
    "get_stream_cutoff_times",
]

_LAZY = {
    "AnalysisTask": "models",
    "BaseTimeFrame": "models",
    "ModelStream": "model_stream",
    "TimedIntervalMixin": "models",
    "cleanup": "retention",
    "get_stream_cutoff_times": "retention",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'stream_analysis' has no attribute {name!r}")
    from importlib import import_module

    try:
        module = import_module(f".{_LAZY[name]}", __name__)
    except Exception as exc:
        from django.core.exceptions import AppRegistryNotReady

        if isinstance(exc, AppRegistryNotReady):
            raise ConfigurationError(
                f"stream_analysis.{name} needs Django's apps to be loaded. Did you forget to "
                "add 'stream_analysis' to INSTALLED_APPS, or import it before django.setup()?"
            ) from exc
        raise
    return getattr(module, name)
