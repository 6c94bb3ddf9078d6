"""Does the `prompt` probe's scoring cost more than a built-in probe, and does the cache spare the judge? (issue 12)

(a) `insidellms run` of N examples with the `prompt` probe (a Jinja2 template, a target, three cheap scorers:
exact, f1, numeric) against the built-in `logic` probe on the same examples and the same model, interleaved in
every repeat: the dummy model (no waiting: the harness's CPU is all there is) and the fake OpenAI-compatible
server (tests/fake_llm_server.py, as a process) at a fixed latency. Prints the median of the per-repeat ratios,
wall and CPU (target <= 1.3x: scoring must not become the bottleneck), and CPU per example (from 1-example runs).
(b) a judged run, the model and the judge both served by the fake server in judge mode, `runner.cache_dir` set,
run twice: the judge requests the server received on each run, so the judge's cache hit rate on the second,
identical run (target 100 %).

    python bench/eval_scorers.py [--n 2000] [--repeat 5] [--judge-n 2000] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from harness_overhead import Measured, Server, insidellms_argv, run_process, write_prompts

from insideLLMs.jsonl import iter_objects

TARGET_RATIO = 1.3
PROMPT_PROBE = {
    "type": "prompt",
    "args": {
        "template": "{{ prompt }}",
        "target": "{{ answer }}",
        "scorers": [{"type": "exact"}, {"type": "f1", "threshold": 0.5}, {"type": "numeric"}],
        "pass": "any",
    },
}


def served(server: Server, name: str) -> dict:
    """An openai model spec for the fake server."""
    return {"type": "openai", "args": {"model_name": name, "base_url": f"{server.url}/v1"}}


def objects(path: Path) -> list[dict]:
    return [obj for _, obj in iter_objects(path, ValueError)]


def write_config(path: Path, prompts: Path, probe: dict, model: dict, **extra: object) -> Path:
    config = {"model": model, "probe": probe, "dataset": {"format": "jsonl", "path": str(prompts)}, **extra}
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def scoring_section(args: argparse.Namespace, tmpdir: Path, env: dict[str, str], server: Server) -> list[str]:
    """(a): the prompt probe with three scorers vs the logic probe, same examples, same model; the targets missed."""
    models = {"dummy model": {"type": "dummy"}, f"fake server, {args.latency_ms:.0f} ms": served(server, "fake")}
    probes = {"logic": {"type": "logic"}, "prompt+3 scorers": PROMPT_PROBE}
    failures = []
    for model_name, model in models.items():
        runs: dict[tuple[str, int], list[Measured]] = {}
        for n in (1, args.n):
            prompts = tmpdir / f"prompts-{n}.jsonl"
            write_prompts(prompts, n)
            configs = {
                name: write_config(tmpdir / f"{name[:6]}-{n}.yaml", prompts, probe, model, runner={"concurrency": 64})
                for name, probe in probes.items()
            }
            for config in configs.values():  # warm the file and bytecode caches
                run_process(insidellms_argv(config, tmpdir / "warm-up"), env)
            for _ in range(args.repeat):
                for name, config in configs.items():
                    runs.setdefault((name, n), []).append(run_process(insidellms_argv(config, tmpdir / "run"), env))
        print(
            f"(a) {model_name}, N={args.n}, concurrency 64, {args.repeat} interleaved repeats, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"  {'':<18} {'wall (median)':>14} {'CPU (median)':>13} {'N=1 wall':>9} {'CPU per example':>16}")
        for name in probes:
            big, one = runs[(name, args.n)], runs[(name, 1)]
            cpu, cpu_1 = statistics.median(m.cpu_s for m in big), statistics.median(m.cpu_s for m in one)
            print(
                f"  {name:<18} {statistics.median(m.wall_s for m in big):13.2f}s {cpu:12.2f}s "
                f"{statistics.median(m.wall_s for m in one):8.2f}s {(cpu - cpu_1) / (args.n - 1) * 1e6:13.0f} µs"
            )
        ratios = {
            kind: statistics.median(
                getattr(p, kind) / getattr(b, kind)
                for p, b in zip(runs[("prompt+3 scorers", args.n)], runs[("logic", args.n)])
            )
            for kind in ("wall_s", "cpu_s")
        }
        print(
            f"  prompt probe / logic probe: wall {ratios['wall_s']:.2f}x, CPU {ratios['cpu_s']:.2f}x "
            f"(median of the per-repeat ratios; target <= {TARGET_RATIO}x)"
        )
        if ratios["wall_s"] > TARGET_RATIO:
            failures.append(f"(a) {model_name}: the prompt probe {ratios['wall_s']:.2f}x the logic probe's wall time")
    return failures


def judge_section(args: argparse.Namespace, tmpdir: Path, env: dict[str, str], server: Server) -> list[str]:
    """(b): a judged run twice with the response cache on; the judge requests the server received each time."""
    prompts = tmpdir / "judged.jsonl"
    write_prompts(prompts, args.judge_n)
    probe = {"type": "prompt", "args": {**PROMPT_PROBE["args"], "scorers": [{"type": "judge", "rubric": "Correct?"}]}}
    runner = {"concurrency": 64, "cache_dir": str(tmpdir / "cache")}
    config = write_config(
        tmpdir / "judged.yaml", prompts, probe, served(server, "fake"), judge=served(server, "judge"), runner=runner
    )
    print(
        f"(b) judged run, N={args.judge_n}, fake server at {args.latency_ms:.0f} ms, cache on, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    uncached = write_config(
        tmpdir / "judged-uncached.yaml", prompts, probe, served(server, "fake"), judge=served(server, "judge"),
        runner={"concurrency": 64},
    )
    server.reset()
    server.configure(judge={"default": "PASS"})
    baseline = run_process(insidellms_argv(uncached, tmpdir / "judged-uncached"), env)
    print(f"  without the cache: {baseline.wall_s:5.2f}s")
    seen, walls = [], []
    for attempt in ("first", "second"):
        server.reset()
        server.configure(judge={"default": "PASS"})
        run_dir = tmpdir / f"judged-{attempt}"
        measured = run_process(insidellms_argv(config, run_dir), env)
        walls.append(measured.wall_s)
        stats = server.stats()
        cache_hits = sum(t["cache_hit"] for t in objects(run_dir / "timings.jsonl"))
        judged = sum(r["judge"]["judge"]["grade"] == "PASS" for r in objects(run_dir / "records.jsonl"))
        seen.append(stats["judge_requests"])
        print(
            f"  {attempt} run: {measured.wall_s:5.2f}s, {judged} examples judged PASS; server: "
            f"{stats['judge_requests']} judge requests, {stats['requests'] - stats['judge_requests']} "
            f"model requests; model cache hits (timings.jsonl) {cache_hits}"
        )
    print(f"  filling the cache costs {walls[0] / baseline.wall_s:.2f}× the run without it")
    hit_rate = 1 - seen[1] / seen[0]
    print(f"  judge cache hit rate on the second run: {hit_rate:.1%} (target 100 %)")
    return [] if hit_rate == 1 and seen[0] == args.judge_n else [f"(b) judge cache hit rate {hit_rate:.1%}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="examples per run in (a)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repeats in (a); 0 skips (a)")
    parser.add_argument("--judge-n", type=int, default=2000, help="examples per judged run in (b)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the fake server's latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="insidellms-bench-") as tmp:
        tmpdir = Path(tmp)
        env = {**os.environ, "HOME": tmp, "OPENAI_API_KEY": "sk-bench", "PYTHONPYCACHEPREFIX": str(tmpdir / "pyc")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package: compiled once, not on every start
        server = Server(args.latency_ms)
        try:
            failures = scoring_section(args, tmpdir, env, server) if args.repeat else []
            failures += judge_section(args, tmpdir, env, server)
        finally:
            server.stop()
    print("targets: " + ("all met" if not failures else "MISSED\n  " + "\n  ".join(failures)))


if __name__ == "__main__":
    main()
