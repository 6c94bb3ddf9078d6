"""Shards for job arrays: ``--shard I/N`` writes the examples of shard I, ``insidellms merge`` gives back the
unsharded run directory byte for byte (dummy model and the fake OpenAI-compatible server)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from insideLLMs.report import render_report
from insideLLMs.run import Shard, ShardError, merge_shards, shard_key, shard_of
from support.cli import qa_rows, run_cli, write_config, write_jsonl
from support.shards import deterministic_bytes, run_in_process, shard_dirs


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _grid(root: Path, n: int = 30, model: dict[str, Any] | None = None) -> Path:
    """Two models × two probes over their own prompt sets: the canonical order interleaves cells and examples."""
    write_jsonl(root / "qa.jsonl", qa_rows(n))
    write_jsonl(
        root / "logic.jsonl",
        [{"id": f"l{i}", "prompt": f"Is {i} even?", "answer": "yes" if i % 2 == 0 else "no"} for i in range(n // 2)],
    )
    models = (
        [model]
        if model
        else [
            {"type": "dummy", "args": {"model_name": "echo"}},
            {"type": "dummy", "args": {"model_name": "canned", "canned_response": "Answer: 4", "fail_every": 7}},
        ]
    )
    return write_config(
        root / "eval.yaml",
        {
            "models": models,
            "probes": [
                {"type": "factuality", "dataset": {"path": "qa.jsonl"}},
                {"type": "logic", "dataset": {"path": "logic.jsonl"}},
            ],
            "generation": {"temperature": 0, "max_tokens": 32},
            "runner": {"concurrency": 4, "max_retries": 0},
        },
    )


# -- the split ------------------------------------------------------------------------------------------


def test_the_split_is_sha256_of_the_example_key_pinned() -> None:
    """The split may never change between versions: shards of one run made by two versions must merge."""
    assert shard_key("logic", "q1") == b"logic\x1fq1"
    assert shard_of(b"logic\x1fq1", 4) == int(hashlib.sha256(b"logic\x1fq1").hexdigest()[:16], 16) % 4
    got = [shard_of(shard_key("factuality", f"q{i:05d}"), 4) for i in range(12)]
    assert got == [0, 0, 0, 0, 1, 1, 3, 1, 0, 1, 0, 2]


def test_every_example_in_exactly_one_shard_and_roughly_even() -> None:
    keys = [shard_key("p", f"id-{i}") for i in range(8000)]
    for count in (1, 2, 3, 8):
        sizes = [0] * count
        for key in keys:
            sizes[shard_of(key, count)] += 1
        assert sum(sizes) == 8000
        assert all(abs(size - 8000 / count) < 0.06 * 8000 / count for size in sizes), sizes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "--shard 2: expected I/N, the 0-based shard I of N shards (e.g. --shard 0/4)"),
        ("-1/4", "--shard -1/4: expected I/N, the 0-based shard I of N shards (e.g. --shard 0/4)"),
        ("4/4", "--shard 4/4: I must be 0 to 3 (shards are numbered from 0)"),
        ("0/0", "--shard 0/0: N must be at least 1"),
    ],
)
def test_bad_shard_values(text: str, message: str) -> None:
    with pytest.raises(ShardError) as exc:
        Shard.parse(text)
    assert str(exc.value) == message
    assert Shard.parse(" 3 / 4 ") == Shard(3, 4) and str(Shard(3, 4)) == "3/4"


@pytest.mark.slow
def test_a_shard_holds_exactly_its_examples_whatever_else_the_run_holds(tmp_path: Path) -> None:
    config = _grid(tmp_path / "small", n=20)
    bigger = _grid(tmp_path / "big", n=60)  # a superset of the same examples: they stay in their shards
    small = shard_dirs(config, tmp_path / "small", 3)
    big = shard_dirs(bigger, tmp_path / "big", 3)
    full = run_in_process(config, tmp_path / "small" / "full")
    everything = [(r["model"]["id"], r["probe"]["id"], r["example_id"]) for r in _lines(full / "records.jsonl")]
    seen: list[tuple[str, str, str]] = []
    for index, (part, big_part) in enumerate(zip(small, big)):
        keys = [(r["model"]["id"], r["probe"]["id"], r["example_id"]) for r in _lines(part / "records.jsonl")]
        assert keys and all(shard_of(shard_key(p, e), 3) == index for _, p, e in keys)
        assert keys == [k for k in everything if k in set(keys)]  # in the whole run's order
        big_keys = {(r["model"]["id"], r["probe"]["id"], r["example_id"]) for r in _lines(big_part / "records.jsonl")}
        assert set(keys) <= big_keys
        seen += keys
    assert sorted(seen) == sorted(everything)  # every record in exactly one shard


# -- partial run directories ------------------------------------------------------------------------------


def test_a_partial_run_directory_says_which_shard_of_which_run(tmp_path: Path) -> None:
    config = _grid(tmp_path)
    full = run_in_process(config, tmp_path / "full")
    [part] = shard_dirs(config, tmp_path, 4, only=[1])
    manifest, whole = (
        orjson.loads((part / "manifest.json").read_bytes()),
        orjson.loads((full / "manifest.json").read_bytes()),
    )
    assert manifest["shard"] == {"index": 1, "count": 4, "run_records": whole["counts"]["records"]}
    assert (manifest["run_id"], manifest["config_hash"]) == (whole["run_id"], whole["config_hash"])
    records, timings = _lines(part / "records.jsonl"), _lines(part / "timings.jsonl")
    assert manifest["counts"]["records"] == len(records) == len(timings) > 0
    assert all(r["run_id"] == whole["run_id"] for r in records)
    order = [(r["model"]["id"], r["probe"]["id"], r["example_id"]) for r in _lines(full / "records.jsonl")]
    for rec, timing in zip(records, timings):  # each timing says where its record goes in the whole run
        assert order[timing["position"]] == (rec["model"]["id"], rec["probe"]["id"], rec["example_id"])
    assert orjson.loads((part / "summary.json").read_bytes())["totals"]["n"] == len(records)


@pytest.mark.slow
def test_cli_shard_default_run_dir(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(12))
    write_config(
        tmp_path / "eval.yaml",
        {"model": {"type": "dummy"}, "probe": {"type": "factuality"}, "dataset": {"path": "data.jsonl"}},
    )
    result = run_cli("run", "eval.yaml", "--shard", "1/3", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [made] = list((tmp_path / "runs").iterdir())
    manifest = orjson.loads((made / "manifest.json").read_bytes())
    assert made.name == f"{manifest['run_id']}-shard-1-of-3"
    assert manifest["shard"]["index"] == 1 and f"run directory: runs/{made.name}" in result.stdout


@pytest.mark.slow
def test_an_interrupted_shard_resumes_and_merges(tmp_path: Path) -> None:
    """A shard killed midway (a preempted job) goes on with --resume and the same --shard; the merge is whole."""
    _grid(tmp_path, n=30)
    assert run_cli("harness", "eval.yaml", "--run-dir", "whole/run", "--no-track", cwd=tmp_path).returncode == 0
    for i in range(2):
        assert (
            run_cli(
                "harness", "eval.yaml", "--shard", f"{i}/2", "--run-dir", f"p{i}", "--no-track", cwd=tmp_path
            ).returncode
            == 0
        )
    cut = tmp_path / "p1"
    run_id = orjson.loads((cut / "manifest.json").read_bytes())["run_id"]
    for name in ("records.jsonl", "timings.jsonl"):  # what a kill after 7 records leaves
        (cut / name).write_bytes(b"".join((cut / name).read_bytes().splitlines(keepends=True)[:7]))
    for name in ("manifest.json", "summary.json", "config.resolved.yaml", "report.html"):
        (cut / name).unlink()
    (cut / ".incomplete").write_text(f'{{"run_id":"{run_id}"}}\n')
    refused = run_cli("merge", "p0", "p1", "-o", "merged/run", cwd=tmp_path)
    assert refused.returncode == 1 and not (tmp_path / "merged").exists()
    resumed = run_cli(
        "harness", "eval.yaml", "--shard", "1/2", "--run-dir", "p1", "--resume", "--no-track", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert run_cli("merge", "p0", "p1", "-o", "merged/run", cwd=tmp_path).returncode == 0
    assert deterministic_bytes(tmp_path / "merged" / "run") == deterministic_bytes(tmp_path / "whole" / "run")


# -- merge ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_merged_shards_are_the_unsharded_run_byte_for_byte_dummy(tmp_path: Path) -> None:
    _grid(tmp_path, n=40)
    assert run_cli("harness", "eval.yaml", "--run-dir", "whole/run", "--no-track", cwd=tmp_path).returncode == 0
    for i in (2, 0, 1):
        result = run_cli(
            "harness",
            "eval.yaml",
            "--shard",
            f"{i}/3",
            "--run-dir",
            f"part-{i}",
            "--no-track",
            "--concurrency",
            str(i + 1),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
    merged = run_cli("merge", "part-1", "part-0", "part-2", "-o", "merged/run", cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    whole, out = tmp_path / "whole" / "run", tmp_path / "merged" / "run"
    manifest = orjson.loads((whole / "manifest.json").read_bytes())
    assert manifest["counts"]["records"] == 2 * (40 + 20)
    assert merged.stdout.splitlines() == [
        f"merged 3 shards of run {manifest['run_id']}: 120 records",
        "run directory: merged/run",
    ]
    assert deterministic_bytes(out) == deterministic_bytes(whole)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in whole.iterdir())
    # timings: the whole run's, in record order, without the shards' positions
    timings, records = _lines(out / "timings.jsonl"), _lines(out / "records.jsonl")
    assert [(t["model"], t["probe"], t["example_id"]) for t in timings] == [
        (r["model"]["id"], r["probe"]["id"], r["example_id"]) for r in records
    ]
    assert set(timings[0]) == set(_lines(whole / "timings.jsonl")[0])
    # report.html is a function of the deterministic files and the volatile ones (timings, summary's volatile
    # latencies): given the merged run's volatile files, the unsharded run's page is the merged run's, byte for byte
    assert (out / "report.html").read_bytes() == render_report(out)
    for name in ("timings.jsonl", "summary.json"):
        shutil.copyfile(out / name, whole / name)
    assert render_report(whole) == (out / "report.html").read_bytes()
    # and the merged run diffs clean against the unsharded one
    diff = run_cli("diff", "whole/run", "merged/run", "--fail-on-changes", cwd=tmp_path)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert not [p for p in (tmp_path / "merged").iterdir() if p.name != "run"]  # no temporary folder left


@pytest.mark.slow
def test_merged_shards_are_the_unsharded_run_byte_for_byte_fake_server(tmp_path: Path, fake_llm_server: Any) -> None:
    """A real HTTP model: the shards together ask exactly the requests of the unsharded run, once each."""
    answers = {"What is 3 plus 3?": "6", "What is 5 plus 5?": "10"}
    fake_llm_server.configure(answers=answers)
    _grid(
        tmp_path,
        n=24,
        model={
            "type": "openai",
            "args": {"model_name": "m", "api_key": "k", "base_url": fake_llm_server.openai_base_url},
        },
    )
    assert run_cli("harness", "eval.yaml", "--run-dir", "full", "--no-track", cwd=tmp_path).returncode == 0
    unsharded = fake_llm_server.stats.requests
    assert unsharded == 24 + 12
    fake_llm_server.reset()
    fake_llm_server.configure(answers=answers)
    for i in range(4):
        result = run_cli("harness", "eval.yaml", "--shard", f"{i}/4", "--run-dir", f"p{i}", "--no-track", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert fake_llm_server.stats.requests == unsharded
    merged = merge_shards([tmp_path / f"p{i}" for i in range(4)], tmp_path / "merged")
    assert deterministic_bytes(merged) == deterministic_bytes(tmp_path / "full")
    passed = [r["example_id"] for r in _lines(merged / "records.jsonl") if r["passed"]]
    assert passed == ["q00000", "q00003", "q00005"]  # the right answers (an echo of 0 + 0 too), wherever they ran


@pytest.mark.slow
def test_merge_streams_in_bounded_memory(tmp_path: Path) -> None:
    """The k-way merge holds one line per part, not the run: a 20,000-record merge stays small."""
    import tracemalloc

    from support.run_dirs import record

    parts = []
    for index in range(2):
        part = tmp_path / f"p{index}"
        part.mkdir()
        recs = [record(f"q{i:06d}", run_id="r1") for i in range(index, 20_000, 2)]
        (part / "records.jsonl").write_bytes(
            b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in recs)
        )
        (part / "timings.jsonl").write_bytes(
            b"".join(
                orjson.dumps(
                    {
                        "model": "dummy",
                        "probe": "factuality",
                        "example_id": r["example_id"],
                        "latency_ms": 1.0,
                        "attempts": 1,
                        "cache_hit": False,
                        "started_at": 0.0,
                        "finished_at": 0.0,
                        "position": p,
                    }
                )
                + b"\n"
                for r, p in zip(recs, range(index, 20_000, 2))
            )
        )
        (part / "manifest.json").write_bytes(
            orjson.dumps(
                {
                    "run_id": "r1",
                    "config_hash": "c",
                    "counts": {},
                    "shard": {"index": index, "count": 2, "run_records": 20_000},
                }
            )
        )
        (part / "config.resolved.yaml").write_text("model: {type: dummy}\n")
        parts.append(part)
    tracemalloc.start()
    merge_shards(parts, tmp_path / "merged")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = (tmp_path / "merged" / "records.jsonl").stat().st_size
    assert [r["example_id"] for r in _lines(tmp_path / "merged" / "records.jsonl")] == [
        f"q{i:06d}" for i in range(20_000)
    ]
    assert peak < size / 4, (peak, size)  # the latencies (8 bytes a record) and a few lines, not the records


def test_merge_refuses_and_writes_nothing(tmp_path: Path) -> None:
    config = _grid(tmp_path / "a", n=12)
    other = _grid(tmp_path / "b", n=14)
    a = shard_dirs(config, tmp_path / "a", 3)
    b = shard_dirs(other, tmp_path / "b", 3)
    cases = {
        "missing": (a[:2], "merge: shard 2/3 missing (2 of 3 given); run it with --shard 2/3, then merge every shard"),
        "twice": ([a[0], a[1], a[1]], f"{a[1]}: shard 1/3 is also in {a[1]}; give each shard once"),
    }
    for name, (parts, message) in cases.items():
        with pytest.raises(ShardError) as exc:
            merge_shards(parts, tmp_path / "out")
        assert str(exc.value) == message, name
    with pytest.raises(ShardError, match="merge only the shards of one run"):
        merge_shards([a[0], a[1], b[2]], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    # --overwrite replaces a run directory, never a folder of something else
    first = merge_shards(a, tmp_path / "out")
    records = (first / "records.jsonl").read_bytes()
    (first / "records.jsonl").write_bytes(b"stale\n")
    assert (merge_shards(a, tmp_path / "out", overwrite=True) / "records.jsonl").read_bytes() == records
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("my thesis")
    with pytest.raises(ShardError) as exc:
        merge_shards(a, tmp_path / "mine", overwrite=True)
    assert str(exc.value) == f"{tmp_path / 'mine'}: exists and is not an insideLLMs run directory; choose another -o"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "mine", "out"]


# -- tracking -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_each_shard_is_tracked_as_its_own_run_and_the_merged_run_pushed_as_one(tmp_path: Path) -> None:
    from insideLLMs.tracking.store import load_run

    write_jsonl(tmp_path / "data.jsonl", qa_rows(10))
    write_config(
        tmp_path / "eval.yaml",
        {
            "name": "nightly",
            "model": {"type": "dummy"},
            "probe": {"type": "factuality"},
            "dataset": {"path": "data.jsonl"},
            "tracking": {"backend": "local", "output_dir": "tracking_logs"},
        },
    )
    for i in range(2):
        result = run_cli("run", "eval.yaml", "--shard", f"{i}/2", "--run-dir", f"p{i}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert run_cli("merge", "p0", "p1", "-o", "merged", cwd=tmp_path).returncode == 0
    pushed = run_cli("tracking", "push", "merged", "--backend", "local", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    run_id = orjson.loads((tmp_path / "merged" / "manifest.json").read_bytes())["run_id"]
    runs = {load_run(p).state.name: load_run(p).state for p in (tmp_path / "tracking_logs").iterdir() if p.is_dir()}
    assert sorted(runs) == ["nightly", "nightly [shard 0/2]", "nightly [shard 1/2]"]
    for i in range(2):
        shard = runs[f"nightly [shard {i}/2]"]
        records = len(_lines(tmp_path / f"p{i}" / "records.jsonl"))
        assert (shard.tags["shard"], shard.tags["shard_of"], shard.tags["experiment"]) == (f"{i}/2", run_id, "nightly")
        assert shard.params["shard"] == f"{i}/2" and shard.params["total_examples"] == records
        assert shard.metrics["n"] == records and shard.status == "finished"
    merged = runs["nightly"]
    assert "shard" not in merged.tags and "shard" not in merged.params
    assert merged.params["run_id"] == run_id and merged.metrics["n"] == 10
