"""``runner.epochs`` / ``--epochs``: each example asked k times, one record per epoch, against the fake server (which
counts requests and picks answers by seed): order, seeds, the reduced summary, resume, the cache, and one epoch
changing nothing (pinned to the bytes main wrote before epochs existed)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from insideLLMs import ProbeRunner, PromptSet
from insideLLMs.config import load_config
from insideLLMs.models import get_model
from insideLLMs.probes import get_probe
from insideLLMs.report import rebuild_summary
from insideLLMs.run import build_harness
from insideLLMs.rundir import summarize
from support.cli import run_cli, write_config, write_jsonl

ONE_EPOCH = Path(__file__).parent / "one_epoch"
N, K = 4, 3


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_digest(run_dir: Path) -> dict[str, str]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.pop("library_version")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("volatile")
    return {
        "run_id": manifest["run_id"],
        "records.jsonl": _sha((run_dir / "records.jsonl").read_bytes()),
        "manifest.json (without library_version)": _sha(json.dumps(manifest, sort_keys=True).encode()),
        "summary.json (without volatile)": _sha(json.dumps(summary, sort_keys=True).encode()),
        "config.resolved.yaml": _sha((run_dir / "config.resolved.yaml").read_bytes()),
    }


@pytest.mark.parametrize("epochs", [None, 1])
def test_one_epoch_writes_the_bytes_main_wrote_before_epochs(tmp_path: Path, epochs: int | None) -> None:
    """The fixture's expected.json holds the hashes of the files main (5a37020) wrote for this config: two models,
    a prompt probe with two scorers and a cluster field, a built-in probe. Default or ``epochs=1``: the same bytes,
    so existing baselines keep diffing clean. (records.jsonl, the run id and the resolved config are 5a37020's;
    manifest.json and summary.json were pinned again when epochs landed beside the price table, which added
    ``pricing`` and ``cost_usd``, and t intervals for means, and nothing else, checked field by field.)"""
    project = tmp_path / "project"
    shutil.copytree(ONE_EPOCH, project)
    harness = build_harness(load_config(project / "eval.yaml"), epochs=epochs, run_dir=tmp_path / "run")
    harness.run()
    assert _files_digest(tmp_path / "run") == json.loads((ONE_EPOCH / "expected.json").read_text())
    assert "epoch" not in (tmp_path / "run" / "timings.jsonl").read_text()


def _project(tmp_path: Path, server: Any, **runner: Any) -> Path:
    write_jsonl(
        tmp_path / "data.jsonl", [{"id": f"e{i}", "prompt": f"question {i}", "answer": "yes"} for i in range(N)]
    )
    write_config(
        tmp_path / "eval.yaml",
        {
            "model": {
                "type": "openai",
                "args": {"model_name": "m", "api_key": "k", "base_url": server.openai_base_url},
            },
            "probe": {"type": "factuality"},
            "dataset": {"format": "jsonl", "path": "data.jsonl"},
            "generation": {"temperature": 0.7, "max_tokens": 16},
            "runner": {"concurrency": 4, "max_retries": 0, **runner},
        },
    )
    # question 0 always right, 1 never, 2 and 3 right or wrong by the seed: epochs differ
    server.configure(
        answers={"question 0": "yes", "question 1": "no"},
        seeded_answers={"question 2": ["yes", "no"], "question 3": ["no", "yes", "no"]},
    )
    return tmp_path / "eval.yaml"


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (run_dir / "records.jsonl").read_bytes().splitlines()]


@pytest.mark.slow
def test_epochs_ask_each_example_k_times_in_canonical_order(tmp_path: Path, fake_llm_server: Any) -> None:
    config = _project(tmp_path, fake_llm_server)
    done = run_cli("run", str(config), "--run-dir", "a", "--epochs", str(K), "--no-track", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert fake_llm_server.stats.requests == N * K
    assert f"factuality  {N}×{K}  " in done.stdout  # the results table: examples × epochs

    records = _records(tmp_path / "a")
    assert [(r["example_id"], r["epoch"]) for r in records] == [(f"e{i}", e) for i in range(N) for e in range(K)]
    timings = [orjson.loads(line) for line in (tmp_path / "a" / "timings.jsonl").read_bytes().splitlines()]
    assert [(t["example_id"], t["epoch"]) for t in timings] == [(r["example_id"], r["epoch"]) for r in records]

    # a seed per (example, epoch): distinct across epochs and examples, and the same on a rerun
    seeds = fake_llm_server.stats.seeds
    assert len({seed for _, seed in seeds}) == N * K and all(isinstance(s, int) for _, s in seeds)
    first = sorted(seeds)
    fake_llm_server.stats.seeds.clear()
    again = run_cli("run", str(config), "--run-dir", "b", "--epochs", str(K), "--no-track", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(fake_llm_server.stats.seeds) == first
    assert (tmp_path / "a" / "records.jsonl").read_bytes() == (tmp_path / "b" / "records.jsonl").read_bytes()

    # the summary: requests counted per record; the pass rate over examples, each the mean of its epochs
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    group = summary["groups"][0]
    by_example: dict[str, list[float]] = defaultdict(list)
    for r in records:
        by_example[r["example_id"]].append(1.0 if r["passed"] else 0.0)
    per_example = [sum(v) / K for v in by_example.values()]
    assert group["n"] == N * K and group["scored"] == N
    assert group["pass_rate"] == pytest.approx(sum(per_example) / N, abs=1e-6)
    assert per_example[0] == 1.0 and per_example[1] == 0.0
    variances = [sum((x - sum(v) / K) ** 2 for x in v) / (K - 1) for v in by_example.values()]
    assert (group["epochs"]["k"], group["epochs"]["examples"]) == (K, N)
    assert group["epochs"]["reducers"] == {"exact_match": "mean", "f1": "mean", "match": "mean", "pass_rate": "mean"}
    assert group["epochs"]["within_variance"]["pass_rate"] == round(sum(variances) / N, 6) > 0
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert (manifest["epochs"], manifest["reducer"]) == (K, "mean")
    assert manifest["counts"]["records"] == N * K


@pytest.mark.slow
def test_resume_sends_only_the_missing_example_epochs(tmp_path: Path, fake_llm_server: Any) -> None:
    config = _project(tmp_path, fake_llm_server)
    assert (
        run_cli("run", str(config), "--run-dir", "full", "--epochs", str(K), "--no-track", cwd=tmp_path).returncode == 0
    )
    # the same run, stopped after 5 of its 12 (example, epoch) records
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "full", cut)
    for name in ("records.jsonl", "timings.jsonl"):
        lines = (cut / name).read_bytes().splitlines(keepends=True)
        (cut / name).write_bytes(b"".join(lines[:5]))
    run_id = json.loads((cut / "manifest.json").read_text())["run_id"]
    for name in ("manifest.json", "summary.json", "report.html", "config.resolved.yaml"):
        (cut / name).unlink()
    (cut / ".incomplete").write_text(json.dumps({"run_id": run_id}) + "\n")
    before = fake_llm_server.stats.requests
    other = run_cli("run", str(config), "--run-dir", "cut", "--epochs", "2", "--resume", "--no-track", cwd=tmp_path)
    assert other.returncode == 1 and "this config gives run" in other.stderr  # other epochs: another run
    assert fake_llm_server.stats.requests == before

    resumed = run_cli(
        "run", str(config), "--run-dir", "cut", "--epochs", str(K), "--resume", "--no-track", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert fake_llm_server.stats.requests - before == N * K - 5
    for name in ("records.jsonl", "manifest.json", "summary.json"):
        full, cut_bytes = (tmp_path / "full" / name).read_bytes(), (cut / name).read_bytes()
        if name == "summary.json":
            full, cut_bytes = (
                json.dumps({k: v for k, v in json.loads(b).items() if k != "volatile"}).encode()
                for b in (full, cut_bytes)
            )
        assert cut_bytes == full, name


@pytest.mark.slow
def test_the_cache_keeps_epochs_apart(tmp_path: Path, fake_llm_server: Any) -> None:
    """Epochs of one example are never served one cached answer: a first run sends k × n requests; a rerun from the
    cache sends none and writes the same records."""
    config = _project(tmp_path, fake_llm_server, epochs=K, cache_dir="cache")
    assert run_cli("run", str(config), "--run-dir", "a", "--no-track", cwd=tmp_path).returncode == 0
    assert fake_llm_server.stats.requests == N * K
    outputs = {(r["example_id"], r["epoch"]): r["output"] for r in _records(tmp_path / "a")}
    assert len({outputs[("e3", e)] for e in range(K)} | {outputs[("e2", e)] for e in range(K)}) == 2  # yes and no
    assert run_cli("run", str(config), "--run-dir", "b", "--no-track", cwd=tmp_path).returncode == 0
    assert fake_llm_server.stats.requests == N * K
    assert (tmp_path / "a" / "records.jsonl").read_bytes() == (tmp_path / "b" / "records.jsonl").read_bytes()


def test_probe_runner_takes_epochs_and_a_reducer_per_metric(tmp_path: Path) -> None:
    prompt_set = PromptSet.from_list(
        [{"id": "a", "prompt": "x", "answer": "x"}, {"id": "b", "prompt": "y", "answer": "z"}]
    )
    runner = ProbeRunner(
        get_model("dummy"), get_probe("factuality"), epochs=3, reducer={"pass_rate": "all"}, run_dir=tmp_path / "run"
    )
    records = runner.run(prompt_set)
    assert [(r.example_id, r.epoch) for r in records] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    assert records[4].key == ("dummy", "factuality", "b", 1)
    group = runner.summary["groups"][0]
    assert (group["n"], group["scored"], group["passed"], group["pass_rate"]) == (6, 2, 1, 0.5)
    assert group["epochs"]["reducers"]["pass_rate"] == "all" and group["epochs"]["reducers"]["f1"] == "mean"
    assert group["intervals"]["pass_rate"]["method"] == "wilson"  # 0/1 per example: still a proportion
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    rebuild_summary(tmp_path / "run")  # `insidellms report`: the manifest's epochs and reducer, the same summary
    rebuilt = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {k: v for k, v in rebuilt.items() if k != "volatile"} == {k: v for k, v in written.items() if k != "volatile"}
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Epochs: each example asked 3 times" in report and "<td>2 × 3</td>" in report
    assert "<td>pass_rate</td><td>all</td><td>0</td>" in report  # each example passed every epoch or none
    with pytest.raises(ValueError, match="epochs must be a whole number >= 1"):
        ProbeRunner(get_model("dummy"), get_probe("factuality"), epochs=0)
    with pytest.raises(ValueError, match="unknown reducer 'median'"):
        ProbeRunner(get_model("dummy"), get_probe("factuality"), epochs=2, reducer={"f1": "median"})


def _rec(example: str, epoch: int, passed: bool | None, **scores: Any) -> dict[str, Any]:
    return {
        "run_id": "r",
        "model": {"id": "m"},
        "probe": {"id": "p"},
        "example_id": example,
        "epoch": epoch,
        "status": "success" if passed is not None else "error",
        "passed": passed,
        "scores": scores,
    }


def test_summary_reduces_each_metric_with_its_reducer() -> None:
    """Hand-computed: two examples × three epochs; pass_rate by majority, ``f1`` by max, ``exact`` by the mean."""
    records = [
        _rec("a", 0, True, f1=0.5, exact=True),
        _rec("a", 1, False, f1=0.9, exact=False),
        _rec("a", 2, True, f1=0.1, exact=True),
        _rec("b", 0, False, f1=0.0, exact=False),
        _rec("b", 1, None),
        _rec("b", 2, False, f1=0.3, exact=False),
    ]
    summary = summarize(records, epochs=3, reducer={"pass_rate": "majority", "f1": "max"})
    group = summary["groups"][0]
    assert (group["n"], group["status_counts"], group["scored"]) == (6, {"error": 1, "success": 5}, 2)
    assert group["pass_rate"] == 0.5  # a: majority pass, b: fail
    assert group["scores"] == {"exact": round((2 / 3 + 0) / 2, 6), "f1": round((0.9 + 0.3) / 2, 6)}
    assert group["epochs"]["reducers"] == {"exact": "mean", "f1": "max", "pass_rate": "majority"}
    # within-example variance, averaged over examples: a's passes (1,0,1) → 1/3, b's (0,0) → 0
    assert group["epochs"]["within_variance"]["pass_rate"] == round((1 / 3 + 0) / 2, 6)
    assert group["epochs"]["within_variance"]["f1"] == round((0.32 / 2 + 0.045 / 1) / 2, 6)  # a: 0.5±0.4, b: 0.15±0.15
    # the success rate counts requests, its interval clustered by example (2 examples: 2 clusters)
    assert group["success_rate"] == round(5 / 6, 6)
    assert group["intervals"]["success_rate"]["clusters"] == 2
    # records alone say they have epochs: the same figures without being told (mean reducer)
    auto = summarize(records)["groups"][0]
    assert auto["epochs"]["k"] == 3 and auto["pass_rate"] == round((2 / 3 + 0) / 2, 6)
