"""Errors raised by stream_analysis. Each message says how to fix the problem."""


class StreamAnalysisError(Exception):
    """Base class of every error this app raises on purpose."""


class ConfigurationError(StreamAnalysisError):
    """The settings do not describe a usable analysis task.

    ``manage.py check`` reports the same problems with an id and a hint; run it.
    """


class UnknownTaskError(StreamAnalysisError, KeyError):
    """No task with that key is configured in ``ANALYSIS_TIME_FRAME_TASKS``."""

    def __init__(self, key: str, valid: list[str]) -> None:
        self.key = key
        self.valid = valid
        known = ", ".join(valid) if valid else "none are configured"
        super().__init__(
            f"Unknown analysis task {key!r}. Valid keys: {known}. "
            "Add it to ANALYSIS_TIME_FRAME_TASKS in your settings."
        )

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class StreamError(StreamAnalysisError):
    """A stream interface returned something this app cannot use."""


class FrameGridChanged(ConfigurationError):
    """A frame model's DURATION or OFFSET changed while frames of the old grid exist."""


class MissingDataError(StreamAnalysisError):
    """A recompute would run ``calculate()`` on frames whose stream data may be gone."""

    def __init__(self, frame_class: type, count: int, complete_from: object) -> None:
        self.frame_class = frame_class
        self.count = count
        self.complete_from = complete_from
        super().__init__(
            f"{count} of these {frame_class.__name__} frames start before {complete_from} "
            "(the frame of the stream's earliest stored item): their stream data may have "
            "been cleaned up, and recomputing them would replace good results with partial "
            "ones. Leave them out of the range, or accept that and mark them missing_data "
            "(--allow-missing-data; in the admin, the confirmation's checkbox)."
        )
