"""How much does `insidellms run` cost over the least a client can do? (issue 2, Benchmark)

Starts the fake OpenAI-compatible server (tests/fake_llm_server.py) as a process with a
fixed latency, then side by side, as whole processes on the same prompts: (a) the floor
client (bench/floor_client.py) and (b) `insidellms run` with the openai model, at each
concurrency. Prints wall time, ratio to the floor and to the ideal (N x latency /
concurrency), what the server saw in flight (peak/mean), CPU and peak RSS; then
examples/s of `insidellms run` with the dummy model (RSS at two sizes: it must not grow
with N). ``--transports`` adds the model class alone (N concurrent agenerate calls in one
process) through each client, which is how the openai model's client was chosen.
``--probe echo`` swaps the logic probe for one that scores nothing, to tell the harness's
own cost from the probe's.

    python bench/harness_overhead.py [--n 2000] [--concurrency 64 256] [--repeat 3] [--transports] [--probe echo]
                                     [--variant NAME=SRC_DIR ...]

``--variant NAME=SRC_DIR`` (repeatable) runs `insidellms run` from each source tree (a checkout's
``src``) instead of the installed one, interleaved in every repeat, so two versions of the code
are compared side by side in one run rather than against remembered numbers.

Processes run with a bytecode cache, as an installed package does (``--no-bytecode-cache``: without).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from insideLLMs.datasets import Example
from insideLLMs.models.base import Completion
from insideLLMs.probes.base import Probe, Verdict

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGET_RATIO = 1.25
TARGET_DUMMY_RATE = 5000

MODEL_ONLY = """
import asyncio, sys, time
from insideLLMs.models import get_model
url, client, concurrency, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
async def main():
    model = get_model("openai", model_name="fake", base_url=url, client=client)
    gate = asyncio.Semaphore(concurrency)
    async def one(i):
        async with gate:
            return await model.agenerate([{"role": "user", "content": f"What is {i} plus {i}?"}])
    await one(-1)
    cpu = time.process_time()
    answers = await asyncio.gather(*(one(i) for i in range(n)))
    print((time.process_time() - cpu) * 1000 / n)
    await model.aclose()
asyncio.run(main())
"""


class EchoProbe(Probe):
    """``--probe echo``: the least a probe can do (`insidellms run` loads it as harness_overhead:EchoProbe)."""

    name = "echo"

    def score(self, example: Example, completion: Completion) -> Verdict:
        return Verdict()


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    output: str = ""


def run_process(argv: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run argv to completion; wall time, CPU and peak RSS of that child alone (wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{output[-2000:]}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output)


class Server:
    def __init__(self, latency_ms: float) -> None:
        argv = [PYTHON, str(ROOT / "tests" / "fake_llm_server.py"), "--port", "0", "--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            sys.exit(f"fake server did not start: {line}")
        self.url = line.split()[-1]

    def _call(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        self._call("/_reset", {})

    def configure(self, **behaviour: object) -> None:
        """Change what the server does (its /_control): ``judge={...}`` turns on judge mode, say."""
        self._call("/_control", behaviour)

    def stats(self) -> dict:
        return self._call("/_stats")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_prompts(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"ex{i:06d}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)}) + "\n")


def write_config(path: Path, model: dict, prompts: Path, concurrency: int, probe: str) -> None:
    config = {
        "model": model,
        "probe": {"type": "harness_overhead:EchoProbe" if probe == "echo" else probe},
        "dataset": {"format": "jsonl", "path": str(prompts)},
        "runner": {"concurrency": concurrency},
    }
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML


def insidellms_argv(config: Path, run_dir: Path) -> list[str]:
    exe = Path(PYTHON).parent / "insidellms"
    command = [str(exe)] if exe.exists() else [shutil.which("insidellms") or "insidellms"]
    return [*command, "run", str(config), "--run-dir", str(run_dir), "--overwrite", "--no-progress", "--no-track"]


def warm_up(tmpdir: Path, base_url: str, probe: str, env: dict[str, str]) -> None:
    """One small run of each process first, so both start with warm file and bytecode caches."""
    prompts = tmpdir / "warm-up.jsonl"
    write_prompts(prompts, 8)
    config = tmpdir / "warm-up.yaml"
    write_config(config, {"type": "openai", "args": {"model_name": "fake", "base_url": base_url}}, prompts, 4, probe)
    run_process([PYTHON, str(ROOT / "bench" / "floor_client.py"), base_url, str(prompts), str(tmpdir / "warm-up-floor.jsonl")], env)
    run_process(insidellms_argv(config, tmpdir / "warm-up-run"), env)


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def variant_envs(specs: list[str], env: dict[str, str]) -> dict[str, dict[str, str]]:
    """name -> the environment that runs `insidellms` from that source tree ("installed": as it is)."""
    if not specs:
        return {"installed": env}
    out = {}
    for spec in specs:
        name, sep, src = spec.partition("=")
        if not sep or not Path(src, "insideLLMs", "__init__.py").is_file():
            sys.exit(f"--variant {spec}: expected NAME=SRC_DIR, a directory holding insideLLMs/")
        out[name] = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(Path(src).resolve())])}
    return out


def run_name(variant: str) -> str:
    return "insidellms run" if variant == "installed" else f"run {variant}"


def row(name: str, m: Measured, floor: float | None, ideal: float, stats: dict | None) -> str:
    ratio = f"{m.wall_s / floor:6.2f}x" if floor else "    -  "
    flight = f"{stats['peak_in_flight']:5d} / {stats['mean_in_flight']:6.1f}" if stats else "      -       "
    return f"  {name:<22} {m.wall_s:7.2f}s {ratio} {m.wall_s / ideal:6.2f}x  {flight}  {m.cpu_s:6.2f}s {m.peak_rss_mb:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="examples per openai run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3, help="best of R (alternating floor and run)")
    parser.add_argument("--dummy-n", type=int, default=20000)
    parser.add_argument("--transports", action="store_true", help="also time the model class alone per client")
    parser.add_argument("--skip-cli", action="store_true", help="floor (and --transports) only")
    parser.add_argument("--dummy-only", action="store_true", help="only the dummy-model section (no server)")
    parser.add_argument("--probe", default="logic", help="probe type for `insidellms run`; 'echo' scores nothing")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SRC_DIR",
                        help="run `insidellms run` from this source tree too (repeatable); default: the installed one")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="compile every module on every start (PYTHONDONTWRITEBYTECODE, as in some sandboxes)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="insidellms-bench-") as tmp:
        tmpdir = Path(tmp)
        pythonpath = os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "HOME": str(tmpdir), "OPENAI_API_KEY": "sk-bench", "PYTHONPATH": pythonpath}
        if not args.no_bytecode_cache:  # as an installed package: compiled once, not on every start
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmpdir / "pycache")
        variants = variant_envs(args.variant, env)
        failures: list[str] = []
        if not args.dummy_only:
            failures += openai_section(args, tmpdir, env, {} if args.skip_cli else variants)
        if not args.skip_cli:
            failures += dummy_section(args, tmpdir, variants)
        print("targets: " + ("all met" if not failures else "MISSED\n  " + "\n  ".join(failures)))


def openai_section(args: argparse.Namespace, tmpdir: Path, env: dict[str, str],
                   variants: dict[str, dict[str, str]]) -> list[str]:
    """The floor client and `insidellms run` against the fake server at each concurrency; the targets missed."""
    prompts = tmpdir / "prompts.jsonl"
    write_prompts(prompts, args.n)
    failures: list[str] = []
    server = Server(args.latency_ms)
    try:
        base_url = f"{server.url}/v1"
        print(f"fake server {server.url}, latency {args.latency_ms:.0f} ms, N={args.n}, "
              f"probe {args.probe}, best of {args.repeat}, load average {os.getloadavg()[0]:.1f}")
        print(f"  {'':<22} {'wall':>8} {'/floor':>7} {'/ideal':>7}  {'in flight pk/mean':>14}  {'cpu':>7} {'RSS MB':>7}")
        for variant_env in variants.values() or [env]:
            warm_up(tmpdir, base_url, args.probe, variant_env)
        for concurrency in args.concurrency:
            ideal = args.n * args.latency_ms / 1000 / concurrency
            config = tmpdir / f"openai-{concurrency}.yaml"
            write_config(config, {"type": "openai", "args": {"model_name": "fake", "base_url": base_url}}, prompts, concurrency, args.probe)
            best: dict[str, tuple[Measured, dict]] = {}
            for _ in range(args.repeat):
                cases = [("floor", [PYTHON, str(ROOT / "bench" / "floor_client.py"), base_url, str(prompts),
                                    str(tmpdir / "floor.jsonl"), "--concurrency", str(concurrency)], env)]
                cases += [(run_name(variant), insidellms_argv(config, tmpdir / f"run-{concurrency}-{variant}"),
                           variant_env) for variant, variant_env in variants.items()]
                for name, argv, case_env in cases:
                    server.reset()
                    measured = run_process(argv, case_env)
                    stats = server.stats()
                    if name not in best or measured.wall_s < best[name][0].wall_s:
                        best[name] = (measured, stats)
            print(f"concurrency {concurrency} (ideal {ideal:.2f}s)")
            floor = best["floor"][0].wall_s
            assert count_lines(tmpdir / "floor.jsonl") == args.n
            for name, (measured, stats) in best.items():
                print(row(name, measured, floor, ideal, stats))
            for variant in variants:
                run_m, run_stats = best[run_name(variant)]
                records = count_lines(tmpdir / f"run-{concurrency}-{variant}" / "records.jsonl")
                if records != args.n or run_stats["requests"] != args.n:
                    failures.append(f"c={concurrency} {variant}: {records} records, {run_stats['requests']} requests (want {args.n})")
                if run_m.wall_s > TARGET_RATIO * floor:
                    failures.append(f"c={concurrency} {variant}: insidellms run {run_m.wall_s / floor:.2f}x the floor (target <= {TARGET_RATIO})")
                # connecting the first wave takes a while on a loaded machine: the floor itself
                # peaks a few short of the concurrency there, so allow 5%
                if run_stats["peak_in_flight"] < 0.95 * concurrency:
                    failures.append(f"c={concurrency} {variant}: server saw only {run_stats['peak_in_flight']} in flight")
            if args.transports:
                for client in ("aiohttp", "sdk"):
                    m = run_process([PYTHON, "-c", MODEL_ONLY, base_url, client, str(concurrency), str(args.n)], env)
                    cpu_per_request = float(m.output.strip().splitlines()[-1])
                    print(f"  {'model only, ' + client:<22} {m.wall_s:7.2f}s  (process; {cpu_per_request:.2f} ms CPU per request in the loop, RSS {m.peak_rss_mb:.0f} MB)")
    finally:
        server.stop()
    return failures


def dummy_section(args: argparse.Namespace, tmpdir: Path, variants: dict[str, dict[str, str]]) -> list[str]:
    """Examples/s of `insidellms run` with the dummy model at two sizes (RSS must not grow with N); the targets missed."""
    failures: list[str] = []
    print(f"dummy model ({args.probe} probe, writing the run directory), best of {args.repeat}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for n in sorted({2000, args.dummy_n}):
        dummy_prompts = tmpdir / f"dummy-{n}.jsonl"
        write_prompts(dummy_prompts, n)
        config = tmpdir / f"dummy-{n}.yaml"
        write_config(config, {"type": "dummy"}, dummy_prompts, 64, args.probe)
        dummy_best: dict[str, Measured] = {}
        for _ in range(args.repeat):
            for variant, variant_env in variants.items():
                m = run_process(insidellms_argv(config, tmpdir / f"dummy-run-{n}-{variant}"), variant_env)
                if variant not in dummy_best or m.wall_s < dummy_best[variant].wall_s:
                    dummy_best[variant] = m
        for variant, m in dummy_best.items():
            rate = n / m.wall_s
            print(f"  N={n:<6} {variant:<18} {m.wall_s:6.2f}s  {rate:8,.0f} examples/s  cpu {m.cpu_s:5.2f}s  "
                  f"peak RSS {m.peak_rss_mb:6.1f} MB")
            if n == args.dummy_n and rate < TARGET_DUMMY_RATE:
                failures.append(f"dummy {variant}: {rate:,.0f} examples/s (target >= {TARGET_DUMMY_RATE:,})")
    return failures


if __name__ == "__main__":
    main()
