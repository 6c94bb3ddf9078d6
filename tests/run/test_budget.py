"""What a run costs, and a budget that stops it: priced from the tokens the fake OpenAI-compatible server reports,
every request counted at the server. A budget stops the run cleanly (the examples done are written, one line,
exit 1) and ``--resume`` with a higher budget asks only for the rest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from insideLLMs.report.page import usd
from support.cli import dummy_config, qa_rows, run_cli, write_config, write_jsonl

N = 40
#: $1,000 per million tokens, in and out: each token costs $0.001, so costs are easy to check by hand
PRICE = {"input": 1000.0, "output": 1000.0}


def _setup(tmp_path: Path, server: Any, concurrency: int = 1, **runner: Any) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(N))
    config = dummy_config(
        model={"type": "openai", "args": {"model_name": "gpt-test", "api_key": "k", "base_url": server.openai_base_url}}
    )
    config["runner"].update({"concurrency": concurrency, **runner})
    config["pricing"] = {"gpt-test": PRICE}
    write_config(tmp_path / "eval.yaml", config)


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def _costs(run_dir: Path) -> list[float]:
    """Each record's cost, by hand: its tokens at $0.001 each."""
    return [(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]) * 0.001 for r in _records(run_dir)]


@pytest.mark.slow
def test_cost_is_in_the_summary_manifest_results_table_and_tracked_metrics(
    tmp_path: Path, fake_llm_server: Any
) -> None:
    _setup(tmp_path, fake_llm_server)
    result = run_cli("run", "eval.yaml", "--run-dir", "full", "--track", "local", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = _records(tmp_path / "full")
    prompt = sum(r["usage"]["prompt_tokens"] for r in records)
    completion = sum(r["usage"]["completion_tokens"] for r in records)
    assert prompt > N and completion >= N  # the server's own counts: words in, words out
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    expected = round((prompt + completion) * 0.001, 10)
    assert summary["totals"]["tokens"] == {"prompt": prompt, "completion": completion}
    assert summary["totals"]["cost_usd"] == summary["groups"][0]["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert "cost" not in records[0]  # records hold the tokens; cost is derived (the prices are in the manifest)
    manifest = json.loads((tmp_path / "full" / "manifest.json").read_text())
    shipped = Path(__file__).resolve().parents[2] / "src" / "insideLLMs" / "models" / "prices.yaml"
    assert manifest["pricing"] == {
        "date": yaml.safe_load(shipped.read_text())["date"],
        "table_sha256": hashlib.sha256(shipped.read_bytes()).hexdigest(),
        "overrides": {"gpt-test": PRICE},
        "models": {"gpt-test": {**PRICE, "source": "config"}},
    }
    header, row = result.stdout.splitlines()[1], result.stdout.splitlines()[3]
    assert header.split()[-2:] == ["tokens", "cost"]
    assert row.split()[-2:] == [f"{prompt + completion:,}", usd(expected)] and usd(expected) == "$1.28"
    metrics_files = list((tmp_path / "tracking_logs").rglob("metrics.json"))
    metrics = json.loads(metrics_files[0].read_text())
    assert metrics["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert (metrics["prompt_tokens"], metrics["completion_tokens"]) == (prompt, completion)
    assert "judge_cost_usd" not in metrics
    report = (tmp_path / "full" / "report.html").read_text()
    assert f"cost {usd(expected)}" in report


@pytest.mark.slow
def test_a_budget_stops_the_run_and_resume_with_a_higher_one_sends_only_the_rest(
    tmp_path: Path,
    fake_llm_server: Any,
) -> None:
    _setup(tmp_path, fake_llm_server)
    assert run_cli("run", "eval.yaml", "--run-dir", "full", "--no-track", cwd=tmp_path).returncode == 0
    spent = [sum(_costs(tmp_path / "full")[: i + 1]) for i in range(N)]
    budget = (spent[8] + spent[9]) / 2  # reached by the 10th example, not before
    _setup(tmp_path, fake_llm_server, max_cost_usd=budget)
    fake_llm_server.reset()
    stopped = run_cli("run", "eval.yaml", "--run-dir", "cut", "--no-track", cwd=tmp_path)
    assert stopped.returncode == 1, stopped.stderr
    assert fake_llm_server.stats.requests == 10
    [line] = stopped.stderr.splitlines()
    assert line.startswith(
        f"error: budget reached: ${spent[9]:.6f} spent of max_cost_usd ${budget:g} after 10 of 40 "
        "examples; the 10 examples done are in cut; continue with: insidellms run eval.yaml "
        "--run-dir cut --resume --max-cost USD"
    ), line
    cut, full = tmp_path / "cut", tmp_path / "full"
    assert (cut / ".incomplete").exists() and not (cut / "manifest.json").exists()  # as an interrupted run leaves it
    assert (cut / "records.jsonl").read_bytes().splitlines() == (full / "records.jsonl").read_bytes().splitlines()[:10]

    fake_llm_server.reset()  # the same budget again: already spent, nothing is sent
    again = run_cli("run", "eval.yaml", "--run-dir", "cut", "--resume", "--no-track", cwd=tmp_path)
    assert again.returncode == 1 and "after 10 of 40 examples" in again.stderr
    assert fake_llm_server.stats.requests == 0

    fake_llm_server.reset()
    resumed = run_cli(
        "run", "eval.yaml", "--run-dir", "cut", "--resume", "--max-cost", "1000", "--no-track", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert fake_llm_server.stats.requests == N - 10  # nothing asked twice
    for name in ("records.jsonl", "summary.json", "manifest.json"):
        data = (cut / name).read_bytes()
        if name == "summary.json":  # minus its volatile part
            data, expected = (json.loads(data), json.loads((full / name).read_bytes()))
            data.pop("volatile"), expected.pop("volatile")
            assert data == expected
        else:
            assert data == (full / name).read_bytes(), name


@pytest.mark.slow
def test_with_requests_in_flight_a_budget_stops_within_the_concurrency(tmp_path: Path, fake_llm_server: Any) -> None:
    """Requests already in flight when the budget is reached finish and are written (they are paid for); no new
    one starts, so the run goes past the budget by fewer than ``concurrency`` examples."""
    _setup(tmp_path, fake_llm_server, concurrency=4)
    assert run_cli("run", "eval.yaml", "--run-dir", "full", "--no-track", cwd=tmp_path).returncode == 0
    spent = [sum(_costs(tmp_path / "full")[: i + 1]) for i in range(N)]
    fake_llm_server.reset()
    stopped = run_cli(
        "run", "eval.yaml", "--run-dir", "cut", "--no-track", "--max-cost", f"{spent[19]:.9f}", cwd=tmp_path
    )
    assert stopped.returncode == 1 and "budget reached" in stopped.stderr
    written = len(_records(tmp_path / "cut"))
    assert 20 <= written < 20 + 4 and fake_llm_server.stats.requests == written
    fake_llm_server.reset()
    resumed = run_cli("run", "eval.yaml", "--run-dir", "cut", "--resume", "--no-track", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert fake_llm_server.stats.requests == N - written
    assert (tmp_path / "cut" / "records.jsonl").read_bytes() == (tmp_path / "full" / "records.jsonl").read_bytes()


def test_the_python_api_stops_at_a_budget_too() -> None:
    from insideLLMs import ProbeRunner, get_model, get_probe
    from insideLLMs.models import PriceTable
    from insideLLMs.run import BudgetReached

    prices = PriceTable.load({"m": {"input": 1000.0, "output": 1000.0}})  # $0.001 a token

    def runner(budget: float | None) -> ProbeRunner:
        return ProbeRunner(
            get_model("dummy", model_name="m"), get_probe("logic"), concurrency=1, prices=prices, max_cost_usd=budget
        )

    full = runner(None).run()
    costs = [(r.usage["prompt_tokens"] + r.usage["completion_tokens"]) * 0.001 for r in full]  # type: ignore[index]
    spent = [sum(costs[: i + 1]) for i in range(len(costs))]
    with pytest.raises(BudgetReached) as stopped:
        runner((spent[2] + spent[3]) / 2).run()
    assert (stopped.value.done, stopped.value.total) == (4, len(full))
    assert stopped.value.spent == pytest.approx(spent[3], abs=1e-9)
