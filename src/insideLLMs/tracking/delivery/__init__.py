"""Remote delivery: journal events to the backends' sinks, batched, retried, resumable, in a process of its own; and ``tracking sync``."""

from __future__ import annotations

from insideLLMs.tracking.delivery._process import DeliveryProcess
from insideLLMs.tracking.delivery._sync import delivery_status, sync
from insideLLMs.tracking.delivery._worker import REMOTE_BACKENDS, SINK_OPTIONS, BackendUnavailable, DeliveryMark, check_backend, sink_name

__all__ = [
    "BackendUnavailable",
    "DeliveryMark",
    "DeliveryProcess",
    "REMOTE_BACKENDS",
    "SINK_OPTIONS",
    "check_backend",
    "delivery_status",
    "sink_name",
    "sync",
]
