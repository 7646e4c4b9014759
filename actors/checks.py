"""System checks of the runtime's wiring."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core import checks

from stream_analysis.checks import error


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
