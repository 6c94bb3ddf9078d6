"""Benchmark: `insidellms diff` on two 1,000,000-record runs vs. just parsing both files, and the cost of
error bars (issue 13) in `diff` and in the summary, with intervals vs without, side by side.

Generates two run directories (≈1% of examples changed) in a temporary directory, then times,
each as its own process, interleaved in every repeat:

- floor: a plain ``orjson.loads`` of every line of both records.jsonl files;
- diff:  ``insidellms diff baseline candidate --format json -o diff.json``, from this tree (paired
  differences, intervals and power) and from ``--diff-without`` (the code before them);
- summary: ``rebuild_summary`` of the candidate (summary.json from records.jsonl), from this tree
  (every rate and mean with its interval) and from ``--summary-without`` (the code before intervals).

Prints the times, diff / floor (target ≤ 2×), each with / without ratio (target ≤ 1.2×) and peak RSS
(target < 300 MB). The trees without are exported with ``git archive`` into the temporary directory.
Usage: ``.venv/bin/python bench/diff_scale.py [--records N] [--repeat K] [--continuous-score]
[--variant NAME=SRC_DIR ...]``.

``--continuous-score`` adds an ``f1`` score with a distinct value on every record (the worst case for the
diff's tally of identical pairs). ``--variant NAME=SRC_DIR`` (repeatable) also runs the diff from each
source tree (a checkout's ``src``), to compare other versions of the code side by side.
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIFF_WITHOUT = "a984bb7"  # main before diff's paired differences, power and interval gate (issue 13)
SUMMARY_WITHOUT = "5656fc6"  # main before summary.json's intervals (issue 13)
SUMMARY = """
import sys
from pathlib import Path
from insideLLMs.report import rebuild_summary
rebuild_summary(Path(sys.argv[1]))
"""

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
    '"probe":{"id":"arithmetic","params":{},"version":"1"},"run_id":"%s","scores":{"correct":%s%s},'
    '"status":"success","usage":{"completion_tokens":3,"prompt_tokens":17}}\n'
)


def write_run(run_dir: Path, n: int, run_id: str, change_every: int, continuous: bool = False) -> None:
    """``n`` records; every ``change_every``-th answer is wrong (0: none); ``continuous``: an f1 score too."""
    run_dir.mkdir(parents=True)
    with open(run_dir / "records.jsonl", "w", encoding="utf-8") as fh:
        chunk = []
        for i in range(n):
            wrong = change_every and i % change_every == 7
            answer = str(2 * i + (1 if wrong else 0))
            f1 = f',"f1":{(0.0 if wrong else (i % 999_983) / 999_983):.6f}' if continuous else ""
            chunk.append(LINE % (i, 2 * i, i, i, i, i, "gpt-x", answer, "false" if wrong else "true", run_id,
                                 "false" if wrong else "true", f1))
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
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.perf_counter() - start, usage.ru_maxrss, code, usage.ru_utime + usage.ru_stime)
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, float]:
    """(seconds, peak RSS in MB, exit code, CPU seconds) of one child process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True, env=env)
    seconds, maxrss_kb, code, cpu = out.stdout.split()
    return float(seconds), int(maxrss_kb) / 1024, int(code), float(cpu)


def export_tree(rev: str, dest: Path) -> Path:
    """``src`` of git revision ``rev`` of this repository, extracted under ``dest`` (``git archive``)."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src/insideLLMs"],
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(dest, filter="data")
    compileall.compile_dir(dest / "src", quiet=1)  # no first-run compile in the timings
    return dest / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best time counts")
    parser.add_argument("--continuous-score", action="store_true", help="add an f1 score, distinct on every record")
    parser.add_argument("--diff-without", default=DIFF_WITHOUT, metavar="REV",
                        help="git revision of the diff without intervals (default: %(default)s)")
    parser.add_argument("--summary-without", default=SUMMARY_WITHOUT, metavar="REV",
                        help="git revision of the summary without intervals (default: %(default)s)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SRC_DIR",
                        help="run the diff from this source tree too (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="insidellms-bench-") as tmp:
        trees = {"this tree": ROOT / "src",
                 "diff-without": export_tree(args.diff_without, Path(tmp, "diff-without")),
                 "summary-without": export_tree(args.summary_without, Path(tmp, "summary-without"))}

        def env(src: Path) -> dict[str, str]:
            return {**os.environ, "PYTHONPATH": str(src.resolve())}

        variants: dict[str, dict[str, str]] = {
            "diff without intervals": env(trees["diff-without"]),
            "diff with intervals": env(trees["this tree"]),
        }
        for spec in args.variant:
            name, sep, src = spec.partition("=")
            if not sep or not Path(src, "insideLLMs", "__init__.py").is_file():
                sys.exit(f"--variant {spec}: expected NAME=SRC_DIR, a directory holding insideLLMs/")
            variants[f"diff {name}"] = env(Path(src))
        summaries = {"summary without intervals": env(trees["summary-without"]),
                     "summary with intervals": env(trees["this tree"])}
        insidellms = str(Path(sys.executable).with_name("insidellms"))
        base, cand = Path(tmp, "baseline"), Path(tmp, "candidate")
        t0 = time.perf_counter()
        write_run(base, args.records, "base0000", 0, args.continuous_score)
        write_run(cand, args.records, "cand0000", 100, args.continuous_score)
        size = (base / "records.jsonl").stat().st_size / 1e6
        print(f"generated 2 × {args.records:,} records ({size:,.0f} MB each) in {time.perf_counter() - t0:.1f}s"
              + (" with a continuous f1 score" if args.continuous_score else ""))
        floor_cmd = [sys.executable, "-c", FLOOR, str(base / "records.jsonl"), str(cand / "records.jsonl")]
        diff_cmd = [insidellms, "diff", str(base), str(cand), "--format", "json", "-o", str(Path(tmp, "diff.json"))]
        summary_cmd = [sys.executable, "-c", SUMMARY, str(cand)]
        floors: list[tuple[float, float, int, float]] = []
        times: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in [*variants, *summaries]}
        for _ in range(args.repeat):
            floors.append(timed(floor_cmd))
            for name, variant_env in variants.items():
                times[name].append(timed(diff_cmd, variant_env))
            for name, variant_env in summaries.items():
                times[name].append(timed(summary_cmd, variant_env))
        floor = min(floors)
        floor_cpu = min(f[3] for f in floors)
        best: dict[str, tuple[float, float]] = {}  # name -> (best wall, best CPU)
        print(f"{'':28}{'wall s':>8}{'CPU s':>8}{'peak RSS MB':>13}{'/floor':>8}")
        print(f"{'floor: orjson parse':28}{floor[0]:>8.2f}{floor_cpu:>8.2f}{floor[1]:>13.0f}")
        for name, runs in times.items():
            if any(r[2] not in (0, 2) for r in runs):
                sys.exit(f"{name} failed with exit code {[r[2] for r in runs]}")
            best[name] = (min(r[0] for r in runs), min(r[3] for r in runs))
            print(f"{name:28}{best[name][0]:>8.2f}{best[name][1]:>8.2f}{max(r[1] for r in runs):>13.0f}"
                  f"{best[name][0] / floor[0]:>7.2f}×")
        for what in ("diff", "summary"):
            (w1, c1), (w0, c0) = best[f"{what} with intervals"], best[f"{what} without intervals"]
            print(f"{what} with / without intervals: {w1 / w0:.3f}× wall, {c1 / c0:.3f}× CPU")
        print("targets: diff / floor ≤ 2×, with / without intervals ≤ 1.2×, peak RSS < 300 MB "
              "(on a shared machine, read the CPU ratio: wall times move with the load)")


if __name__ == "__main__":
    main()
