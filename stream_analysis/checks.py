"""System checks: configuration mistakes fail ``manage.py check`` with a hint."""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import load_backend
from django.utils.module_loading import import_string

from .batch_checks import check_batch_path
from .check_errors import error
from .models import DUE_INDEX_SUFFIX
from .settings import DEFAULTS, app_settings

KEY_PATTERN = re.compile(r"\w+")
SETTING = "ANALYSIS_TIME_FRAME_TASKS"


@dataclass(frozen=True)
class Bounds:
    """What a numeric ``STREAM_ANALYSIS_*`` setting may be."""

    #: A whole number (an int), or any number (int or float).
    whole: bool
    #: Largest value allowed (an upper bound well above any sane use).
    most: float
    #: Smallest value allowed; None: any number above zero.
    least: float | None = None
    #: None is allowed too (it turns the feature off).
    none: bool = False

    def allows(self, value: object) -> bool:
        if value is None:
            return self.none
        if isinstance(value, bool) or not isinstance(value, int if self.whole else int | float):
            return False
        if not math.isfinite(value):
            return False
        above_least = value > 0 if self.least is None else value >= self.least
        return above_least and value <= self.most

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.least is None:
            text = f"{kind} above 0 and at most {self.most:g}"
        else:
            text = f"{kind} from {self.least:g} to {self.most:g}"
        return text + (", or None" if self.none else "")


#: Every numeric setting and its bounds (E011). BATCH_SIZE: PostgreSQL tracks 64
#: writing subtransactions per transaction before it spills to disk.
NUMBER_SETTINGS = {
    "BATCH_SIZE": Bounds(whole=True, least=1, most=64),
    "CONCURRENCY": Bounds(whole=True, least=1, most=256),
    "MAX_ATTEMPTS": Bounds(whole=True, least=1, most=100),
    "MAX_FRAMES_PER_TICK": Bounds(whole=True, least=1, most=10_000_000),
    "TIME_BUDGET": Bounds(whole=False, most=3_600),
    "FRAME_TIME_LIMIT": Bounds(whole=False, most=86_400),
    "RETRY_BACKOFF": Bounds(whole=False, most=86_400),
    "RETRY_BACKOFF_MAX": Bounds(whole=False, most=7 * 86_400),
    "ARRIVAL_SETTLE": Bounds(whole=False, most=3_600),
    "METRICS_WINDOW": Bounds(whole=False, most=7 * 86_400),
    "FUTURE_TOLERANCE": Bounds(whole=False, least=0, most=100 * 365 * 86_400, none=True),
}
#: The shortest DURATION of a frame model (E006): shorter frames would be
#: created faster than ticks and workers can follow.
MIN_DURATION = timedelta(seconds=1)


@checks.register()
def check_tasks(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = app_settings.raw_tasks
    if not isinstance(raw, dict):
        return [
            error(
                1,
                f"{SETTING} must be a dict of task key -> task settings.",
                f'Write {SETTING} = {{"demo": {{"name": ..., "frame_class_path": ...}}}}.',
            )
        ]
    found: list[checks.CheckMessage] = []
    for key, entry in raw.items():
        found.extend(check_task(key, entry))
    return found


def check_task(key: Any, entry: Any) -> list[checks.CheckMessage]:
    where = f"{SETTING}[{key!r}]"
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        return [
            error(
                3,
                f"{where}: the key {key!r} is not word-like.",
                "Use letters, digits and underscores only, e.g. 'tweet_counts'.",
            )
        ]
    if not isinstance(entry, dict):
        return [
            error(
                2,
                f"{where} must be a dict.",
                'Give it "name" and "frame_class_path" (and optionally "autostart").',
            )
        ]
    missing = [f for f in ("name", "frame_class_path") if not entry.get(f)]
    if missing:
        return [
            error(
                2,
                f"{where} is missing {', '.join(repr(m) for m in missing)}.",
                'Each task needs "name" (a label) and "frame_class_path" '
                "(dotted path of a BaseTimeFrame model).",
            )
        ]
    autostart = entry.get("autostart", False)
    if not isinstance(autostart, bool):
        return [
            error(
                14,
                f"{where}: autostart is {autostart!r}, not True or False.",
                'Write "autostart": True or "autostart": False (a string such as "false" '
                "would count as true).",
            )
        ]
    return check_frame_class(where, entry["frame_class_path"])


def check_frame_class(where: str, path: str) -> list[checks.CheckMessage]:
    from .models import BaseTimeFrame

    if not isinstance(path, str):
        return [
            error(
                4,
                f"{where}: frame_class_path is {path!r}, not a dotted path.",
                "Give the full dotted path of the model as a string, "
                "e.g. 'myapp.models.MyTimeFrame'.",
            )
        ]
    try:
        frame_class = import_string(path)
    except ImportError as exc:
        return [
            error(
                4,
                f"{where}: frame_class_path {path!r} does not import: {exc}",
                "Give the full dotted path of the model, e.g. 'myapp.models.MyTimeFrame'.",
            )
        ]
    if not (
        isinstance(frame_class, type)
        and issubclass(frame_class, BaseTimeFrame)
        and not frame_class._meta.abstract
    ):
        return [
            error(
                5,
                f"{where}: {path!r} is not a concrete BaseTimeFrame subclass.",
                "Point frame_class_path at a model class that extends "
                "stream_analysis.BaseTimeFrame and is not abstract.",
            )
        ]
    if frame_class._meta.parents and not frame_class._meta.proxy:
        return [
            error(
                15,
                f"{where}: {path!r} inherits from the concrete model "
                f"{next(iter(frame_class._meta.parents)).__name__} (multi-table inheritance): "
                "its start_time lives in the parent's table, so frames cannot be created in bulk.",
                "Inherit from an abstract model instead: give the shared base "
                "'class Meta(BaseTimeFrame.Meta): abstract = True'.",
                obj=frame_class,
            )
        ]
    return (
        check_duration(where, frame_class)
        + check_stream_class(where, frame_class)
        + check_bulk_defaults(where, frame_class)
        + check_event_time(where, frame_class)
        + check_due_index(frame_class)
        + check_original_hooks(where, frame_class)
        + check_batch_path(where, frame_class)
    )


def check_duration(where: str, frame_class: type) -> list[checks.CheckMessage]:
    duration = getattr(frame_class, "DURATION", None)
    if isinstance(duration, timedelta) and duration >= MIN_DURATION:
        return []
    return [
        error(
            6,
            f"{where}: {frame_class.__name__}.DURATION is {duration!r}, not a timedelta of "
            f"at least {MIN_DURATION.total_seconds():g} second.",
            "Set DURATION = timedelta(seconds=15) (or any timedelta of one second or more).",
            obj=frame_class,
        )
    ]


def check_stream_class(where: str, frame_class: type) -> list[checks.CheckMessage]:
    from .streams import AbstractStream

    stream_class = getattr(frame_class, "STREAM_CLASS", None)
    if isinstance(stream_class, type) and issubclass(stream_class, AbstractStream):
        if not inspect.isabstract(stream_class):
            return []
        missing = ", ".join(sorted(getattr(stream_class, "__abstractmethods__", ())))
        return [
            error(
                7,
                f"{where}: {frame_class.__name__}.STREAM_CLASS {stream_class.__name__} "
                f"cannot be instantiated: it does not implement {missing}.",
                "Implement every method of stream_analysis.AbstractStream in it.",
                obj=frame_class,
            )
        ]
    return [
        error(
            7,
            f"{where}: {frame_class.__name__}.STREAM_CLASS is {stream_class!r}, "
            "not an AbstractStream subclass.",
            "Set STREAM_CLASS to a class that extends stream_analysis.AbstractStream.",
            obj=frame_class,
        )
    ]


def check_event_time(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    """LATENESS, OFFSET, IDLE_TIMEOUT and RECOMPUTE_LATE have the right types."""
    name = frame_class.__name__
    found: list[checks.CheckMessage] = []
    for attr in ("LATENESS", "OFFSET"):
        value = getattr(frame_class, attr, None)
        if not (isinstance(value, timedelta) and value >= timedelta(0)):
            found.append(
                error(
                    16,
                    f"{where}: {name}.{attr} is {value!r}, not a timedelta of zero or more.",
                    f"Set {attr} = timedelta(seconds=...) or remove it (default: 0).",
                    obj=frame_class,
                )
            )
    idle = getattr(frame_class, "IDLE_TIMEOUT", None)
    if idle is not None and not (isinstance(idle, timedelta) and idle > timedelta(0)):
        found.append(
            error(
                16,
                f"{where}: {name}.IDLE_TIMEOUT is {idle!r}, not None or a positive timedelta.",
                "Set IDLE_TIMEOUT = timedelta(minutes=1), or None to wait for new items.",
                obj=frame_class,
            )
        )
    return found + check_recompute_late(where, frame_class)


def check_recompute_late(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    recompute = getattr(frame_class, "RECOMPUTE_LATE", False)
    if not isinstance(recompute, bool):
        return [
            error(
                16,
                f"{where}: {frame_class.__name__}.RECOMPUTE_LATE is {recompute!r}, not a bool.",
                "Set RECOMPUTE_LATE = True or False.",
                obj=frame_class,
            )
        ]
    stream_class = getattr(frame_class, "STREAM_CLASS", None)
    if not recompute or not isinstance(stream_class, type):
        return []
    if getattr(stream_class, "reports_late_arrivals", lambda: True)():
        return []
    return [
        error(
            17,
            f"{where}: {frame_class.__name__}.RECOMPUTE_LATE needs "
            f"{stream_class.__name__}.get_late_arrivals(), which it does not implement.",
            "Implement get_late_arrivals() on the stream (it needs an arrival timestamp "
            "per item), or set RECOMPUTE_LATE = False.",
            obj=frame_class,
        )
    ]


def check_bulk_defaults(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    """Frames are created by one bulk INSERT: every NOT NULL column needs a default."""
    found: list[checks.CheckMessage] = []
    for field in frame_class._meta.concrete_fields:
        if field.primary_key or field.name == "start_time" or field.null:
            continue
        if field.has_default() or field.has_db_default():
            continue
        found.append(
            error(
                13,
                f"{where}: {frame_class.__name__}.{field.name} has no default and is not "
                "nullable, so frames cannot be created (they are inserted in bulk, with "
                "only start_time and defaults).",
                f"Give {field.name} a default= or db_default=, or null=True; "
                "set its value in calculate().",
                obj=frame_class,
            )
        )
    return found


def check_due_index(frame_class: Any) -> list[checks.CheckMessage]:
    names = [index.name for index in frame_class._meta.indexes]
    if any(name and name.endswith(DUE_INDEX_SUFFIX) for name in names):
        return []
    owner = meta_owner(frame_class)
    abstract = " abstract = True" if owner is not frame_class else ""
    return [
        checks.Warning(
            f"{frame_class.__name__} lost BaseTimeFrame's index of due frames "
            f"(it uses {owner.__name__}.Meta, which does not inherit BaseTimeFrame.Meta).",
            hint=f"In {owner.__name__}, write 'class Meta(BaseTimeFrame.Meta):{abstract}' "
            "so claiming frames stays fast.",
            obj=frame_class,
            id="stream_analysis.W001",
        )
    ]


#: Methods the original's worker called around calculate(); nothing calls them here.
ORIGINAL_HOOKS = ("mark_started", "mark_cleanup_started", "mark_done")


def check_original_hooks(where: str, frame_class: Any) -> list[checks.CheckMessage]:
    """An override of the original's frame hooks would silently never run."""
    defined = [name for name in ORIGINAL_HOOKS if hasattr(frame_class, name)]
    if not defined:
        return []
    return [
        checks.Warning(
            f"{where}: {frame_class.__name__} defines {', '.join(defined)}, which the "
            "original called around calculate(); this app never calls them.",
            hint="Move what they do into calculate() or cleanup(): the worker sets "
            "calculated, analysis_time and cleanup_time itself.",
            obj=frame_class,
            id="stream_analysis.W002",
        )
    ]


def meta_owner(model: type) -> type:
    """The class whose ``class Meta`` Django used for ``model``: the nearest one declaring it."""
    return next((k for k in model.__mro__ if "Meta" in vars(k)), model)


@checks.register()
def check_database(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    engine = settings.DATABASES.get("default", {}).get("ENGINE", "")
    if engine_vendor(engine) in ("postgresql", None):
        return []
    return [
        error(
            8,
            f"The default database uses {engine!r}; stream_analysis needs PostgreSQL "
            "(row locks, advisory locks and the message queue live there).",
            "Set DATABASES['default']['ENGINE'] = 'django.db.backends.postgresql' "
            "(with psycopg 3), e.g. through DATABASE_URL.",
        )
    ]


def engine_vendor(engine: str) -> str | None:
    """The vendor of a database backend ('postgresql' for PostGIS too), None if unloadable.

    An engine that does not load is reported by Django itself when it connects.
    """
    if not engine:
        return ""
    try:
        return str(load_backend(engine).DatabaseWrapper.vendor)
    except ImproperlyConfigured:
        return None


@checks.register()
def check_app_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    for name, bounds in NUMBER_SETTINGS.items():
        value = getattr(app_settings, name)
        if not bounds.allows(value):
            found.append(
                error(
                    11,
                    f"STREAM_ANALYSIS_{name} is {value!r}; it must be {bounds.describe()}.",
                    f"Remove it to use the default ({DEFAULTS[name]!r}).",
                )
            )
    return found + check_metrics_settings()


def check_metrics_settings() -> list[checks.CheckMessage]:
    """METRICS_PUBLIC is a bool (a string "False" would be true) and METRICS_TOKEN a str."""
    found: list[checks.CheckMessage] = []
    public = app_settings.METRICS_PUBLIC
    if not isinstance(public, bool):
        found.append(
            error(
                19,
                f"STREAM_ANALYSIS_METRICS_PUBLIC is {public!r}, not True or False; the metrics "
                "stay private until it is fixed.",
                "Write STREAM_ANALYSIS_METRICS_PUBLIC = False (or True to serve anyone who "
                "reaches the view), without quotes.",
            )
        )
    token = app_settings.METRICS_TOKEN
    if not isinstance(token, str) or token != token.strip():
        found.append(
            error(
                20,
                f"STREAM_ANALYSIS_METRICS_TOKEN is {type(token).__name__} {token!r} "
                "(it must be a string without surrounding spaces); it lets nobody in until "
                "it is fixed.",
                "Set it to a long random string, e.g. from "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))', read from the "
                'environment; or "" for no token.',
            )
        )
    return found


@checks.register()
def check_shared_frame_classes(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Two tasks on one frame model would share its frames and count each one twice."""
    users: dict[Any, list[str]] = {}
    for key, task in app_settings.tasks().items():
        try:
            frame_class = import_string(task.frame_class_path)
        except ImportError:
            continue  # E004
        users.setdefault(frame_class, []).append(key)
    return [
        error(
            21,
            f"{SETTING}: the tasks {', '.join(repr(k) for k in keys)} all use "
            f"{getattr(frame_class, '__name__', frame_class)}: they would create, calculate and "
            "count the same frames, each as its own.",
            "Give each task its own frame model (subclass a shared abstract model), or keep "
            "one of these tasks.",
        )
        for frame_class, keys in users.items()
        if len(keys) > 1
    ]
