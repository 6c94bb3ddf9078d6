"""What every ``diff_runs().to_dict()`` holds that tests compare whole: the default lower-is-better suffixes and
the cost fields of a run without a judge."""

from __future__ import annotations

SUFFIXES = [
    "error",
    "errors",
    "loss",
    "latency",
    "latency_ms",
    "bias",
    "toxicity",
    "distance",
    "perplexity",
    "timed_out",
    "violations",
]
NO_JUDGE = {"judge_prompt_tokens": None, "judge_completion_tokens": None, "cost_usd": None, "judge_cost_usd": None}
