"""Graceful restarts: on SIGTERM a worker stops claiming frames, commits the batch under
way, and exits 0 (docs/deployment.md).

Platforms stop a worker with SIGTERM, and SIGKILL it some seconds later (Heroku
and systemd: 30 s by default at most 90 s; Kubernetes: 30 s). Dramatiq stops its
worker processes gracefully on a first SIGTERM but kills them at a second, and a
worker process gets two when the signal goes to the whole process group (honcho,
Heroku, systemd's default KillMode): one from the platform and one forwarded by
Dramatiq's main process. :class:`GracefulShutdown` treats a second SIGTERM that
comes within :data:`DUPLICATE_WINDOW` seconds of the first as the same request,
and makes running calculate messages stop claiming (:func:`requested`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import dramatiq

logger = logging.getLogger(__name__)

#: Seconds after a first SIGTERM during which another is the same request, not a kill.
DUPLICATE_WINDOW = 2.0

_stopping = threading.Event()


def requested() -> bool:
    """True once this worker process is shutting down: claim no more frames."""
    return _stopping.is_set()


def forgiving_handler(original: Any) -> Any:
    """A SIGTERM handler that passes the first signal to ``original`` (Dramatiq's: stop
    gracefully), ignores duplicates within :data:`DUPLICATE_WINDOW` seconds, and
    passes a later one on (Dramatiq's second: stop now)."""
    first: float | None = None

    def handle(signum: int, frame: Any) -> None:
        nonlocal first
        _stopping.set()
        current = time.monotonic()
        if first is not None and current - first < DUPLICATE_WINDOW:
            logger.info("SIGTERM again (the process group's and Dramatiq's): already stopping")
            return
        if first is None:
            first = current
            logger.info("SIGTERM: claiming no more frames; the batch under way commits")
        if callable(original):
            original(signum, frame)

    return handle


class GracefulShutdown(dramatiq.Middleware):
    """Installs :func:`forgiving_handler` in each worker process (its main thread boots
    the worker) and marks the process stopping when Dramatiq shuts the worker down."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, forgiving_handler(signal.getsignal(signal.SIGTERM)))

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping.set()
