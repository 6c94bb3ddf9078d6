"""Benchmark: `insidellms diff` on two 1,000,000-record runs vs. just parsing both files.

Generates two run directories (≈1% of examples changed) in a temporary directory, then times,
each as its own process, side by side:

- floor: a plain ``orjson.loads`` of every line of both records.jsonl files;
- diff:  ``insidellms diff baseline candidate --format json -o diff.json``.

Prints both times, the ratio (target ≤ 2×) and the diff's peak RSS (target < 300 MB).
Usage: ``.venv/bin/python bench/diff_scale.py [--records N] [--repeat K] [--variant NAME=SRC_DIR ...]``.

``--variant NAME=SRC_DIR`` (repeatable) runs the diff from each source tree (a checkout's ``src``),
interleaved with the floor in every repeat, to compare two versions of the code side by side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import sys, orjson
n = 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
print(n)
"""

LINE = (
    '{"error":null,"example_id":"ex%07d","input":{"answer":"%d","prompt":"What is %d plus %d? Answer with a number."},'
    '"messages":[{"content":"What is %d plus %d? Answer with a number.","role":"user"}],'
    '"model":{"id":"%s","params":{"temperature":0},"provider":"openai"},"output":"%s","passed":%s,'
    '"probe":{"id":"arithmetic","params":{},"version":"1"},"run_id":"%s","scores":{"correct":%s},'
    '"status":"success","usage":{"completion_tokens":3,"prompt_tokens":17}}\n'
)


def write_run(run_dir: Path, n: int, run_id: str, change_every: int) -> None:
    """``n`` records; every ``change_every``-th answer is wrong (0: none)."""
    run_dir.mkdir(parents=True)
    with open(run_dir / "records.jsonl", "w", encoding="utf-8") as fh:
        chunk = []
        for i in range(n):
            wrong = change_every and i % change_every == 7
            answer = str(2 * i + (1 if wrong else 0))
            chunk.append(LINE % (i, 2 * i, i, i, i, i, "gpt-x", answer, "false" if wrong else "true", run_id,
                                 "false" if wrong else "true"))
            if len(chunk) == 100_000:
                fh.write("".join(chunk))
                chunk.clear()
        fh.write("".join(chunk))
    (run_dir / "manifest.json").write_text(f'{{"run_id": "{run_id}", "schema_version": "1"}}\n')


# Linux carries the parent's RSS high-water mark into a forked child's ru_maxrss, and this process
# holds the generated data; a tiny wrapper process starts the measured command instead.
WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one child process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True, env=env)
    seconds, maxrss_kb, code = out.stdout.split()
    return float(seconds), int(maxrss_kb) / 1024, int(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best time counts")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SRC_DIR",
                        help="run the diff from this source tree too (repeatable); default: the installed one")
    args = parser.parse_args()
    variants: dict[str, dict[str, str] | None] = {"insidellms diff": None} if not args.variant else {}
    for spec in args.variant:
        name, sep, src = spec.partition("=")
        if not sep or not Path(src, "insideLLMs", "__init__.py").is_file():
            sys.exit(f"--variant {spec}: expected NAME=SRC_DIR, a directory holding insideLLMs/")
        variants[f"diff {name}"] = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    insidellms = str(Path(sys.executable).with_name("insidellms"))
    with tempfile.TemporaryDirectory(prefix="insidellms-bench-") as tmp:
        base, cand = Path(tmp, "baseline"), Path(tmp, "candidate")
        t0 = time.perf_counter()
        write_run(base, args.records, "base0000", 0)
        write_run(cand, args.records, "cand0000", 100)
        size = (base / "records.jsonl").stat().st_size / 1e6
        print(f"generated 2 × {args.records:,} records ({size:,.0f} MB each) in {time.perf_counter() - t0:.1f}s")
        floor_cmd = [sys.executable, "-c", FLOOR, str(base / "records.jsonl"), str(cand / "records.jsonl")]
        diff_cmd = [insidellms, "diff", str(base), str(cand), "--format", "json", "-o", str(Path(tmp, "diff.json"))]
        floors: list[tuple[float, float, int]] = []
        diffs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            floors.append(timed(floor_cmd))
            for name, env in variants.items():
                diffs[name].append(timed(diff_cmd, env))
        floor = min(floors)
        print(f"{'':24}{'seconds':>10}{'peak RSS MB':>14}{'/floor':>8}")
        print(f"{'floor: orjson parse':24}{floor[0]:>10.2f}{floor[1]:>14.0f}")
        for name, runs in diffs.items():
            best = min(runs)
            if best[2] not in (0, 2):
                sys.exit(f"{name} failed with exit code {best[2]}")
            print(f"{name:24}{best[0]:>10.2f}{max(d[1] for d in runs):>14.0f}{best[0] / floor[0]:>7.2f}×")
        print("targets: diff / floor ≤ 2×, peak RSS < 300 MB")


if __name__ == "__main__":
    main()
