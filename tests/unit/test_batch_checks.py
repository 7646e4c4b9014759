"""Mistakes on the batch path (ModelStream, AGGREGATES, BATCH_READ) fail ``manage.py check``."""

from __future__ import annotations

import pytest
from django.db import models

import stream_analysis
from tests.testapp.models import Reading, ReadingStream
from tests.unit.test_checks import assert_reports, frame_class, reported  # noqa: F401


def stream(**attrs: object) -> type:
    """A ModelStream over Reading with ``attrs`` changed."""
    body = {"model": Reading, "time_field": "taken_at", **attrs}
    return type("ProbeStream", (stream_analysis.ModelStream,), body)


def counted(**attrs: object) -> dict[str, object]:
    """Attributes of a frame class counting readings with AGGREGATES."""
    return {
        "STREAM_CLASS": ReadingStream,
        "AGGREGATES": {"reading_count": models.Count("pk")},
        "reading_count": models.IntegerField(default=0),
        **attrs,
    }


def test_a_well_configured_batch_path_passes(frame_class):  # noqa: F811
    frame_class(**counted(STREAM_CLASS=stream(arrival_field="arrived_at"), BATCH_READ=False))

    assert reported() == []


@pytest.mark.parametrize(
    "attrs, says",
    [
        ({"model": None}, "not a Django model"),
        ({"time_field": ""}, "not a field name"),
        ({"time_field": "taken"}, "is not a field of Reading"),
        ({"time_field": "value"}, "is a IntegerField, not a DateTimeField"),
        ({"arrival_field": "tag"}, "is a CharField, not a DateTimeField"),
    ],
    ids=["no model", "no time field", "unknown field", "not a datetime", "bad arrival field"],
)
def test_a_modelstream_with_a_bad_attribute_is_e030(frame_class, attrs, says):  # noqa: F811
    frame_class(**counted(STREAM_CLASS=stream(**attrs)))

    message = assert_reports("stream_analysis.E030")
    assert says in message.msg
    if attrs.get("model", Reading) is Reading:
        assert "taken_at" in message.hint  # names the DateTimeFields to choose from


def test_aggregates_beside_a_calculate_method_is_e031(frame_class):  # noqa: F811
    frame_class(**counted(calculate=lambda self, data: None))

    message = assert_reports("stream_analysis.E031")
    assert "calculate()" in message.msg


def test_an_aggregates_key_that_is_not_a_field_is_e032(frame_class):  # noqa: F811
    frame_class(**counted(AGGREGATES={"readings": models.Count("pk")}))

    message = assert_reports("stream_analysis.E032")
    assert "'readings' is not a field" in message.msg
    assert "reading_count" in message.hint


def test_an_aggregates_key_the_framework_writes_is_e032(frame_class):  # noqa: F811
    frame_class(**counted(AGGREGATES={"attempts": models.Count("pk")}))

    assert_reports("stream_analysis.E032")


def test_sql_text_as_an_aggregate_is_e032(frame_class):  # noqa: F811
    frame_class(**counted(AGGREGATES={"reading_count": "count(*)"}))

    message = assert_reports("stream_analysis.E032")
    assert "not a Django aggregate" in message.msg


def test_aggregates_on_a_stream_that_is_not_a_modelstream_is_e033(frame_class):  # noqa: F811
    from tests.testapp.models import ItemStream

    frame_class(**counted(STREAM_CLASS=ItemStream))

    message = assert_reports("stream_analysis.E033")
    assert "ModelStream" in message.hint


def test_batch_read_on_a_stream_that_is_not_a_modelstream_is_e034(frame_class):  # noqa: F811
    frame_class(BATCH_READ=True)  # the fixture's stream is ItemStream

    assert_reports("stream_analysis.E034")


@pytest.mark.parametrize(
    "name, value",
    [
        ("AGGREGATE_BATCH_SIZE", 0),
        ("AGGREGATE_BATCH_SIZE", 1_000_000),
        ("BATCH_READ_MAX_ROWS", "9"),
    ],
)
def test_a_batch_size_out_of_bounds_is_e035(settings, name, value):
    settings.ANALYSIS_TIME_FRAME_TASKS = {}
    setattr(settings, f"STREAM_ANALYSIS_{name}", value)

    message = assert_reports("stream_analysis.E035")
    assert name in message.msg
