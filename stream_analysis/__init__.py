"""Periodic analysis of streaming data in fixed time frames.

The names below are importable from ``stream_analysis``. The models are loaded
lazily, on first access, because Django's app registry must be ready first.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError, StreamAnalysisError, StreamError, UnknownTaskError
from .streams import AbstractStream

if TYPE_CHECKING:
    from .models import AnalysisTask, BaseTimeFrame, TimedIntervalMixin
    from .retention import cleanup, get_stream_cutoff_times

__all__ = [
    "AbstractStream",
    "AnalysisTask",
    "BaseTimeFrame",
    "ConfigurationError",
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
        problem = _apps_problem(name, exc, _importer())
        if problem is not None:
            raise ConfigurationError(problem) from exc
        raise
    return getattr(module, name)


def _importer() -> str:
    """The module that asked for a lazy name (skipping the import machinery's frames)."""
    frame = sys._getframe(2)  # 0: here, 1: __getattr__
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("importlib"):
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", "?"))


def _apps_problem(name: str, exc: Exception, importer: str) -> str | None:
    """Why ``stream_analysis.<name>`` could not load its models, and the fix; None if
    ``exc`` is not about Django's app registry."""
    from django.apps import apps
    from django.core.exceptions import AppRegistryNotReady

    if isinstance(exc, AppRegistryNotReady) and apps.loading:
        return (
            f"stream_analysis.{name} was used by {importer!r} while Django was still "
            "importing the INSTALLED_APPS packages (an app's __init__.py, or a module it "
            "imports, defines models): models can only be defined once every app is "
            "imported. Define your frame models in a models module and import it from "
            "your app's models.py or from AppConfig.ready(), not from a package __init__.py."
        )
    if isinstance(exc, AppRegistryNotReady):
        return (
            f"stream_analysis.{name} was used by {importer!r} before Django's apps were "
            "loaded. Call django.setup() first (manage.py and WSGI do it for you), with "
            "'stream_analysis' in INSTALLED_APPS."
        )
    if isinstance(exc, RuntimeError) and apps.ready and not apps.is_installed(__name__):
        return (
            f"stream_analysis.{name} needs 'stream_analysis' in INSTALLED_APPS (used by "
            f"{importer!r}). Add it to INSTALLED_APPS in your settings."
        )
    return None
