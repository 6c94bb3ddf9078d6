"""Journal-like event sequences for sink tests: what a tracked evaluation sends to a backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from insideLLMs.tracking.sink import Event

LONG_PROMPT = "You are a careful grader. " * 60  # > 500 chars: goes in as an artifact + hash param


class EventLog:
    """Builds a journal-like event sequence (dense seq numbers) for one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.events: list[Event] = []

    def add(self, kind: str, data: dict[str, Any]) -> Event:
        event = Event(len(self.events) + 1, kind, 1_700_000_000.0 + len(self.events), data)  # type: ignore[arg-type]
        self.events.append(event)
        return event

    def file(self, kind: str, name: str, rel: str, content: str) -> None:
        path = self.run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        self.add(kind, {"name": name, "path": rel, "sha256": "x", "size": path.stat().st_size})


def sample_run(run_dir: Path, steps: int = 600, name: str = "bias-test") -> EventLog:
    """A run like a tracked evaluation: params, per-step metrics (2 × ``steps`` points, more than one
    log_batch), final metrics, tags, an artifact, the per-example table, and the end."""
    log = EventLog(run_dir)
    log.add("run_start", {"name": name, "run_key": run_dir.name, "tags": {"v1": "", "team": "eval"},
                          "project": None, "experiment": None})
    log.add("params", {"params": {"model": "gpt-4o", "temperature": 0.7, "max_tokens": 1000, "seed": None,
                                  "prompt_template": LONG_PROMPT, "bad:key@x": "ok"}})
    for step in range(steps):
        log.add("metrics", {"metrics": {"example/latency_ms": 10.0 + step % 7, "example/success": float(step % 3 != 0)},
                            "step": step})
    # run-level values; one for a name that was a series so far (a sink puts it after the series' last step)
    log.add("metrics", {"metrics": {"success_rate": 0.66, "error_count": 2.0, "example/success": 0.66}, "step": None})
    log.add("metrics", {"metrics": {"custom_score": 0.93}, "step": None})
    log.add("metrics", {"metrics": {"custom_score": 0.95}, "step": None})
    log.add("tags", {"tags": {"environment": "ci"}})
    log.file("artifact", "results", "artifacts/results.json", json.dumps({"n": steps}))
    rows = [{"model": "dummy", "probe": "logic", "example_id": f"ex{i}", "status": "success",
             "passed": i % 2 == 0, "output": f"answer {i}", "scores.correct": i % 2 == 0,
             "input.prompt": f"question {i}", "input.answer": f"expected {i}"} for i in range(5)]
    log.file("table", "records", "artifacts/records.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    log.add("run_end", {"status": "finished"})
    return log


def expected_history(log: EventLog) -> dict[str, list[tuple[int, float]]]:
    """Every metric point per key as (step, value); an unstepped value goes one step after the key's last."""
    counters: dict[str, int] = {}
    out: dict[str, list[tuple[int, float]]] = {}
    for e in log.events:
        if e.kind != "metrics":
            continue
        for key, value in e.data["metrics"].items():
            step = counters.get(key, 0) if e.data["step"] is None else e.data["step"]
            counters[key] = max(counters.get(key, 0), step + 1)  # unstepped: after the last step
            out.setdefault(key, []).append((step, value))
    return {k: sorted(v) for k, v in out.items()}
