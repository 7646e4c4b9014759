"""System checks of the batch path: ModelStream attributes, AGGREGATES, BATCH_READ, sizes."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .check_errors import error
from .model_stream import ModelStream
from .models import framework_fields
from .rollups import is_rollup
from .settings import DEFAULTS, app_settings


def check_batch_path(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    """Every batch-path check of one configured frame class."""
    stream_class = getattr(frame_class, "STREAM_CLASS", None)
    found: list[checks.CheckMessage] = []
    if (
        isinstance(stream_class, type)
        and issubclass(stream_class, ModelStream)
        and not is_rollup(frame_class)  # its stream is checked by rollup_checks (E040)
    ):
        found += check_model_stream(where, stream_class)
    return found + check_aggregates(where, frame_class) + check_batch_read(where, frame_class)


# -- ModelStream ---------------------------------------------------------------


def check_model_stream(where: str, stream_class: type[ModelStream]) -> list[checks.CheckMessage]:
    """``model`` is a model; ``time_field`` (and ``arrival_field``) name its DateTimeFields."""
    name = stream_class.__name__
    model = getattr(stream_class, "model", None)
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        return [
            error(
                30,
                f"{where}: {name}.model is {model!r}, not a Django model.",
                f"Set model = YourModel on {name} (the model whose rows are the stream).",
                obj=stream_class,
            )
        ]
    found = check_time_field(where, stream_class, "time_field", required=True)
    return found + check_time_field(where, stream_class, "arrival_field", required=False)


def check_time_field(
    where: str, stream_class: type[ModelStream], attr: str, *, required: bool
) -> list[checks.CheckMessage]:
    name, model = stream_class.__name__, stream_class.model
    assert model is not None
    value = getattr(stream_class, attr, None)
    if not value and not required:
        return []
    fields = ", ".join(
        f.name for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField)
    )
    hint = f"Set {attr} to one of {model.__name__}'s DateTimeFields: {fields or '(none)'}."
    if not isinstance(value, str) or not value:
        return [error(30, f"{where}: {name}.{attr} is {value!r}, not a field name.", hint)]
    try:
        field = model._meta.get_field(value)
    except FieldDoesNotExist:
        return [
            error(
                30, f"{where}: {name}.{attr} {value!r} is not a field of {model.__name__}.", hint
            )
        ]
    if not isinstance(field, models.DateTimeField):
        return [
            error(
                30,
                f"{where}: {name}.{attr} {value!r} is a {type(field).__name__}, "
                "not a DateTimeField.",
                hint,
            )
        ]
    return []


# -- AGGREGATES ----------------------------------------------------------------


def check_aggregates(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    from .models import BaseTimeFrame

    aggregates = getattr(frame_class, "AGGREGATES", None)
    if aggregates is None:
        return []
    name = frame_class.__name__
    if not isinstance(aggregates, dict) or not aggregates:
        return [
            error(
                32,
                f"{where}: {name}.AGGREGATES is {aggregates!r}, not a dict of field -> aggregate.",
                'Write AGGREGATES = {"item_count": Count("pk"), "average": Avg("value")}, '
                "or remove it and implement calculate().",
                obj=frame_class,
            )
        ]
    found: list[checks.CheckMessage] = []
    overridden = [
        method
        for method in ("calculate", "cleanup")
        if getattr(frame_class, method) is not getattr(BaseTimeFrame, method)
    ]
    if overridden:
        found.append(
            error(
                31,
                f"{where}: {name} has AGGREGATES and its own {' and '.join(overridden)}(): "
                "AGGREGATES frames are computed by PostgreSQL, which never calls them.",
                "Keep one: remove AGGREGATES to use calculate(), or remove "
                f"{' and '.join(overridden)}() and let AGGREGATES compute the fields.",
                obj=frame_class,
            )
        )
    for key, expression in aggregates.items():
        found += check_aggregate(where, frame_class, key, expression)
    return found + check_aggregates_stream(where, frame_class)


def check_aggregate(
    where: str, frame_class: Any, key: Any, expression: Any
) -> list[checks.CheckMessage]:
    name = frame_class.__name__
    results = [
        f.name
        for f in frame_class._meta.concrete_fields
        if f.name not in framework_fields() and not f.primary_key
    ]
    hint = f"Use a result field of {name} as the key: {', '.join(results) or '(none yet)'}."
    if key in framework_fields():
        msg = f"{where}: {name}.AGGREGATES[{key!r}] targets a field the framework writes itself."
        return [error(32, msg, hint, obj=frame_class)]
    try:
        field = frame_class._meta.get_field(key) if isinstance(key, str) else None
    except FieldDoesNotExist:
        field = None
    if field is None or not field.concrete or field.is_relation:
        msg = f"{where}: {name}.AGGREGATES key {key!r} is not a field of {name}."
        return [error(32, msg, hint, obj=frame_class)]
    if not getattr(expression, "contains_aggregate", False):
        return [
            error(
                32,
                f"{where}: {name}.AGGREGATES[{key!r}] is {expression!r}, "
                "not a Django aggregate expression.",
                'Use an aggregate such as Count("pk"), Sum("value"), Avg("value"), '
                'Coalesce(Sum("value"), 0) or ArrayAgg("tag"): never SQL text.',
                obj=frame_class,
            )
        ]
    return []


def check_aggregates_stream(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    stream_class = getattr(frame_class, "STREAM_CLASS", None)
    if not isinstance(stream_class, type) or issubclass(stream_class, ModelStream):
        return []
    return [
        error(
            33,
            f"{where}: {frame_class.__name__}.AGGREGATES needs a ModelStream, but "
            f"STREAM_CLASS {stream_class.__name__} is not one (PostgreSQL computes "
            "AGGREGATES from the stream's queryset).",
            "Make the stream a stream_analysis.ModelStream (model = ..., time_field = ...), "
            "or remove AGGREGATES and implement calculate().",
            obj=frame_class,
        )
    ]


# -- BATCH_READ and the sizes ----------------------------------------------------


def check_batch_read(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    value = getattr(frame_class, "BATCH_READ", False)
    stream_class = getattr(frame_class, "STREAM_CLASS", None)
    name = frame_class.__name__
    if not isinstance(value, bool):
        return [
            error(34, f"{where}: {name}.BATCH_READ is {value!r}, not a bool.",
                  "Set BATCH_READ = True or False.", obj=frame_class)
        ]  # fmt: skip
    if not value or not isinstance(stream_class, type) or issubclass(stream_class, ModelStream):
        return []
    return [
        error(
            34,
            f"{where}: {name}.BATCH_READ needs a ModelStream; STREAM_CLASS "
            f"{stream_class.__name__} is not one.",
            "Make the stream a stream_analysis.ModelStream, or remove BATCH_READ.",
            obj=frame_class,
        )
    ]


#: Settings of the batch path: (name, largest value).
SIZES = (
    ("AGGREGATE_BATCH_SIZE", 100_000),
    ("BATCH_READ_BATCH_SIZE", 100_000),
    ("BATCH_READ_MAX_ROWS", 10_000_000),
)


@checks.register()
def check_batch_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    for name, largest in SIZES:
        value = getattr(app_settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= largest:
            found.append(
                error(
                    35,
                    f"STREAM_ANALYSIS_{name} is {value!r}; it must be a whole number "
                    f"from 1 to {largest:,}.",
                    f"Remove it to use the default ({DEFAULTS[name]:,}).",
                )
            )
    return found
