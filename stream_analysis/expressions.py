"""ORM expressions the app compiles into its queries."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models


class DateBin(models.Func):
    """PostgreSQL's ``date_bin(stride, source, origin)``: the start of the bucket of ``source``."""

    function = "date_bin"
    output_field = models.DateTimeField()


def start_bucket(width: timedelta, origin: datetime) -> DateBin:
    """The ``width``-wide bucket (aligned on ``origin``) holding each frame's ``start_time``."""
    return DateBin(
        models.Value(width, output_field=models.DurationField()),
        "start_time",
        models.Value(origin, output_field=models.DateTimeField()),
    )
