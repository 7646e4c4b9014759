"""The SQL that carries the concurrency design, loaded from ``sql/queries.sql``.

Each query sits under a ``-- name --`` header with a comment saying what it
guarantees. Table and column names come from Django models and are quoted by
the database backend; every value is a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from typing import Any

from django.db import DatabaseError, connection, models

_HEADER = re.compile(r"^-- (\w+) --$", re.MULTILINE)


@cache
def named_queries(package: str, resource: str) -> dict[str, str]:
    """The queries of a ``.sql`` file in ``package``, by their ``-- name --`` header."""
    text = files(package).joinpath(resource).read_text()
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str, model: type[models.Model] | None = None, **parts: str) -> str:
    """The named query, with ``{table}``/``{start}`` (and ``parts``) filled in for ``model``."""
    sql = named_queries(__package__, "sql/queries.sql")[name]
    if model is None:
        return sql
    quote = connection.ops.quote_name
    return sql.format(table=quote(model._meta.db_table), start=quote("start_time"), **parts)


def fetch_value(name: str, params: dict[str, Any], model: type[models.Model] | None = None) -> Any:
    """Run a query returning one value and return it."""
    with connection.cursor() as cursor:
        cursor.execute(query(name, model), params)
        return cursor.fetchone()[0]


def execute(
    name: str, params: dict[str, Any], model: type[models.Model] | None = None, **parts: str
) -> int:
    """Run a statement and return its row count."""
    with connection.cursor() as cursor:
        cursor.execute(query(name, model, **parts), params)
        return cursor.rowcount


def python_defaults(model: type[models.Model]) -> dict[str, Any]:
    """Column -> value for fields whose default lives in Python only.

    A bulk ``INSERT … SELECT`` only gets database defaults; this supplies the
    others (such as ``IntegerField(default=0)``) as bound parameters.
    """
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name == "start_time" or field.has_db_default():
            continue
        assert field.column is not None  # concrete fields have a column
        if field.has_default():
            values[field.column] = field.get_db_prep_save(field.get_default(), connection)
        elif not field.null:
            values[field.column] = None  # reported by manage.py check (E013)
    return values


def insert_frames_query(model: type[models.Model]) -> tuple[str, dict[str, Any]]:
    """The ``insert_frames`` statement for ``model`` and its default-value parameters."""
    defaults = python_defaults(model)
    quote = connection.ops.quote_name
    names = [f"default_{i}" for i in range(len(defaults))]
    columns = "".join(f", {quote(column)}" for column in defaults)
    values = "".join(f", %({n})s" for n in names)
    sql = query("insert_frames", model, default_columns=columns, default_values=values)
    return sql, dict(zip(names, defaults.values(), strict=True))


@contextmanager
def table_required(model: type[models.Model]) -> Iterator[None]:
    """Turn "relation does not exist" for ``model``'s table into a ConfigurationError.

    Wrap it around a transaction (not inside one): a missing table is a setup
    mistake that fails the same way until someone runs the migrations, so it is
    raised as the app's error naming that fix, not as a database error to retry.
    """
    try:
        yield
    except DatabaseError as error:
        explained = explain_missing_table(error, model)
        if explained is error:
            raise
        raise explained from error


#: SQLSTATE of "relation does not exist".
UNDEFINED_TABLE = "42P01"


def explain_missing_table(error: BaseException, model: type[models.Model]) -> BaseException:
    """A ConfigurationError naming the fix if ``error`` says ``model``'s table is missing."""
    from .exceptions import ConfigurationError

    cause = error.__cause__
    if getattr(cause, "sqlstate", None) != UNDEFINED_TABLE:
        return error
    return ConfigurationError(
        f"The table {model._meta.db_table!r} of {model.__name__} does not exist: its "
        "migration is missing or not applied. Run 'manage.py makemigrations' and "
        "'manage.py migrate'."
    )
