"""Partial run directories made in this process (``--shard I/N`` through ``build_harness``), fast enough for the
bad-input table, and the comparison of a merged run directory with an unsharded one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from insideLLMs.config import load_config
from insideLLMs.run import Shard, build_harness


def run_in_process(config: Path, run_dir: Path, shard: str | None = None, **settings: Any) -> Path:
    """``insidellms harness CONFIG --run-dir RUN_DIR [--shard I/N]``, without a subprocess (no tracking)."""
    loaded = load_config(config)
    grid = build_harness(loaded, run_dir=run_dir, shard=Shard.parse(shard) if shard else None, **settings)
    asyncio.run(grid.arun())
    return run_dir


def shard_dirs(config: Path, root: Path, count: int, only: list[int] | None = None) -> list[Path]:
    """Shards ``only`` (default: all) of ``count`` of ``config``, in ``root/part-I``."""
    return [
        run_in_process(config, root / f"part-{i}", f"{i}/{count}") for i in (only if only is not None else range(count))
    ]


def deterministic_bytes(run_dir: Path) -> dict[str, bytes]:
    """What must be byte-identical between a merged and an unsharded run: the files, and summary.json but
    its ``volatile`` section."""
    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    summary.pop("volatile")
    files = {name: (run_dir / name).read_bytes() for name in ("records.jsonl", "manifest.json", "config.resolved.yaml")}
    return files | {"summary.json minus volatile": orjson.dumps(summary, option=orjson.OPT_SORT_KEYS)}
