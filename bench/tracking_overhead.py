"""What tracking costs, measured side by side in one run (issues 3 and 5). Prints a table of ratios.

1. One run logging 5,000 steps × 4 metrics, params and a 10 MB records artifact:
   the local backend vs a plain buffered JSON-lines append (the floor).           target ≤ 2×
2. The same run to a real ``mlflow server`` through our MLflow backend vs ``mlflow.log_metric``
   once per point, each side as a user waits for it (per-point: a fresh process importing mlflow,
   the calls timed on a sample and scaled; said so in the output).            target ≥ 50×
3. ``insidellms harness`` of 2,000 examples against the fake OpenAI-compatible server (50 ms per
   request, concurrency 64, ≈ 2 s): tracking off vs local vs MLflow with its server stopped (a
   closed 127.0.0.1 port), interleaved; each ratio is the median of the per-repetition ratios to
   that repetition's untracked run. Also the fixed cost (ms, from 1-example runs) and the
   per-example cost (µs, the rest of the 2,000-example difference), in wall and CPU time.
                                                   target ≤ 3 % extra (local; server stopped)
   ``--designs name=SRC,…`` measures several source trees side by side in one run (how the one
   tracking path was chosen: bench/README.md).
4. ``tracking sync`` of 20,000 points to the live server vs per-point ``log_metric``. target ≥ 50×
5. The delivery child's exit once its work is done, which the end of a run with a remote backend
   waits for: ``os._exit`` vs a normal interpreter exit.                                   (info)

    .venv/bin/python bench/tracking_overhead.py [--quick] [--sections 1,2,3,4,5] [--designs a=SRC,b=SRC]

Sections 2 and 4 need a real ``mlflow server`` (started here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's real-server fixture code

from support.mlflow_server import MlflowServer, client_env, free_port  # noqa: E402

INSIDELLMS = str(Path(sys.executable).parent / "insidellms")
STEPS, METRICS_PER_STEP = 5_000, 4
ARTIFACT_MB = 10
SYNC_POINTS = 20_000
PER_POINT_SAMPLE = 1_000
HARNESS_CONCURRENCY, HARNESS_LATENCY_MS = 64, 50.0


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(n: int, fn: Callable[[], Any]) -> float:
    return min(timed(fn) for _ in range(n))


def make_artifact(path: Path) -> Path:
    line = json.dumps({"run_id": "bench", "example_id": "x" * 8, "input": {"prompt": "What is 2 plus 2?" * 8},
                       "output": "4" * 200, "scores": {"correct": True}, "status": "success"}) + "\n"
    with open(path, "w") as fh:
        for _ in range(ARTIFACT_MB * 1024 * 1024 // len(line) + 1):
            fh.write(line)
    return path


def step_metrics(step: int) -> dict[str, float]:
    return {"latency_ms": 10.0 + step % 13, "success": 1.0, "passed": float(step % 3 != 0), "f1": (step % 7) / 7}


PARAMS = {"model": "gpt-4o", "temperature": 0.7, "max_tokens": 1000, "probe_type": "logic", "dataset_size": STEPS}


# -- 1. local backend vs the floor ------------------------------------------------------------------

def floor_run(out: Path, artifact: Path) -> None:
    out.mkdir(parents=True)
    with open(out / "metrics.jsonl", "w", buffering=1 << 16) as fh:
        fh.write(json.dumps({"params": PARAMS}) + "\n")
        for step in range(STEPS):
            fh.write(json.dumps({"step": step, "ts": time.time(), "metrics": step_metrics(step)}) + "\n")
    with open(artifact, "rb") as src, open(out / "records.jsonl", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def tracked_run(backend: str, artifact: Path, **options: Any) -> Any:
    from insideLLMs.tracking import get_tracker

    tracker = get_tracker(backend, echo=lambda _m: None, **options)
    with tracker.start_run(name="bench") as run:
        tracker.log_params(PARAMS)
        for step in range(STEPS):
            tracker.log_metrics(step_metrics(step), step=step)
        tracker.log_artifact("records", artifact)
    return run


# -- 2 and 4. per-point logging on the same server --------------------------------------------------

PER_POINT_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import mlflow
t1 = time.perf_counter()
uri, points, artifact = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("bench-per-point")
with mlflow.start_run():
    mlflow.log_params(json.loads(sys.argv[4]))
    t2 = time.perf_counter()
    for i in range(points):
        mlflow.log_metric(f"m{i % 4}", float(i), step=i // 4)
    t3 = time.perf_counter()
    if artifact:
        mlflow.log_artifact(artifact)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "setup_s": t2 - t1, "points_s": t3 - t2, "rest_s": t4 - t3}))
"""


def per_point(uri: str, points: int, artifact: Path | None, env: dict[str, str]) -> dict[str, float]:
    """What a user of per-point ``mlflow.log_metric`` waits for, in a fresh process like ours: the
    mlflow import, the run set-up, ``points`` calls (one HTTP request each), the artifact and the end."""
    proc = subprocess.run([sys.executable, "-c", PER_POINT_SCRIPT, uri, str(points), str(artifact or ""),
                           json.dumps(PARAMS)], env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def per_point_total(sample: dict[str, float], points: int) -> float:
    """The sample scaled to ``points`` calls (the fixed costs counted once)."""
    return sample["import_s"] + sample["setup_s"] + sample["rest_s"] + sample["points_s"] * points / PER_POINT_SAMPLE


# -- 3. harness overhead ---------------------------------------------------------------------------

HARNESS_VARIANTS = ("off", "local", "mlflow (server stopped)")


def harness_config(root: Path, n: int, base_url: str, variant: str, stopped_uri: str) -> Path:
    """``insidellms harness`` of ``n`` examples against the fake server, tracked as ``variant``."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    data = root / "data.jsonl"
    if not data.exists():
        with open(data, "w") as fh:
            for i in range(n):
                fh.write(json.dumps({"id": f"q{i:05d}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)}) + "\n")
    tracking: dict[str, Any] = {"enabled": variant != "off", "backend": "local", "output_dir": str(root / "tracking_logs")}
    if variant.startswith("mlflow"):
        tracking.update(backend="mlflow", tracking_uri=stopped_uri, experiment_name="bench-harness")
    config = {
        "name": "bench",
        "models": [{"type": "openai", "args": {"model_name": "fake", "base_url": base_url}}],
        "probes": [{"type": "factuality", "dataset": {"format": "jsonl", "path": "data.jsonl"}}],
        "generation": {"temperature": 0, "max_tokens": 64},
        "runner": {"concurrency": HARNESS_CONCURRENCY},
        "tracking": tracking,
    }
    path = root / f"harness-{variant.split()[0]}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def harness_run(cfg: Path, examples: int, src: str, env: dict[str, str]) -> tuple[float, float]:
    """One ``insidellms harness`` process on the source tree ``src``: (wall s, CPU s with its children)."""
    from harness_overhead import run_process  # bench/: the same process timing (wait4) as issue 2's bench

    out = cfg.parent / f"runs-{time.monotonic_ns()}"
    argv = [INSIDELLMS, "harness", str(cfg), "--run-dir", str(out), "--no-progress", "--max-examples", str(examples)]
    measured = run_process(argv, {**env, "PYTHONPATH": src})
    shutil.rmtree(out, ignore_errors=True)
    return measured.wall_s, measured.cpu_s


HOOK_TIMER = r"""
import atexit, json, os, sys, time
import insideLLMs.cli.run as cli_run
from insideLLMs.cli.main import main
spent = {}  # hook -> [calls, seconds] on the evaluation's thread

def note(name, started):
    entry = spent.setdefault(name, [0, 0.0])
    entry[0] += 1
    entry[1] += time.perf_counter() - started

class Timed:
    def __init__(self, inner):
        self._inner = inner
    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if not callable(value) or not (name.startswith("on_") or name == "close"):
            return value
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                note(name, started)
        return timed

build = cli_run._tracking_listener
def timed_build(config):
    started = time.perf_counter()
    listener = build(config)
    note("build", started)
    return listener and Timed(listener)
cli_run._tracking_listener = timed_build
atexit.register(lambda: open(os.environ["HOOK_TIMES"], "w").write(json.dumps(spent)))
sys.argv = ["insidellms", *sys.argv[1:]]
main()
"""


def hook_times(cfg: Path, examples: int, src: str, env: dict[str, str]) -> dict[str, list[float]]:
    """Time the evaluation's own thread spends in its tracking listener's calls, per hook: what of
    tracking cannot overlap with anything in that process (robust to other load, unlike wall time)."""
    out, times = cfg.parent / f"runs-{time.monotonic_ns()}", cfg.parent / "hook-times.json"
    subprocess.run([sys.executable, "-c", HOOK_TIMER, "harness", str(cfg), "--run-dir", str(out), "--no-progress",
                    "--max-examples", str(examples)], env={**env, "PYTHONPATH": src, "HOOK_TIMES": str(times)},
                   check=True, capture_output=True)
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(times.read_text())


def section_harness(tmp: Path, examples: int, reps: int, designs: dict[str, str], env: dict[str, str]) -> list[Row]:
    from harness_overhead import Server

    server = Server(HARNESS_LATENCY_MS)
    try:
        base_url = f"{server.url}/v1"
        stopped = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        configs = {v: harness_config(tmp / "harness", examples, base_url, v, stopped) for v in HARNESS_VARIANTS}
        cases = [(d, v, n) for d in designs for v in HARNESS_VARIANTS for n in (1, examples)]
        times: dict[tuple[str, str, int], list[tuple[float, float]]] = {c: [] for c in cases}
        for design, variant, n in cases:  # warm caches (files, bytecode) for every case alike
            harness_run(configs[variant], n, designs[design], env)
        for _ in range(reps):
            for case in cases:  # interleaved, so drift hits all alike
                design, variant, n = case
                times[case].append(harness_run(configs[variant], n, designs[design], env))
        hooks = {(d, v): [hook_times(configs[v], examples, designs[d], env) for _ in range(3)]
                 for d in designs for v in HARNESS_VARIANTS[1:]}
    finally:
        server.stop()
    rows: list[Row] = []
    median = statistics.median
    for design in designs:
        off_big, off_one = times[(design, "off", examples)], times[(design, "off", 1)]
        label = f" [{design}]" if len(designs) > 1 else ""
        rows.append((f"harness {examples:,} examples, c={HARNESS_CONCURRENCY}, {HARNESS_LATENCY_MS:g} ms, off{label}",
                     f"{median(t[0] for t in off_big):.3f}s", "", "", "(baseline)"))
        for variant in HARNESS_VARIANTS[1:]:
            big, one = times[(design, variant, examples)], times[(design, variant, 1)]
            # each repetition's ratio to its own untracked run, then the median: drifts in the machine's
            # speed (this one has them) cancel out of each pair
            ratio = median(t[0] / o[0] for t, o in zip(big, off_big))
            fixed = median(t[0] - o[0] for t, o in zip(one, off_one))
            per_example = (median(t[0] - o[0] for t, o in zip(big, off_big)) - fixed) / (examples - 1)
            fixed_cpu = median(t[1] - o[1] for t, o in zip(one, off_one))
            per_example_cpu = (median(t[1] - o[1] for t, o in zip(big, off_big)) - fixed_cpu) / (examples - 1)
            q1, _, q3 = statistics.quantiles([t[0] / o[0] for t, o in zip(big, off_big)], n=4) if len(big) > 1 else (ratio,) * 3
            cpu_ratio = median(t[1] / o[1] for t, o in zip(big, off_big))
            rows.append((f"  tracking {variant}{label} vs off (quartiles {(q1 - 1) * 100:+.1f}..{(q3 - 1) * 100:+.1f}%; "
                         f"CPU {(cpu_ratio - 1) * 100:+.1f}%)", f"{median(t[0] for t in big):.3f}s",
                         f"{median(t[0] for t in off_big):.3f}s", f"{(ratio - 1) * 100:+.1f}%", "≤ +3%"))
            spent = hooks[(design, variant)]
            calls = sorted({name for h in spent for name in h})
            on_thread = ", ".join(f"{name} {median(h.get(name, [0, 0.0])[1] for h in spent) * 1e3:.1f}" for name in calls)
            total = median(sum(v[1] for v in h.values()) for h in spent)
            rows.append((f"    on the evaluation's thread: {total * 1e3:.0f} ms ({on_thread} ms)", "", "", "", "(info)"))
            rows.append((f"    fixed ms / per-example µs: wall {fixed * 1e3:.0f} ms, {per_example * 1e6:+.1f} µs; "
                         f"CPU {fixed_cpu * 1e3:.0f} ms, {per_example_cpu * 1e6:+.1f} µs", "", "", "", "(info)"))
    return rows


Row = tuple[str, str, str, str, str]


def section_local(tmp: Path, artifact: Path, reps: int) -> list[Row]:
    n = iter(range(1000))
    floor = best_of(reps, lambda: floor_run(tmp / f"floor{next(n)}", artifact))
    local = best_of(reps, lambda: tracked_run("local", artifact, output_dir=str(tmp / "tl-local")))
    return [("local backend vs buffered JSONL (floor)", f"{local:.2f}s", f"{floor:.2f}s",
             f"{local / floor:.2f}× the floor", "≤ 2×")]


def section_mlflow(tmp: Path, artifact: Path, reps: int, url: str, env: dict[str, str]) -> list[Row]:
    ours = best_of(reps, lambda: tracked_run("mlflow", artifact, output_dir=str(tmp / "tl-mlflow"),
                                             tracking_uri=url, experiment_name="bench-ours", flush_timeout_s=600))
    points = STEPS * METRICS_PER_STEP
    sample = min((per_point(url, PER_POINT_SAMPLE, artifact, env) for _ in range(reps)),
                 key=lambda x: per_point_total(x, points))
    base = per_point_total(sample, points)
    no_import = base - sample["import_s"]
    return [(f"our MLflow backend vs log_metric per point ({points:,} points)", f"{ours:.2f}s",
             f"{base:.1f}s*", f"{base / ours:.0f}× faster", "≥ 50×"),
            ("  the same, per-point without its mlflow import (ours never imports mlflow)", "",
             f"{no_import:.1f}s", f"{no_import / ours:.0f}× faster", "(info)")]


def section_sync(tmp: Path, reps: int, url: str, env: dict[str, str]) -> list[Row]:
    from insideLLMs.tracking import get_tracker
    from insideLLMs.tracking.delivery import sync

    tracker = get_tracker("local", output_dir=str(tmp / "tl-sync"), echo=lambda _m: None)
    with tracker.start_run(name="sync-bench") as run:
        for step in range(SYNC_POINTS // METRICS_PER_STEP):
            tracker.log_metrics(step_metrics(step), step=step)
    sync_s = timed(lambda: sync(run.dir, backends=["mlflow"], options={"tracking_uri": url,
                                                                        "experiment_name": "bench-sync"}))
    sample = min((per_point(url, PER_POINT_SAMPLE, None, env) for _ in range(reps)),
                 key=lambda x: per_point_total(x, SYNC_POINTS))
    per_point_sync = per_point_total(sample, SYNC_POINTS)
    return [(f"`tracking sync` of {SYNC_POINTS:,} points vs log_metric per point", f"{sync_s:.2f}s",
             f"{per_point_sync:.1f}s*", f"{per_point_sync / sync_s:.0f}× faster", "≥ 50×")]


# -- 5. the delivery child's exit ---------------------------------------------------------------------

CHILD_EXIT = """
import os, sys
import insideLLMs.tracking.delivery._process, insideLLMs.tracking.backends.mlflow
sys.stdout.write("ready")
sys.stdout.flush()
sys.stdin.readline()
if sys.argv[1] == "os._exit":
    os._exit(0)
sys.exit(0)
"""


def section_child_exit(reps: int, env: dict[str, str]) -> list[Row]:
    """How long the end of a run with a remote backend waits for its delivery child to exit once its
    work is done (``DeliveryProcess.finish`` waits for the exit): ``os._exit`` vs a normal exit."""
    waited: dict[str, list[float]] = {"os._exit": [], "sys.exit": []}
    for _ in range(reps):
        for mode, times in waited.items():
            proc = subprocess.Popen([sys.executable, "-c", CHILD_EXIT, mode], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdout.read(5)
            started = time.perf_counter()
            proc.stdin.write(b"\n")
            proc.stdin.flush()
            proc.wait()
            times.append(time.perf_counter() - started)
    fast, slow = (statistics.median(waited[m]) for m in ("os._exit", "sys.exit"))
    return [("delivery child's exit after its work: os._exit vs interpreter teardown", f"{fast * 1e3:.1f}ms",
             f"{slow * 1e3:.1f}ms", f"{(slow - fast) * 1e3:+.0f} ms", "(info)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition each (noisier)")
    parser.add_argument("--sections", default="1,2,3,4,5", help="which sections to run (default: all)")
    parser.add_argument("--harness-examples", type=int, default=2000)
    parser.add_argument("--harness-reps", type=int, default=7, help="interleaved repetitions of section 3 (noisy)")
    parser.add_argument("--designs", default=f"current={ROOT / 'src'}",
                        help="section 3: name=SRC,… source trees (PYTHONPATH) measured side by side")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="compile every module on every start (PYTHONDONTWRITEBYTECODE, as in some sandboxes)")
    args = parser.parse_args()
    sections = {int(x) for x in args.sections.split(",") if x.strip()}
    reps = 1 if args.quick else 3
    rows: list[Row] = []

    with tempfile.TemporaryDirectory(prefix="insidellms-bench-") as tmp_s:
        tmp = Path(tmp_s)
        os.environ.update(client_env(tmp / "home"))
        if not args.no_bytecode_cache:  # as an installed package: compiled once, not on every start
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # our own delivery children too, not
            os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")  # only the processes given env
        env = {**os.environ, "NO_COLOR": "1", "OPENAI_API_KEY": "sk-bench"}
        (tmp / "home").mkdir()
        artifact = make_artifact(tmp / "records.jsonl")
        # compile what the measured processes import once, untimed, as an installed package would have
        subprocess.run([sys.executable, "-c", "import mlflow, insideLLMs.tracking.delivery._process, "
                        "insideLLMs.tracking.backends.mlflow"], env=env, check=True, capture_output=True)

        if 1 in sections:
            rows += section_local(tmp, artifact, reps)
        if 5 in sections:
            rows += section_child_exit(15, env)
        server = None
        if sections & {2, 4}:
            server = MlflowServer(tmp / "mlflow", port=free_port())
            print(f"starting mlflow server on {server.url} …", file=sys.stderr)
            server.start()
        try:
            if 2 in sections:
                rows += section_mlflow(tmp, artifact, reps, server.url, env)  # type: ignore[union-attr]
            if 4 in sections:
                rows += section_sync(tmp, reps, server.url, env)  # type: ignore[union-attr]
            if 3 in sections:
                designs = dict(d.split("=", 1) for d in args.designs.split(",") if d.strip())
                rows += section_harness(tmp, args.harness_examples, 1 if args.quick else args.harness_reps,
                                        designs, env)
        finally:
            if server is not None:
                server.kill()

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measurement':<{width}}  {'ours':>9}  {'baseline':>9}  {'ratio':>16}  target")
    for name, ours_s, base_s, ratio, target in rows:
        print(f"{name:<{width}}  {ours_s:>9}  {base_s:>9}  {ratio:>16}  {target}")
    print(f"\n* per-point: a fresh process that imports mlflow, starts a run, logs the params, makes "
          f"{PER_POINT_SAMPLE:,} mlflow.log_metric calls\n  against the same server (scaled linearly to the point "
          "count), logs the same artifact (section 2) and ends the run: what its user waits for,\n  as ours "
          "includes its delivery process's start. Best of the repetitions on both sides.")
    print(f"  times are the best of {reps} (sections 1, 2) or the median of "
          f"{1 if args.quick else args.harness_reps} interleaved runs (section 3, whose ratio is the median of "
          "each repetition's ratio to its own untracked run);\n  the harness includes process start and "
          "report.html in both columns.")
    print("  harness runs use " + ("no bytecode cache (every module compiled at each start)." if args.no_bytecode_cache
                                   else "a bytecode cache, as an installed package does (--no-bytecode-cache: without)."))



if __name__ == "__main__":
    main()
