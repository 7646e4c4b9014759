"""Deprecated: the Prometheus metrics moved to :mod:`stream_analysis.contrib.prometheus`.

This module re-exports them for one release and warns on import.
"""

import warnings

from .contrib.prometheus import StreamAnalysisCollector, metrics_view

__all__ = ["StreamAnalysisCollector", "metrics_view"]

warnings.warn(
    "stream_analysis.metrics moved to stream_analysis.contrib.prometheus: import "
    "metrics_view and StreamAnalysisCollector from there.",
    DeprecationWarning,
    stacklevel=2,
)
