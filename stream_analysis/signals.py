"""Signals the domain sends so that the runtime (``actors``) can react.

The domain never imports the runtime; the runtime connects to these.
"""

from django.dispatch import Signal

#: Sent with ``task`` when it should be ticked now (start, backfill,
#: recompute), not at the next minute.
tick_requested = Signal()

#: Sent with ``task`` by ``AnalysisTask.clear_queue()``; receivers delete the
#: task's queued messages and return how many they deleted.
queue_cleared = Signal()

#: Sent by the deprecated ``stream_analysis.cleanup.delay()``; a receiver queues one
#: run of the stream cleanup in a worker.
cleanup_requested = Signal()
