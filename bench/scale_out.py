"""Is a run on Ray worth it? Local (one process) against the Ray executor with 1 and 2 workers (issue 14).

Starts, in a network namespace holding only loopback (Ray binds to the machine's address otherwise; we are root),
the fake OpenAI-compatible server (tests/fake_llm_server.py) as a process and a one-node Ray cluster
(``ray start --head --block``), then runs ``insidellms harness`` side by side on the same 20,000 examples at the
same total concurrency: locally, and on Ray with 1 and 2 workers. Two scenarios:

- ``open``: the server answers after a fixed latency; one process is limited by its own CPU.
- ``capped``: the server answers each connection at most ``--rps`` times a second (a provider's per-client cap),
  and the model keeps ``--connections`` connections per process: one process tops out at connections x rps
  requests a second, which more processes lift.

Prints wall time, the ratio of each row to local, Ray's overhead per example, and the driver's peak RSS (the
``insidellms`` process; with ``--rss-n`` also at a smaller N, to show it does not grow with N). Targets: Ray with 1
worker <= 1.3x local; with 2 workers faster than local where the bottleneck is per client.

    python bench/scale_out.py [--n 20000] [--concurrency 64] [--scenarios open capped] [--rss-n 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_RAY1 = 1.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_eval(folder: Path, n: int, url: str, concurrency: int, connections: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "qa.jsonl").open("w") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"q{i:06d}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)}) + "\n")
    config = {
        "model": {
            "type": "openai",
            "args": {"model_name": "fake", "api_key": "k", "base_url": url, "max_connections": connections},
        },
        "probe": {"type": "factuality"},
        "dataset": {"path": "qa.jsonl"},
        "runner": {"concurrency": concurrency, "max_retries": 0, "timeout_s": 60},
    }
    path = folder / "eval.yaml"
    path.write_text(json.dumps(config))
    return path


def timed_run(config: Path, run_dir: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds and the driver's peak RSS (MB) of one ``insidellms harness``."""
    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(BIN / "insidellms"), "harness", str(config), "--run-dir", str(run_dir), "--no-progress", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"insidellms exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rps", type=float, default=100.0, help="capped: answers per connection per second")
    parser.add_argument("--connections", type=int, default=8, help="capped: the model's connections per process")
    parser.add_argument("--scenarios", nargs="+", default=["open", "capped"], choices=["open", "capped"])
    parser.add_argument("--rss-n", type=int, default=0, help="also measure the driver's RSS at this smaller N")
    args = parser.parse_args()
    if os.environ.get("INSIDELLMS_BENCH_NETNS") != "1":  # re-run in a loopback-only network namespace
        command = " ".join(f"'{a}'" for a in [sys.executable, *sys.argv])
        sys.exit(
            subprocess.run(
                ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {command}"],
                env={**os.environ, "INSIDELLMS_BENCH_NETNS": "1", "HOME": tempfile.mkdtemp(prefix="scale-home")},
            ).returncode
        )

    work = Path(tempfile.mkdtemp(prefix="scale", dir="/tmp"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    ray_port = free_port()
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={ray_port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={work / 'ray'}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{ray_port}"
    try:
        wait_for_port(ray_port)
        print(f"N={args.n:,}  concurrency={args.concurrency} (total)  2 vCPUs shared by server, driver and workers")
        for scenario in args.scenarios:
            server_port = free_port()
            server_args = ["--port", str(server_port), "--latency-ms", str(args.latency_ms)]
            connections = 1024
            if scenario == "capped":
                server_args += ["--per-connection-rps", str(args.rps)]
                connections = args.connections
            server = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "fake_llm_server.py"), *server_args], stdout=subprocess.DEVNULL
            )
            try:
                wait_for_port(server_port)
                url = f"http://127.0.0.1:{server_port}/v1"
                config = write_eval(work / scenario, args.n, url, args.concurrency, connections)
                cap = (
                    f", each process capped at {connections} connections x {args.rps:g}/s = "
                    f"{connections * args.rps:,.0f} requests/s"
                    if scenario == "capped"
                    else ""
                )
                print(f"\n== {scenario}: {args.latency_ms:g} ms per request{cap}")
                print(
                    f"{'executor':<16} {'wall s':>8} {'examples/s':>11} {'vs local':>9} "
                    f"{'overhead/example':>17} {'driver RSS MB':>14}"
                )
                rows = [
                    ("local", ["--executor", "local"]),
                    ("ray, 1 worker", ["--ray-address", address, "--executor", "ray"]),
                    ("ray, 2 workers", ["--ray-address", address, "--executor", "ray"]),
                ]
                local_wall = 0.0
                for name, extra in rows:
                    workers = 2 if "2" in name else 1
                    data = json.loads(config.read_text())
                    if name.startswith("ray"):
                        data["runner"]["executor"] = {"type": "ray", "workers": workers}
                    else:
                        data["runner"].pop("executor", None)
                    config.write_text(json.dumps(data))
                    wall, rss = timed_run(config, work / scenario / "run", extra)
                    local_wall = local_wall or wall
                    overhead = (wall - local_wall) / args.n * 1e6
                    print(
                        f"{name:<16} {wall:>8.2f} {args.n / wall:>11,.0f} {wall / local_wall:>8.2f}x "
                        f"{overhead if name != 'local' else 0:>14,.0f} µs {rss:>14,.0f}"
                    )
                if args.rss_n:
                    small = write_eval(work / f"{scenario}-small", args.rss_n, url, args.concurrency, connections)
                    data = json.loads(small.read_text())
                    data["runner"]["executor"] = {"type": "ray", "workers": 2}
                    small.write_text(json.dumps(data))
                    _, rss_small = timed_run(small, work / f"{scenario}-small" / "run", ["--ray-address", address])
                    print(
                        f"driver RSS, ray 2 workers: {rss_small:,.0f} MB at N={args.rss_n:,}, {rss:,.0f} MB at "
                        f"N={args.n:,}"
                    )
            finally:
                stop(server)
        print(f"\ntargets: ray 1 worker <= {TARGET_RAY1}x local; ray 2 workers < 1x local when capped per client")
    finally:
        stop(head)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
