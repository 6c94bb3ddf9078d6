"""The per-example records: the deterministic ``Record`` and its volatile ``Timing``.

A ``Record`` holds no wall-clock value, so two runs with the same inputs and answers give the
same bytes. Everything that varies run to run (latency, attempts, cache hits) is a ``Timing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: reading records needs none of the model machinery
    from insideLLMs.models.base import Status

RECORD_FIELDS = (
    "run_id", "model", "probe", "example_id", "input", "messages", "output",
    "scores", "passed", "status", "error", "usage",
)


@dataclass(slots=True)
class Record:
    run_id: str
    model: dict[str, Any]
    probe: dict[str, Any]
    example_id: str
    input: dict[str, Any]
    messages: list[Any]
    output: str | list[str] | None
    scores: dict[str, Any]
    passed: bool | None
    status: Status
    error: dict[str, str] | None = None
    usage: dict[str, int] | None = None
    served_model: str | None = None
    system_fingerprint: str | None = None
    #: each judge scorer's grade, reason and usage (apart from the graded model's ``usage``); only when judged
    judge: dict[str, Any] | None = None
    cluster: str | None = None  # the example's cluster (``dataset.cluster``); written only when the set names one
    epoch: int | None = None  # 0..k-1 with ``runner.epochs: k`` > 1; written only then (one epoch keeps its bytes)

    def to_dict(self) -> dict[str, Any]:
        d = {  # RECORD_FIELDS, spelled out: this runs once per example
            "run_id": self.run_id, "model": self.model, "probe": self.probe, "example_id": self.example_id,
            "input": self.input, "messages": self.messages, "output": self.output, "scores": self.scores,
            "passed": self.passed, "status": self.status, "error": self.error, "usage": self.usage,
        }
        if self.served_model is not None:
            d["served_model"] = self.served_model
        if self.system_fingerprint is not None:
            d["system_fingerprint"] = self.system_fingerprint
        if self.judge is not None:
            d["judge"] = self.judge
        if self.cluster is not None:
            d["cluster"] = self.cluster
        if self.epoch is not None:
            d["epoch"] = self.epoch
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Record":
        return cls(**{k: d.get(k) for k in (*RECORD_FIELDS, "served_model", "system_fingerprint", "judge", "cluster",
                                                   "epoch")})

    @property
    def key(self) -> tuple[str, str, str] | tuple[str, str, str, int]:
        """(model id, probe id, example id[, epoch]): how records are matched across runs (the epoch only in a
        run with epochs)."""
        if self.epoch is None:
            return (self.model["id"], self.probe["id"], self.example_id)
        return (self.model["id"], self.probe["id"], self.example_id, self.epoch)


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """A record's or a timing's key as a dict: (model id, probe id, example id, epoch or None)."""
    model, probe = record.get("model"), record.get("probe")
    return (model.get("id") if isinstance(model, dict) else model, probe.get("id") if isinstance(probe, dict) else probe,
            record.get("example_id"), record.get("epoch"))


@dataclass(slots=True)
class Timing:
    model_id: str
    probe_id: str
    example_id: str
    latency_ms: float
    attempts: int
    cache_hit: bool
    started_at: float
    finished_at: float
    epoch: int | None = None  # as the record's

    def to_dict(self) -> dict[str, Any]:
        d = {
            "model": self.model_id,
            "probe": self.probe_id,
            "example_id": self.example_id,
            "latency_ms": round(self.latency_ms, 3),
            "attempts": self.attempts,
            "cache_hit": self.cache_hit,
            "started_at": round(self.started_at, 6),
            "finished_at": round(self.finished_at, 6),
        }
        if self.epoch is not None:
            d["epoch"] = self.epoch
        return d
