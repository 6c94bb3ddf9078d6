"""Does a trick in the artifact copier (tracking/store/_artifact_copy.py) pay? Measured side by side in one run.

The copier puts a run directory's files into the tracked run when the run ends, redacted; the
evaluation waits for it, so its time adds to the tracked run's wall time. The user-visible figures
are that wall time (a ~2 s run: 2,000 examples against the fake server, 50 ms per request,
concurrency 64, tracked to the local backend) and the tracked run folder's size on disk.

Sections:

- ``run``: the tracked run's wall time, the figure every saving below is a share of.
- ``copy``: copying that run's files (records, timings, manifest, summary, config, report.html) into
  a tracked run, best of ``--repeat``: the plain copier (read, scan, hash, write) against it with
  each trick the copier once had: the file mapped (mmap) and hashed on a second thread while the
  scan runs, the copy made by the kernel (sendfile); the hash of report.html's known head (4.6 MB of
  styles and plotly.js) worked out once per process; report.html hard-linked instead of copied.
  A trick pays when it saves >= 5 % of the run's wall time.
- ``disk``: the tracked run folder's size with report.html hard-linked and copied.

    python bench/artifact_copy.py [--n 2000] [--repeat 15] [--sections run,copy,disk]

Measured 2026-12-04 (2 shared cores, best of 25): the run 1.89 s; copying its files 17-19 ms in all
(0.9 %); mmap + hash thread + sendfile saved 8 ms (0.44 %), the cached head hash 1.6 ms (0.09 %):
neither pays, both were dropped. Hard-linking report.html: the tracked run's artifacts 1.60 MB
instead of 6.70 MB (76 % less disk): kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness_overhead: the fake server and run helpers

from harness_overhead import ROOT, Server, run_process, write_prompts  # noqa: E402

from insideLLMs.rundir import CONFIG, MANIFEST, RECORDS, REPORT, SUMMARY, TIMINGS  # noqa: E402
from insideLLMs.tracking.store._artifact_copy import _hits, copy_redacted, redacted_bytes  # noqa: E402
from insideLLMs.tracking.store._public_content import public_spans  # noqa: E402

FILES = (RECORDS, TIMINGS, MANIFEST, SUMMARY, CONFIG, REPORT)
REPLACED = {REPORT, SUMMARY, MANIFEST, CONFIG}
TARGET = 0.05


def tracked_run(root: Path, n: int) -> tuple[float, Path]:
    """Section ``run``: a tracked 2,000-example run against the fake server; its wall time and run directory."""
    prompts = root / "prompts.jsonl"
    write_prompts(prompts, n)
    server = Server(latency_ms=50)
    try:
        config = root / "eval.yaml"
        config.write_text(json.dumps({
            "model": {"type": "openai", "args": {"model_name": "fake", "base_url": server.url, "api_key": "x"}},
            "probe": {"type": "logic"}, "dataset": {"format": "jsonl", "path": str(prompts)},
            "runner": {"concurrency": 64},
            "tracking": {"enabled": True, "backend": "local", "output_dir": str(root / "tracking_logs")},
        }))
        exe = str(Path(sys.executable).parent / "insidellms")
        walls = []
        for _ in range(3):
            argv = [exe, "run", str(config), "--run-dir", str(root / "run"), "--overwrite", "--no-progress"]
            walls.append(run_process(argv).wall_s)
        return statistics.median(walls), root / "run"
    finally:
        server.stop()


# -- the copiers compared ------------------------------------------------------------------------------------


def plain(src: Path, dst: Path, link: bool = False) -> str:
    """What the copier does now: read, scan (and redact), hash, write; report.html hard-linked when clean."""
    return copy_redacted(src, dst, link=link)


def plain_no_link(src: Path, dst: Path, link: bool = False) -> str:
    return copy_redacted(src, dst)


def mapped(src: Path, dst: Path, link: bool = False) -> str:
    """The old trick: big files mapped, hashed on a second thread while the scan runs, copied by sendfile."""
    with open(src, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 1 << 20:
            return plain_no_link(src, dst)
        with mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as view:
            digest: list[str] = []
            hasher = threading.Thread(target=lambda: digest.append(hashlib.sha256(view).hexdigest()))
            hasher.start()
            try:
                clean = not _hits(view, public_spans(view, src.suffix.lower()))
                if clean:
                    with open(dst, "wb") as out:
                        offset = 0
                        while offset < size:
                            offset += os.sendfile(out.fileno(), fh.fileno(), offset, size - offset)
            finally:
                hasher.join()
            if clean:
                return digest[0]
    return plain_no_link(src, dst)


def head_hashed(head: bytes, state: "hashlib._Hash") -> Callable[[Path, Path, bool], str]:
    """The old trick: the hash of report.html's head (the same for every page) worked out once per process."""
    def copy(src: Path, dst: Path, link: bool = False) -> str:
        raw = src.read_bytes()
        out = redacted_bytes(raw, src.suffix.lower())
        dst.write_bytes(out)
        if out is raw and raw.startswith(head):
            digest = state.copy()
            digest.update(memoryview(raw)[len(head):])
            return digest.hexdigest()
        return hashlib.sha256(out).hexdigest()
    return copy


def time_copier(copier: Callable[[Path, Path, bool], str], run_dir: Path, dest: Path, repeat: int) -> float:
    """Best of ``repeat``: every file of the run copied into ``dest`` (same filesystem as the run, like tracking_logs)."""
    best = float("inf")
    for _ in range(repeat):
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        start = time.perf_counter()
        for name in FILES:
            copier(run_dir / name, dest / name, name in REPLACED)
        best = min(best, time.perf_counter() - start)
    return best


def folder_size(path: Path) -> int:
    """Bytes on disk of the files in ``path``, a file hard-linked from elsewhere counted as no extra space."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for f in path.rglob("*"):
        st = f.stat()
        if f.is_file() and st.st_nlink == 1 and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sections", default="run,copy,disk")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-artifact-copy-", dir=ROOT) as tmp:
        root = Path(tmp)
        wall, run_dir = tracked_run(root, args.n)
        sizes = {name: (run_dir / name).stat().st_size for name in FILES}
        print(f"run: tracked {args.n:,}-example run, fake server 50 ms, concurrency 64: {wall:.3f} s (median of 3)")
        print("     files: " + ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sizes.items()))
        if "copy" in sections:
            from insideLLMs.report.page import page_head

            head = page_head()
            copiers = {
                "plain (read, scan, hash, write; report.html linked)": plain,
                "plain, report.html copied": plain_no_link,
                "+ mmap, hash thread, sendfile": mapped,
                "+ report head's hash cached": head_hashed(head, hashlib.sha256(head)),
            }
            base = time_copier(plain_no_link, run_dir, root / "dest-base", args.repeat)
            print(f"\ncopy: best of {args.repeat}; saving vs the plain copier with report.html copied (timed again "
                  f"first: the rows differ by noise too), as a share of the run's wall time (pays at >= {TARGET:.0%})")
            for label, copier in copiers.items():
                took = time_copier(copier, run_dir, root / "dest", args.repeat)
                saved = base - took
                verdict = "pays" if saved / wall >= TARGET else "does not pay"
                print(f"  {label:<52} {took * 1000:7.1f} ms   saves {saved * 1000:6.1f} ms = {saved / wall:6.2%}  {verdict}")
        if "disk" in sections:
            last = max((p for p in (root / "tracking_logs").iterdir() if p.is_dir()),
                       key=lambda p: (p / "journal.jsonl").stat().st_mtime)  # the run whose report.html is current
            tracked = last / "artifacts"
            linked = folder_size(tracked)
            copied = root / "copied"
            shutil.copytree(tracked, copied)
            whole = folder_size(copied)
            share = 1 - linked / whole
            print(f"\ndisk: the tracked run's artifacts: {linked / 1e6:.2f} MB with report.html hard-linked, "
                  f"{whole / 1e6:.2f} MB copied ({share:.0%} less: {'pays' if share >= TARGET else 'does not pay'})")


if __name__ == "__main__":
    main()
