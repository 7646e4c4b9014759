"""The batch store: one UPDATE writes every calculated frame of a claimed batch.

``save()`` per frame was most of the framework's cost per frame; this stores
the values ``save()`` would write (``pre_save()`` included) for a whole batch
with one statement, in the batch's transaction. Models that ``save()`` cannot
be replaced for (see :func:`bulk_storable`) are saved one by one instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import chain
from typing import Any

from django.db import DatabaseError, connection, models
from django.db.models.signals import post_save, pre_save

from . import queries
from .models import BaseTimeFrame


@cache
def saved_fields(model: type[models.Model]) -> tuple[models.Field[Any, Any], ...]:
    """The fields ``save()`` writes on an update: concrete, not the key, not generated."""
    return tuple(
        field
        # A proxy model's fields live on its concrete model, in the same table.
        for field in (model._meta.concrete_model or model)._meta.local_concrete_fields
        if not field.primary_key and not field.generated
    )


@cache
def column_types(model: type[models.Model]) -> dict[str, str]:
    """Each column of ``model``'s table and its type without modifier, from the catalog."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(queries.query("column_types"), {"table": table})
        return dict(cursor.fetchall())


@cache
def store_frames_query(model: type[models.Model], rows: int) -> str:
    """The ``store_frames`` statement for ``rows`` frames of ``model``.

    Its parameters, row after row: the primary key, then ``saved_fields(model)``.
    """
    quote = connection.ops.quote_name
    pk = model._meta.pk
    columns = [str(field.column) for field in (pk, *saved_fields(model))]
    types = column_types(model)
    row = "(" + ", ".join(f"%s::{types[column]}" for column in columns) + ")"
    return queries.query(
        "store_frames",
        model,
        assignments=", ".join(f"{quote(c)} = source.{quote(c)}" for c in columns[1:]),
        rows=", ".join([row] * rows),
        columns=", ".join(quote(c) for c in columns),
        pk=quote(columns[0]),
    )


def bulk_storable(frame_class: type[BaseTimeFrame]) -> bool:
    """True when one UPDATE for a batch stores exactly what ``save()`` would.

    Not for a model that overrides ``save()``, has ``pre_save``/``post_save``
    receivers, relation fields or fields with their own SQL placeholder (arrays,
    ranges, binary): those frames are saved one by one with ``save()``.
    """
    return (
        frame_class.save is models.Model.save
        and not pre_save.has_listeners(frame_class)
        and not post_save.has_listeners(frame_class)
        and not any(
            model_field.is_relation or hasattr(model_field, "get_placeholder")
            for model_field in saved_fields(frame_class)
        )
    )


def store_row(frame: BaseTimeFrame) -> list[Any] | None:
    """The frame's key and every value ``save()`` would write (``pre_save()`` included).

    None when a value is an expression such as ``F()``, which only ``save()`` resolves.
    """
    row = [frame.pk]
    for model_field in saved_fields(type(frame)):
        value = model_field.pre_save(frame, False)
        if hasattr(value, "resolve_expression"):
            return None
        row.append(model_field.get_db_prep_save(value, connection))
    return row


def store_frames(frame_class: type[BaseTimeFrame], rows: Sequence[list[Any]]) -> None:
    """Store calculated frames (rows of :func:`store_row`) with one UPDATE."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(store_frames_query(frame_class, len(rows)), list(chain.from_iterable(rows)))
        if cursor.rowcount != len(rows):
            raise DatabaseError(f"{len(rows) - cursor.rowcount} calculated frames are gone.")


def reload_frames(
    frame_class: type[BaseTimeFrame], claimed: Sequence[BaseTimeFrame]
) -> list[BaseTimeFrame]:
    """The claimed frames as stored now (this transaction still locks them), in order."""
    stored = frame_class._default_manager.in_bulk([frame.pk for frame in claimed])
    return [stored[frame.pk] for frame in claimed]
