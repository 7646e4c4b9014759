"""The management command tests' helpers (tests/db/test_commands.py, and
tests/workers/test_commands.py where real workers calculate what a command queued)."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from tests.conftest import at
from tests.testapp.models import Item

#: ``stream_analysis recompute`` of every frame of "counts" (the whole of 2026-01-01).
RECOMPUTE_ALL = ("stream_analysis", "recompute", "counts", "--from", "2026-01-01",
                 "--to", "2026-01-02")  # fmt: skip


def run(*args: str) -> str:
    """``manage.py <args>`` in this process; returns what it wrote to stdout."""
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def frames(model, *starts: float, **fields) -> None:
    """Frames of ``model`` starting ``starts`` seconds after T0, with ``fields``."""
    model.objects.bulk_create(model(start_time=at(s), **fields) for s in starts)


def items(*seconds: float) -> None:
    """Stream items created ``seconds`` after T0."""
    Item.objects.bulk_create(Item(created_at=at(s)) for s in seconds)


def starts(model, **filters) -> list:
    """The start times of the frames of ``model`` matching ``filters``, in order."""
    query = model.objects.filter(**filters).order_by("start_time")
    return list(query.values_list("start_time", flat=True))


def backfilled(*args: str) -> str:
    """``backfill_analysis <args>``'s output after the plan it prints first."""
    return "".join(line for line in run("backfill_analysis", *args).splitlines(True)
                   if ": plan: " not in line)  # fmt: skip
