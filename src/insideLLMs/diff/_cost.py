"""What the two runs of a diff cost: tokens and USD of both sides and the change, per model × probe and in total.

Read from each run's summary.json (its deterministic part), which priced the tokens at the prices that run
used (manifest.json). A run without summary.json (interrupted) has unknown cost and tokens; an unknown on
either side makes the change unknown too, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from insideLLMs.rundir import RunDirError, RunReader

#: what each side says, as summary.json names it: token counts, then costs in USD
TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "judge_prompt_tokens", "judge_completion_tokens")
COST_KEYS = ("cost_usd", "judge_cost_usd")


@dataclass(frozen=True, slots=True)
class CostRow:
    """One model × probe (or the total, ``model`` "total"): each side's figures (None: unknown) and the change."""

    model: str
    probe: str
    baseline: dict[str, Any] | None
    candidate: dict[str, Any] | None

    @property
    def change(self) -> dict[str, Any]:
        b, c = self.baseline or {}, self.candidate or {}
        out: dict[str, Any] = {}
        for key in (*TOKEN_KEYS, *COST_KEYS):
            bv, cv = b.get(key), c.get(key)
            out[key] = None if bv is None or cv is None else (round(cv - bv, 10) if key in COST_KEYS else cv - bv)
        return out

    @property
    def judged(self) -> bool:
        return any((side or {}).get("judge_prompt_tokens") is not None for side in (self.baseline, self.candidate))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "probe": self.probe,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "change": self.change,
        }


def side_tokens(side: dict[str, Any] | None, judge: bool = False) -> int | None:
    """A side's prompt + completion tokens (the judges' with ``judge``), None when unknown."""
    if side is None:
        return None
    keys = ("judge_prompt_tokens", "judge_completion_tokens") if judge else ("prompt_tokens", "completion_tokens")
    values = [side.get(k) for k in keys]
    return None if None in values else sum(values)  # type: ignore[arg-type]


def _figures(groups: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The summed figures of summary.json groups (several only when one diff group spans them)."""
    if not groups:
        return None
    out: dict[str, Any] = {key: 0 for key in TOKEN_KEYS} | {key: 0.0 for key in COST_KEYS}
    judged = False
    for g in groups:
        tokens, judge = g.get("tokens") or {}, g.get("judge_tokens")
        out["prompt_tokens"] += tokens.get("prompt", 0)
        out["completion_tokens"] += tokens.get("completion", 0)
        if judge is not None:
            judged = True
            out["judge_prompt_tokens"] += judge.get("prompt", 0)
            out["judge_completion_tokens"] += judge.get("completion", 0)
        for key in COST_KEYS:
            value = g.get(key, 0.0 if key == "judge_cost_usd" and judge is None else None)
            out[key] = None if value is None or out[key] is None else round(out[key] + value, 10)
    if not judged:
        out["judge_prompt_tokens"] = out["judge_completion_tokens"] = out["judge_cost_usd"] = None
    return out


def _summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return RunReader(run_dir).summary
    except RunDirError:  # a malformed summary.json: its figures are unknown
        return None


def compare_costs(
    baseline: Path, candidate: Path, groups: list[tuple[str, str]], match_on: Literal["key", "example"]
) -> list[CostRow]:
    """A ``CostRow`` per diff group ((model label, probe)), then the total row."""
    summaries = (_summary(baseline), _summary(candidate))

    def side(summary: dict[str, Any] | None, model: str, probe: str) -> dict[str, Any] | None:
        if summary is None:
            return None
        return _figures(
            [
                g
                for g in summary.get("groups") or []
                if g.get("probe") == probe and (match_on == "example" or g.get("model") == model)
            ]
        )

    rows = [
        CostRow(model, probe, side(summaries[0], model, probe), side(summaries[1], model, probe))
        for model, probe in groups
    ]
    totals = [None if s is None else _figures([s.get("totals") or {}]) for s in summaries]
    rows.append(CostRow("total", "", totals[0], totals[1]))
    return rows


__all__ = ["COST_KEYS", "CostRow", "TOKEN_KEYS", "compare_costs", "side_tokens"]
