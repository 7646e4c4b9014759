"""The one constructor of the domain's system-check errors (``stream_analysis.E0xx``)."""

from __future__ import annotations

from typing import Any

from django.core import checks


def error(n: int, msg: str, hint: str, obj: Any = None) -> checks.Error:
    """Error ``stream_analysis.E<n>``: what is wrong, and in ``hint`` the fix."""
    return checks.Error(msg, hint=hint, obj=obj, id=f"stream_analysis.E{n:03d}")
