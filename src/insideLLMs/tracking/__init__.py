"""Experiment tracking: one API for local files, Weights & Biases, MLflow and TensorBoard.

```python
from insideLLMs.tracking import get_tracker

tracker = get_tracker("mlflow", tracking_uri="http://127.0.0.1:5000", experiment_name="llm-eval")
with tracker.start_run(name="bias-test", tags=["v1"]):
    tracker.log_params({"model": "gpt-4o", "temperature": 0.7})
    tracker.log_metrics({"latency_ms": 12.5}, step=3)
    tracker.log_artifact("results", results)
```

Every call is redacted and appended to a local journal (``tracking_logs/run_<id>/``) first;
remote backends are fed from it in the background, so they never block or fail the evaluation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from insideLLMs.config import TrackingConfig
    from insideLLMs.tracking._tracker import Tracker

# Re-exports, imported on first use: the delivery process imports this package and must start fast.
_EXPORTS = {
    "BACKENDS": "insideLLMs.tracking.delivery._worker",
    "BackendUnavailable": "insideLLMs.tracking.delivery._worker",
    "Event": "insideLLMs.tracking.sink",
    "Pending": "insideLLMs.tracking.sink",
    "Sink": "insideLLMs.tracking.sink",
    "SinkContext": "insideLLMs.tracking.sink",
    "SinkError": "insideLLMs.tracking.sink",
    "REDACTED": "insideLLMs.secrets",
    "redact": "insideLLMs.secrets",
    "Tracker": "insideLLMs.tracking._tracker",
    "TrackingRun": "insideLLMs.tracking._run",
    "TrackingConfig": "insideLLMs.config",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def get_tracker(
    backend: str | Sequence[str] = "local",
    *,
    echo: Callable[[str], None] = _stderr,
    **options: Any,
) -> Tracker:
    """A tracker for ``backend``: ``"local"``, ``"wandb"``, ``"mlflow"``, ``"tensorboard"``, or a list of them.

    ``options`` are the fields of the ``tracking:`` config block: ``project``, ``entity``, ``tags``,
    ``output_dir``, ``tracking_uri``, ``experiment_name``, ``log_dir``, ``run_name``, ``mode``,
    ``flush_timeout_s``. Raises ``ValueError`` for an unknown backend and ``BackendUnavailable``
    (an ``ImportError``) naming the extra to install when a backend's library is missing.
    """
    from insideLLMs.config import SchemaError
    from insideLLMs.config import TrackingConfig
    from insideLLMs.tracking._tracker import Tracker

    names = [backend] if isinstance(backend, str) else list(backend)
    _check_backends(names)
    try:
        config = TrackingConfig.from_options({"backend": names[0] if isinstance(backend, str) else names, **options})
    except SchemaError as exc:
        known = ", ".join(n for n in TrackingConfig.option_names() if n != "backend")
        raise TypeError(f"get_tracker(): {exc} (options: {known})") from None
    return Tracker(config, echo=echo)


def tracker_from_config(config: TrackingConfig, *, echo: Callable[[str], None] = _stderr) -> Tracker:
    """A tracker for a ``tracking:`` config block (backends checked as in ``get_tracker``)."""
    from insideLLMs.tracking._tracker import Tracker

    _check_backends(config.backends)
    return Tracker(config, echo=echo)


def _check_backends(names: Sequence[str]) -> None:
    """Unknown or uninstalled backends fail here; local-only tracking never imports the delivery code."""
    if any(name != "local" for name in names):
        from insideLLMs.tracking.delivery._worker import check_backend

        for name in names:
            check_backend(name)


__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "Event",
    "Pending",
    "REDACTED",
    "Sink",
    "SinkContext",
    "SinkError",
    "Tracker",
    "TrackingConfig",
    "TrackingRun",
    "get_tracker",
    "redact",
    "tracker_from_config",
]
