"""System checks of the runtime's wiring, and of the settings only the runtime reads."""

from __future__ import annotations

import calendar
import re
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string
from periodiq import cron

from stream_analysis.settings import app_settings

from .broker import NEEDED_MIDDLEWARE

#: Dramatiq's rule for queue names (``dramatiq.actor``): it raises at declaration otherwise.
QUEUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9._-]*")
#: Each cron field's name and range (day of week 0-7: Sunday is 0 and 7).
CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
#: The most days each month has (February: 29, as in the leap year 2024).
MONTH_DAYS = {month: calendar.monthrange(2024, month)[1] for month in range(1, 13)}


def error(n: int, msg: str, hint: str, obj: Any = None) -> checks.Error:
    """An error of the runtime's wiring; ids continue the app's (``stream_analysis.E0xx``)."""
    return checks.Error(msg, hint=hint, obj=obj, id=f"stream_analysis.E{n:03d}")


@checks.register()
def check_broker(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    broker = getattr(settings, "DRAMATIQ_BROKER", None)
    if not isinstance(broker, dict) or not broker.get("BROKER"):
        return [
            error(
                9,
                "No Dramatiq broker is configured (DRAMATIQ_BROKER is missing).",
                'Set DRAMATIQ_BROKER = {"BROKER": "actors.broker.DjangoPostgresBroker", '
                '"MIDDLEWARE": [...]}; see docs/installation.md (Settings).',
            )
        ]
    if not broker.get("MIDDLEWARE"):
        return [
            error(
                10,
                "DRAMATIQ_BROKER has no MIDDLEWARE list: django-dramatiq would build "
                "a broker without Retries, TimeLimit or the periodic scheduler.",
                "Write the middleware list out; see docs/installation.md (Settings).",
            )
        ]
    present = [cls for cls in map(_middleware_class, broker["MIDDLEWARE"]) if cls is not None]
    return [
        checks.Warning(
            f"DRAMATIQ_BROKER's MIDDLEWARE has no {path}: {loss}.",
            hint=f'Add "{path}" to the list, or build DRAMATIQ_BROKER with '
            "actors.broker.broker_settings() or broker_settings_for(), which list it.",
            id="stream_analysis.W003",
        )
        for path, loss in NEEDED_MIDDLEWARE.items()
        if not any(issubclass(cls, import_string(path)) for cls in present)
    ]


def _middleware_class(entry: Any) -> type | None:
    """The class of a ``MIDDLEWARE`` entry (a dotted path, a class or an instance, as
    django-dramatiq takes them); None for a path that does not import: the worker will
    not start with it anyway."""
    if isinstance(entry, str):
        try:
            entry = import_string(entry)
        except ImportError:
            return None
    return entry if isinstance(entry, type) else type(entry)


@checks.register()
def check_django_dramatiq(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if apps.is_installed("django_dramatiq"):
        return []
    return [
        error(
            12,
            "'actors' needs 'django_dramatiq' in INSTALLED_APPS: it builds the broker "
            "from DRAMATIQ_BROKER and provides 'manage.py rundramatiq'.",
            "Add 'django_dramatiq' to INSTALLED_APPS, before 'actors'.",
        )
    ]


def valid_queue_name(name: object) -> bool:
    return isinstance(name, str) and QUEUE_NAME.fullmatch(name) is not None


@checks.register()
def check_queue_name(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    name = app_settings.QUEUE
    if valid_queue_name(name):
        return []
    return [
        error(
            22,
            f"STREAM_ANALYSIS_QUEUE is {name!r}, not a queue name Dramatiq accepts; the "
            "actors use the default queue 'stream_analysis' until it is fixed.",
            "Use a letter or an underscore, then letters, digits, dots, dashes or "
            "underscores, e.g. 'stream_analysis'.",
        )
    ]


def cron_problem(schedule: str) -> str | None:
    """What is wrong with a five-field cron string or @alias, in words; None if nothing.

    periodiq reads fields out of range ("99 * * * *") and dates that never come
    ("0 0 31 2 *") without a word; both are problems here.
    """
    try:
        spec = cron(schedule)
    except KeyError:
        return "it is not an alias periodiq knows (@hourly, @daily, @weekly, @monthly, @yearly)"
    except Exception as exc:
        return f"periodiq cannot read it ({type(exc).__name__}: {exc})"
    for (name, least, most), values in zip(CRON_FIELDS, spec.astuple(), strict=True):
        wrong = [value for value in values if not least <= value <= most]
        if wrong:
            return f"its {name} field has {wrong[0]}, outside {least}-{most}"
    only_days_of_month = spec.is_dom_restricted and not spec.is_dow_restricted
    if only_days_of_month and not any(
        day <= MONTH_DAYS[month] for month in spec.month for day in spec.dom
    ):
        return "it never runs: none of its months has any of its days of the month"
    return None


@checks.register()
def check_cron_schedules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The cleanup schedule is None, or a cron schedule periodiq reads as meant.

    Five fields, or an @alias: periodiq silently ignores a sixth (seconds) field,
    so it is refused; then every field is parsed and checked for its range.
    """
    schedule = app_settings.CLEANUP_SCHEDULE
    if schedule is None:
        return []
    if not isinstance(schedule, str) or not (
        schedule.startswith("@") or len(schedule.split()) == 5
    ):
        return [
            error(
                18,
                f"STREAM_ANALYSIS_CLEANUP_SCHEDULE is {schedule!r}, not None or a cron "
                "schedule of five fields (minute hour day-of-month month day-of-week).",
                "Write e.g. '*/10 * * * *' (every 10 minutes; periodiq has minute resolution "
                "and would ignore a seconds field), or None to turn the periodic cleanup off.",
            )
        ]
    problem = cron_problem(schedule)
    if problem is None:
        return []
    return [
        error(
            18,
            f"STREAM_ANALYSIS_CLEANUP_SCHEDULE is {schedule!r}: {problem}. The periodic "
            "cleanup is off until it is fixed.",
            "Write five fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12) "
            "day-of-week (0-7), e.g. '*/10 * * * *'; or None to turn the cleanup off.",
        )
    ]
