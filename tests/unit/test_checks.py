"""Configuration mistakes fail ``manage.py check`` with an id and a hint.

Each test breaks one thing and expects exactly one message from this app. Frame
models with a broken attribute are defined in an isolated app registry (no
table, no migration) and exposed at ``tests.checks_fixtures.<Name>``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test.utils import isolate_apps, override_settings
from dramatiq.middleware import CurrentMessage, Retries

from actors.broker import NEEDED_MIDDLEWARE, broker_settings
from stream_analysis import BaseTimeFrame
from tests import checks_fixtures
from tests.conftest import REPO, worker_env
from tests.testapp.models import ItemStream

PROBE = "tests.checks_fixtures.ProbeFrame"


def reported() -> list[checks.CheckMessage]:
    """Every message of this app's checks, run as ``manage.py check`` runs them."""
    return [m for m in checks.run_checks() if (m.id or "").startswith("stream_analysis.")]


def assert_reports(expected_id: str) -> checks.CheckMessage:
    found = reported()
    assert [m.id for m in found] == [expected_id], found
    assert found[0].hint.strip()
    return found[0]


def task_with(path: object) -> dict[str, dict[str, object]]:
    return {"probe": {"name": "Probe", "frame_class_path": path, "autostart": True}}


@pytest.fixture
def frame_class(monkeypatch, settings):
    """Define a frame model and configure the only task to use it."""
    with isolate_apps("tests.testapp"):

        def define(
            name: str = "ProbeFrame",
            meta: type | None = None,
            base: type = BaseTimeFrame,
            **attrs: object,
        ) -> type:
            if meta is None and base is BaseTimeFrame:
                meta = type("Meta", (BaseTimeFrame.Meta,), {"app_label": "testapp"})
            body = {
                "__module__": checks_fixtures.__name__,
                **({"Meta": meta} if meta is not None else {}),  # else: the base's Meta
                "STREAM_CLASS": ItemStream,
                "DURATION": timedelta(seconds=15),
                **attrs,
            }
            model = type(name, (base,), body)
            monkeypatch.setattr(checks_fixtures, name, model, raising=False)
            settings.ANALYSIS_TIME_FRAME_TASKS = task_with(f"tests.checks_fixtures.{name}")
            return model

        yield define


# -- the whole command -----------------------------------------------------------


def test_the_test_settings_pass_every_check():
    out = StringIO()

    call_command("check", stdout=out)

    assert "no issues" in out.getvalue()


def test_a_bad_setting_fails_the_check_command(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = ["counts"]

    with pytest.raises(SystemCheckError, match=r"stream_analysis\.E001"):
        call_command("check", stdout=StringIO())


def test_a_well_formed_frame_model_passes(frame_class):
    frame_class(label=models.CharField(max_length=10, default=""))

    assert reported() == []


# -- ANALYSIS_TIME_FRAME_TASKS -----------------------------------------------------


@pytest.mark.parametrize("value", [["counts"], "counts", None])
def test_tasks_that_are_not_a_dict_are_e001(settings, value):
    settings.ANALYSIS_TIME_FRAME_TASKS = value

    assert_reports("stream_analysis.E001")


@pytest.mark.parametrize(
    "entry",
    [
        {"frame_class_path": "tests.testapp.models.CountFrame"},
        {"name": "", "frame_class_path": "tests.testapp.models.CountFrame"},
        {"name": "Counts"},
        {"name": "Counts", "frame_class_path": ""},
    ],
    ids=["no name", "empty name", "no frame_class_path", "empty frame_class_path"],
)
def test_an_entry_missing_a_required_field_is_e002(settings, entry):
    settings.ANALYSIS_TIME_FRAME_TASKS = {"counts": entry}

    message = assert_reports("stream_analysis.E002")
    assert "missing" in message.msg


@pytest.mark.parametrize("entry", ["tests.testapp.models.CountFrame", None, ["Counts"]])
def test_an_entry_that_is_not_a_dict_is_e002(settings, entry):
    settings.ANALYSIS_TIME_FRAME_TASKS = {"counts": entry}

    message = assert_reports("stream_analysis.E002")
    assert "must be a dict" in message.msg


@pytest.mark.parametrize("key", ["bad key!", "", "with space", "dotted.key", "counts\n", 7])
def test_a_key_that_is_not_word_like_is_e003(settings, key):
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        key: {"name": "Counts", "frame_class_path": "tests.testapp.models.CountFrame"}
    }

    assert_reports("stream_analysis.E003")


@pytest.mark.parametrize(
    "path",
    ["tests.testapp.models.NoSuchFrame", "no_such_module.Frame", "CountFrame", 42],
    ids=["missing attribute", "missing module", "not dotted", "not a string"],
)
def test_a_frame_class_path_that_does_not_import_is_e004(settings, path):
    settings.ANALYSIS_TIME_FRAME_TASKS = task_with(path)

    assert_reports("stream_analysis.E004")


@pytest.mark.parametrize(
    "path",
    [
        "datetime.timedelta",
        "tests.testapp.models.Item",
        "tests.testapp.models.ItemStream",
        "tests.testapp.models.LoggedFrame",
        "stream_analysis.BaseTimeFrame",
        "stream_analysis.grid.EPOCH",
    ],
    ids=["plain class", "other model", "stream", "abstract frame", "the base", "not a class"],
)
def test_a_path_to_something_else_than_a_concrete_frame_model_is_e005(settings, path):
    settings.ANALYSIS_TIME_FRAME_TASKS = task_with(path)

    assert_reports("stream_analysis.E005")


@pytest.mark.parametrize("autostart", ["false", 1, None], ids=["a string", "an int", "None"])
def test_an_autostart_that_is_not_a_bool_is_e014(settings, autostart):
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        "counts": {
            "name": "Counts",
            "frame_class_path": "tests.testapp.models.CountFrame",
            "autostart": autostart,
        }
    }

    assert_reports("stream_analysis.E014")


# -- the frame model -----------------------------------------------------------------


@pytest.mark.parametrize(
    "duration",
    [timedelta(0), timedelta(seconds=-15), 15, None, timedelta(microseconds=1)],
    ids=["zero", "negative", "an int", "None", "under the one-second minimum"],
)
def test_a_duration_that_is_not_a_timedelta_of_a_second_or_more_is_e006(frame_class, duration):
    model = frame_class(DURATION=duration)

    message = assert_reports("stream_analysis.E006")
    assert message.obj is model


@pytest.mark.parametrize(
    "stream_class",
    [None, dict, ItemStream()],
    ids=["None", "plain class", "an instance"],
)
def test_a_stream_class_that_is_not_an_abstract_stream_subclass_is_e007(frame_class, stream_class):
    frame_class(STREAM_CLASS=stream_class)

    assert_reports("stream_analysis.E007")


def test_a_stream_class_missing_a_method_is_e007_naming_the_method(frame_class):
    frame_class(STREAM_CLASS=checks_fixtures.HalfStream)

    message = assert_reports("stream_analysis.E007")
    assert "get_stream_data" in message.msg


@pytest.mark.parametrize(
    "field",
    [
        models.CharField(max_length=10),
        models.IntegerField(),
        models.DateTimeField(auto_now_add=True),
    ],
    ids=["char", "integer", "auto_now_add"],
)
def test_a_result_field_without_default_that_is_not_nullable_is_e013(frame_class, field):
    # Frames are created by one INSERT ... SELECT generate_series(): no value for it.
    frame_class(label=field)

    message = assert_reports("stream_analysis.E013")
    assert "label" in message.msg


@pytest.mark.parametrize(
    "field",
    [
        models.IntegerField(default=0),
        models.IntegerField(db_default=0),
        models.IntegerField(null=True),
        models.JSONField(default=dict),
    ],
    ids=["default", "db_default", "nullable", "callable default"],
)
def test_a_result_field_with_a_default_or_nullable_is_fine(frame_class, field):
    frame_class(label=field)

    assert reported() == []


def test_a_frame_model_using_multi_table_inheritance_is_e015(frame_class, settings, monkeypatch):
    parent = frame_class("ParentFrame")
    meta = type("Meta", (), {"app_label": "testapp"})
    child = type("ChildFrame", (parent,), {"__module__": checks_fixtures.__name__, "Meta": meta})
    monkeypatch.setattr(checks_fixtures, "ChildFrame", child, raising=False)
    settings.ANALYSIS_TIME_FRAME_TASKS = task_with("tests.checks_fixtures.ChildFrame")

    message = assert_reports("stream_analysis.E015")
    assert "ParentFrame" in message.msg


@pytest.mark.parametrize(
    "attrs",
    [
        {"LATENESS": timedelta(seconds=-1)},
        {"LATENESS": 10},
        {"OFFSET": None},
        {"IDLE_TIMEOUT": timedelta(0)},
        {"IDLE_TIMEOUT": 30},
        {"RECOMPUTE_LATE": "yes"},
    ],
    ids=["negative lateness", "int lateness", "None offset", "zero idle", "int idle", "str"],
)
def test_event_time_settings_of_the_wrong_type_are_e016(frame_class, attrs):
    frame_class(**attrs)

    assert_reports("stream_analysis.E016")


def test_recompute_late_on_a_stream_without_arrival_times_is_e017(frame_class):
    frame_class(RECOMPUTE_LATE=True)  # ItemStream has no get_late_arrivals()

    message = assert_reports("stream_analysis.E017")
    assert "get_late_arrivals" in message.msg


def test_event_time_settings_of_the_right_type_pass(frame_class):
    from tests.testapp.models import ArrivalStream

    frame_class(
        STREAM_CLASS=ArrivalStream,
        LATENESS=timedelta(seconds=5),
        OFFSET=timedelta(minutes=30),
        IDLE_TIMEOUT=timedelta(minutes=1),
        RECOMPUTE_LATE=True,
    )

    assert reported() == []


def test_a_frame_meta_that_does_not_inherit_the_base_meta_still_gets_the_frame_indexes(
    frame_class,
):
    # Given a Meta that forgets BaseTimeFrame.Meta (which declares the frame tables' indexes)
    meta = type("Meta", (), {"app_label": "testapp", "ordering": ["start_time"]})

    model = frame_class(meta=meta)

    assert reported() == []
    assert [index.name for index in model._meta.indexes] == [
        "probeframe_due",
        "probeframe_open",
        "probeframe_redo",
    ]
    assert model._meta.ordering == ["start_time"]


def abstract_frame(meta_bases: tuple[type, ...] = ()) -> type:
    """An abstract intermediate frame class, as the original's users wrote them."""
    meta = type("Meta", meta_bases, {"abstract": True, "app_label": "testapp"})
    return type(
        "TweetLikeFrame", (BaseTimeFrame,), {"__module__": checks_fixtures.__name__, "Meta": meta}
    )


def test_an_abstract_parent_whose_meta_does_not_inherit_the_base_meta_keeps_the_due_index(
    frame_class,
):
    # Given the original's habit: class Meta: abstract = True on an intermediate class
    model = frame_class(base=abstract_frame())

    assert reported() == []
    assert [index.name for index in model._meta.indexes] == [
        "probeframe_due",
        "probeframe_open",
        "probeframe_redo",
    ]


def test_a_lost_due_index_is_w001_naming_the_abstract_class_whose_meta_to_fix(frame_class):
    from django.db.models.signals import class_prepared

    from stream_analysis.models import carry_due_index

    # Given a frame class that lost the index (the carrying receiver is disconnected)
    base = abstract_frame()
    class_prepared.disconnect(carry_due_index)
    try:
        frame_class(base=base)
    finally:
        class_prepared.connect(carry_due_index)

    message = assert_reports("stream_analysis.W001")
    assert isinstance(message, checks.Warning)
    assert "TweetLikeFrame.Meta" in message.msg
    assert "In TweetLikeFrame, write 'class Meta(BaseTimeFrame.Meta): abstract = True'" in (
        message.hint
    )


def test_a_frame_overriding_the_originals_mark_done_is_w002_naming_it(frame_class):
    # Given the original's hook, which it documented as "called for you"
    frame_class(mark_done=lambda self: None)

    message = assert_reports("stream_analysis.W002")
    assert "defines mark_done" in message.msg
    assert "calculate() or cleanup()" in message.hint


def test_a_frame_meta_that_inherits_the_base_meta_keeps_the_due_index(frame_class):
    meta = type("Meta", (BaseTimeFrame.Meta,), {"app_label": "testapp", "ordering": ["-pk"]})

    model = frame_class(meta=meta)

    assert reported() == []
    assert [index.name for index in model._meta.indexes] == [
        "probeframe_due",
        "probeframe_open",
        "probeframe_redo",
    ]


# -- database, broker, app settings ------------------------------------------------------


def engine_overridden(settings, engine: str) -> override_settings:
    """DATABASES with another default ENGINE (checks only: nothing connects with it)."""
    return override_settings(
        DATABASES={"default": {**settings.DATABASES["default"], "ENGINE": engine}}
    )


def overriding_databases() -> pytest.WarningsRecorder:
    return pytest.warns(UserWarning, match="Overriding setting DATABASES")


def test_a_database_that_is_not_postgresql_is_e008(settings):
    with overriding_databases(), engine_overridden(settings, "django.db.backends.sqlite3"):
        message = assert_reports("stream_analysis.E008")

    assert "sqlite3" in message.msg


def test_a_backend_derived_from_postgresql_like_postgis_passes(settings):
    with overriding_databases(), engine_overridden(settings, "tests.checks_fixtures"):
        assert reported() == []


def test_no_dramatiq_broker_is_e009(settings):
    del settings.DRAMATIQ_BROKER

    assert_reports("stream_analysis.E009")


def test_a_dramatiq_broker_without_a_broker_class_is_e009(settings):
    settings.DRAMATIQ_BROKER = {"MIDDLEWARE": ["dramatiq.middleware.Retries"]}

    assert_reports("stream_analysis.E009")


def test_a_hand_written_middleware_list_without_what_the_app_needs_is_w003_naming_each(settings):
    # Given the app's list written out by hand, without two of the middleware it needs
    missing = ["dramatiq.middleware.CurrentMessage", "actors.shutdown.GracefulShutdown"]
    middleware = [path for path in broker_settings()["MIDDLEWARE"] if path not in missing]
    settings.DRAMATIQ_BROKER = {"BROKER": "actors.broker.DjangoPostgresBroker",
                                "MIDDLEWARE": middleware}  # fmt: skip

    found = reported()

    # Then one warning each, naming it and what is lost, with the fix
    assert [m.id for m in found] == ["stream_analysis.W003"] * 2
    for warning, path in zip(found, missing, strict=True):
        assert path in warning.msg and NEEDED_MIDDLEWARE[path] in warning.msg
        assert f'Add "{path}"' in warning.hint and "broker_settings()" in warning.hint


class OwnRetries(Retries):
    pass


def test_middleware_given_as_a_subclass_or_an_instance_counts_as_the_needed_one(settings):
    middleware = broker_settings()["MIDDLEWARE"]
    middleware[middleware.index("dramatiq.middleware.Retries")] = OwnRetries
    middleware[middleware.index("dramatiq.middleware.CurrentMessage")] = CurrentMessage()
    settings.DRAMATIQ_BROKER = {"BROKER": "actors.broker.DjangoPostgresBroker",
                                "MIDDLEWARE": middleware}  # fmt: skip

    assert reported() == []


@pytest.mark.parametrize("middleware", [None, []], ids=["missing", "empty"])
def test_a_dramatiq_broker_without_middleware_is_e010(settings, middleware):
    broker = {"BROKER": "actors.broker.DjangoPostgresBroker", "OPTIONS": {}}
    if middleware is not None:
        broker["MIDDLEWARE"] = middleware
    settings.DRAMATIQ_BROKER = broker

    assert_reports("stream_analysis.E010")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BATCH_SIZE", 0),
        ("BATCH_SIZE", "x"),
        ("BATCH_SIZE", -1),
        ("BATCH_SIZE", True),
        ("TIME_BUDGET", None),
        ("RETRY_BACKOFF", -0.5),
    ],
)
def test_an_app_setting_that_is_not_a_positive_number_is_e011(settings, name, value):
    setattr(settings, f"STREAM_ANALYSIS_{name}", value)

    message = assert_reports("stream_analysis.E011")
    assert f"STREAM_ANALYSIS_{name}" in message.msg


@pytest.mark.parametrize("schedule", ["*/10 * * * * 30", "often", "* * * *", 10, ""])
def test_a_cleanup_schedule_that_is_not_five_cron_fields_is_e018(settings, schedule):
    settings.STREAM_ANALYSIS_CLEANUP_SCHEDULE = schedule

    message = assert_reports("stream_analysis.E018")
    assert "STREAM_ANALYSIS_CLEANUP_SCHEDULE" in message.msg


@pytest.mark.parametrize("schedule", [None, "*/10 * * * *", "0 3 * * mon", "@hourly"])
def test_a_cleanup_schedule_of_five_fields_an_alias_or_none_passes(settings, schedule):
    settings.STREAM_ANALYSIS_CLEANUP_SCHEDULE = schedule

    assert reported() == []


def test_the_runtime_without_django_dramatiq_is_e012(settings):
    installed = [app for app in settings.INSTALLED_APPS if app != "django_dramatiq"]

    with override_settings(INSTALLED_APPS=installed):
        assert_reports("stream_analysis.E012")


# -- every setting typed and bounded ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("BATCH_SIZE", 1_000_000, "a whole number from 1 to 64"),
        ("BATCH_SIZE", 65, "a whole number from 1 to 64"),
        ("BATCH_SIZE", 2.5, "a whole number from 1 to 64"),
        ("CONCURRENCY", 1_000_000, "a whole number from 1 to 256"),
        ("MAX_ATTEMPTS", 1.5, "a whole number from 1 to 100"),
        ("MAX_FRAMES_PER_TICK", 0, "a whole number from 1 to 1e+07"),
        ("METRICS_WINDOW", -5, "a number above 0 and at most 604800"),
        ("METRICS_WINDOW", "600", "a number above 0 and at most 604800"),
        ("TIME_BUDGET", float("nan"), "a number above 0 and at most 3600"),
        ("RETRY_BACKOFF_MAX", float("inf"), "a number above 0 and at most 604800"),
        ("FUTURE_TOLERANCE", -1, "a number from 0 to 3.1536e+09, or None"),
    ],
)
def test_a_number_setting_of_the_wrong_type_or_out_of_bounds_is_e011(
    settings, name, value, expected
):
    setattr(settings, f"STREAM_ANALYSIS_{name}", value)

    message = assert_reports("stream_analysis.E011")
    assert message.msg == f"STREAM_ANALYSIS_{name} is {value!r}; it must be {expected}."


@pytest.mark.parametrize(
    ("name", "value"),
    [("BATCH_SIZE", 64), ("CONCURRENCY", 1), ("FUTURE_TOLERANCE", None),
     ("FUTURE_TOLERANCE", 0), ("METRICS_WINDOW", 0.5)],
)  # fmt: skip
def test_number_settings_within_their_bounds_pass(settings, name, value):
    setattr(settings, f"STREAM_ANALYSIS_{name}", value)

    assert reported() == []


@pytest.mark.parametrize("value", ["False", "false", 0, None])
def test_metrics_public_that_is_not_a_bool_is_e019(settings, value):
    settings.STREAM_ANALYSIS_METRICS_PUBLIC = value

    message = assert_reports("stream_analysis.E019")
    assert "stay private" in message.msg


@pytest.mark.parametrize("value", [12345, None, b"secret", " secret"])
def test_a_metrics_token_that_is_not_a_plain_string_is_e020(settings, value):
    settings.STREAM_ANALYSIS_METRICS_TOKEN = value

    message = assert_reports("stream_analysis.E020")
    assert "lets nobody in" in message.msg


def test_two_tasks_on_one_frame_model_are_e021(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        "counts": {"name": "Counts", "frame_class_path": "tests.testapp.models.CountFrame"},
        "again": {"name": "Again", "frame_class_path": "tests.testapp.models.CountFrame"},
    }

    message = assert_reports("stream_analysis.E021")
    assert message.msg.startswith(
        "ANALYSIS_TIME_FRAME_TASKS: the tasks 'counts', 'again' all use CountFrame"
    )


@pytest.mark.parametrize("value", ["bad queue", "", "9lives", 5, None])
def test_a_queue_name_dramatiq_refuses_is_e022(settings, value):
    settings.STREAM_ANALYSIS_QUEUE = value

    assert_reports("stream_analysis.E022")


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("a b c d e", "periodiq cannot read it (ValueError: invalid literal for int()"),
        ("@nonsense", "it is not an alias periodiq knows"),
        ("99 * * * *", "its minute field has 99, outside 0-59"),
        ("0 24 * * *", "its hour field has 24, outside 0-23"),
        ("0 0 0 * *", "its day of month field has 0, outside 1-31"),
        ("0 0 * 13 *", "its month field has 13, outside 1-12"),
        ("0 0 * * 8", "its day of week field has 8, outside 0-7"),
        ("0 0 31 2 *", "it never runs: none of its months has any of its days of the month"),
        ("0 0 30,31 2 *", "it never runs"),
        ("*/0 * * * *", "periodiq cannot read it"),
        ("5-2 * * * *", "periodiq cannot read it"),
    ],
)
def test_a_cleanup_schedule_that_periodiq_misreads_is_e018_naming_the_problem(
    settings, schedule, problem
):
    settings.STREAM_ANALYSIS_CLEANUP_SCHEDULE = schedule

    message = assert_reports("stream_analysis.E018")
    assert message.msg.startswith(f"STREAM_ANALYSIS_CLEANUP_SCHEDULE is {schedule!r}: {problem}")


@pytest.mark.parametrize("schedule", ["0 0 29 2 *", "0 0 31 * *", "0 0 31 2 mon", "@daily"])
def test_a_cleanup_schedule_that_runs_some_day_passes(settings, schedule):
    settings.STREAM_ANALYSIS_CLEANUP_SCHEDULE = schedule

    assert reported() == []


@pytest.mark.parametrize(
    ("setting", "value", "expected_id"),
    [("CLEANUP_SCHEDULE", "a b c d e", "E018"), ("CLEANUP_SCHEDULE", "@nonsense", "E018"),
     ("CLEANUP_SCHEDULE", 10, "E018"), ("QUEUE", "bad queue", "E022")],
)  # fmt: skip
def test_manage_py_check_reports_a_bad_runtime_setting_instead_of_crashing(
    tmp_path, setting, value, expected_id
):
    (tmp_path / "bad_settings.py").write_text(
        f"from tests.settings import *\nSTREAM_ANALYSIS_{setting} = {value!r}\n"
    )
    env = worker_env(DJANGO_SETTINGS_MODULE="bad_settings")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])

    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"(stream_analysis.{expected_id}) STREAM_ANALYSIS_{setting} is {value!r}" in (
        result.stderr
    )
