"""insideLLMs: run prompt sets through probes against LLMs and record deterministic run directories.

Public API (imported lazily, so the CLI starts fast)::

    from insideLLMs import ProbeRunner, PromptSet, get_model, get_probe
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ProbeRunner": "insideLLMs.run",
    "Harness": "insideLLMs.run",
    "RunSettings": "insideLLMs.run",
    "RunAborted": "insideLLMs.run",
    "PromptSet": "insideLLMs.datasets",
    "Example": "insideLLMs.datasets",
    "get_model": "insideLLMs.models",
    "Model": "insideLLMs.models",
    "Completion": "insideLLMs.models",
    "get_probe": "insideLLMs.probes",
    "Probe": "insideLLMs.probes",
    "Verdict": "insideLLMs.probes",
    "Record": "insideLLMs.rundir",
    "RunReader": "insideLLMs.rundir",
    "load_config": "insideLLMs.config",
}

__all__ = [*_EXPORTS, "__version__"]

#: The one place the version is written; pyproject.toml reads it (no importlib.metadata at start-up).
__version__ = "0.1.0"

if TYPE_CHECKING:
    from insideLLMs.config import load_config
    from insideLLMs.datasets import Example, PromptSet
    from insideLLMs.models import Completion, Model, get_model
    from insideLLMs.probes import Probe, Verdict, get_probe
    from insideLLMs.run import Harness, ProbeRunner, RunAborted, RunSettings
    from insideLLMs.rundir import Record, RunReader


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'insideLLMs' has no attribute {name!r}")
