"""What a tracked evaluation records, worked out from what the runner says: the run's params and
default name, its tags, one step of metrics per example, and the final metrics from the summary.

The per-example series are named ``example/<name>`` (``EXAMPLE_SERIES_PREFIX``) and the run-level
metrics bare (``pass_rate``; ``<model>/<probe>/pass_rate`` per model × probe of a grid), so no
backend's run view mixes an example's last value with the run's result.

Pure functions, shared by the listener (_listener.py) and ``tracking push`` (_push.py), so a run
tracked live and the same run pushed (or caught up after a crash) afterwards log the same things.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Mapping

from insideLLMs.events import RunStarted
from insideLLMs.stats import percentile
from insideLLMs.tracking.sink import EXAMPLE_SERIES_PREFIX

_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CIRCLECI", "TF_BUILD")
_NUMBERS = (float, int, bool)
_LATENCY, _SUCCESS, _PASSED = (EXAMPLE_SERIES_PREFIX + n for n in ("latency_ms", "success", "passed"))


def environment_tags() -> dict[str, str]:
    ci = any(os.environ.get(v) for v in _CI_VARS)
    return {"environment": "ci" if ci else "local", "python": platform.python_version()}


def _joined(values: list[Any]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if v is not None))


def run_params(event: RunStarted) -> dict[str, Any]:
    """The flat parameters of a run, from what the runner says about it."""
    params: dict[str, Any] = {}
    models, probes, datasets = event.models, event.probes, event.datasets
    params["model_name"] = _joined([m.get("id") for m in models])
    params["provider"] = _joined([m.get("provider") for m in models])
    if len(models) == 1:
        for key, value in (models[0].get("params") or {}).items():
            params[f"model.{key}"] = value
    params["probe_type"] = _joined([p.get("id") for p in probes])
    if len(probes) == 1:
        params["probe_version"] = probes[0].get("version")
        for key, value in (probes[0].get("params") or {}).items():
            params[f"probe.{key}"] = value
    params.update(event.generation)
    if len(datasets) == 1:
        d = datasets[0]
        params.update(dataset_name=d.get("name"), dataset_path=d.get("source"), dataset_hash=d.get("hash"),
                      dataset_size=d.get("size"))
    elif datasets:
        params["dataset_name"] = _joined([d.get("name") for d in datasets])
        params["dataset_size"] = sum(d.get("size") or 0 for d in datasets)
        for d in datasets:
            prefix = f"dataset.{d.get('probe') or d.get('name')}"
            params.update({f"{prefix}.name": d.get("name"), f"{prefix}.path": d.get("source"),
                           f"{prefix}.hash": d.get("hash"), f"{prefix}.size": d.get("size")})
    params.update(event.runner)
    params["run_id"] = event.run_id
    params["run_dir"] = str(event.run_dir) if event.run_dir else None
    params["total_examples"] = event.total
    if event.shard:
        params["shard"] = event.shard
    params["insidellms_version"] = event.library_version
    return params


def default_run_name(event: RunStarted) -> str:
    probe = event.probes[0]["id"] if event.probes else "run"
    model = event.models[0]["id"] if event.models else "model"
    more = len(event.models) * len(event.probes) - 1
    return f"{probe}-{model}" + (f"+{more}" if more > 0 else "")


def shard_suffix(event: RunStarted) -> str:
    """`` [shard I/N]`` after a shard's run name (whatever names it), so its N runs read apart."""
    return f" [shard {event.shard}]" if event.shard else ""


def shard_tags(event: RunStarted) -> dict[str, str]:
    """A shard's tags: ``shard`` ("I/N") and ``shard_of`` (the whole run's run_id), so a dashboard groups the
    N tracked shards of one run and tells them apart."""
    return {"shard": event.shard or "", "shard_of": event.run_id}


def example_metrics(status: str, passed: bool | None, scores: Mapping[str, Any],
                    latency_ms: float | None) -> dict[str, float]:
    """One example's step: ``example/latency_ms``, ``example/success`` (0/1), ``example/passed`` (0/1)
    and ``example/<score>`` for every finite numeric score. The latency is rounded as timings.jsonl
    holds it, so a run tracked live and the same run pushed later log the same values."""
    metrics: dict[str, float] = {}
    if latency_ms is not None:
        metrics[_LATENCY] = round(float(latency_ms), 3)
    metrics[_SUCCESS] = 1.0 if status == "success" else 0.0
    if passed is not None:
        metrics[_PASSED] = 1.0 if passed else 0.0
    for name, value in scores.items():
        if type(value) in _NUMBERS and value - value == 0:  # finite numbers and bools
            metrics[EXAMPLE_SERIES_PREFIX + name] = float(value)
    return metrics


def _group_metrics(prefix: str, group: dict[str, Any], latency: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("n", "success_rate", "error_count", "pass_rate", "passed"):
        if group.get(key) is not None:
            # the count of passed examples (``passed`` alone would read like the 0/1 of one example)
            out[f"{prefix}{'passed_count' if key == 'passed' else key}"] = group[key]
    for name, mean in (group.get("scores") or {}).items():
        out[f"{prefix}{name}_mean"] = mean
    intervals = group.get("intervals") or {}
    for key in ("success_rate", "pass_rate"):
        out.update(_interval_metrics(f"{prefix}{key}", intervals.get(key)))
    for name, interval in (intervals.get("scores") or {}).items():
        out.update(_interval_metrics(f"{prefix}{name}_mean", interval))
    epochs = group.get("epochs")
    if epochs:  # a run with epochs: how many examples, and how much one example's epochs varied
        out[f"{prefix}epochs"] = epochs["k"]
        out[f"{prefix}examples"] = epochs["examples"]
        for metric, variance in (epochs.get("within_variance") or {}).items():
            out[f"{prefix}{metric if metric == 'pass_rate' else metric + '_mean'}_within_variance"] = variance
    tokens = group.get("tokens") or {}
    if tokens:
        out[f"{prefix}prompt_tokens"] = tokens.get("prompt", 0)
        out[f"{prefix}completion_tokens"] = tokens.get("completion", 0)
        out[f"{prefix}total_tokens"] = tokens.get("prompt", 0) + tokens.get("completion", 0)
    judge_tokens = group.get("judge_tokens")
    if judge_tokens:
        out[f"{prefix}judge_prompt_tokens"] = judge_tokens.get("prompt", 0)
        out[f"{prefix}judge_completion_tokens"] = judge_tokens.get("completion", 0)
    for key in ("cost_usd", "judge_cost_usd"):  # an unknown cost (no price) is not logged: never a 0 that is not one
        if group.get(key) is not None:
            out[f"{prefix}{key}"] = group[key]
    for stat in ("p50", "p95", "mean"):
        if latency and latency.get(stat) is not None:
            out[f"{prefix}latency_{stat}_ms"] = latency[stat]
    return out


INTERVAL_SUFFIXES = ("_ci_low", "_ci_high", "_se")


def _interval_metrics(name: str, interval: dict[str, Any] | None) -> dict[str, float]:
    """``<name>_ci_low``, ``<name>_ci_high`` and ``<name>_se`` from summary.json's interval of ``name``."""
    if not interval:
        return {}
    return {f"{name}_ci_low": interval["low"], f"{name}_ci_high": interval["high"], f"{name}_se": interval["se"]}


def final_metrics(summary: dict[str, Any], latencies: list[float]) -> dict[str, float]:
    """success_rate, error_count, pass_rate, token totals, cost_usd and judge_cost_usd (when known), latency
    p50/p95, and per model×probe keys."""
    volatile = summary.get("volatile") or {}
    per_group_latency = volatile.get("latency_ms") or {}
    groups = summary.get("groups") or []
    if len(groups) == 1:
        g = groups[0]
        overall = per_group_latency.get(f"{g['model']}/{g['probe']}")
    else:
        xs = sorted(latencies)
        overall = {"p50": round(percentile(xs, 50), 3), "p95": round(percentile(xs, 95), 3),
                   "mean": round(sum(xs) / len(xs), 3)} if xs else None
    metrics = _group_metrics("", summary.get("totals") or {}, overall)
    if len(groups) > 1:
        for g in groups:
            key = f"{g['model']}/{g['probe']}"
            metrics.update(_group_metrics(f"{key}/", g, per_group_latency.get(key)))
    if volatile.get("wall_time_s") is not None:
        metrics["wall_time_s"] = volatile["wall_time_s"]
    return metrics
