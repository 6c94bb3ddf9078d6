"""W&B in offline mode for tests, and a reader for what it wrote.

``wandb_env`` points every W&B directory (and HOME) at tmp and sets ``WANDB_MODE=offline``.
``read_offline_run`` reads the run's ``.wandb`` transaction logs (W&B's own protobuf records, in its
leveldb-style log format) from every offline session of one run id, in order, and returns what W&B
would show: config, history rows, summary, tags, artifacts and the exit code.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

_BLOCK = 32 * 1024
_HEADER = 7  # ":W&B" + magic (2 bytes) + version (1 byte); record headers: crc (4), length (2), type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    """Every protobuf ``Record`` in one ``run-<id>.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    buf = path.read_bytes()
    if buf[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log")
    pos, parts = _HEADER, []
    while pos + _HEADER <= len(buf):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", buf[pos:pos + _HEADER])
        pos += _HEADER
        if kind == 0 and length == 0:
            pos += left - _HEADER
            continue
        data = buf[pos:pos + length]
        pos += length
        if kind == _FULL:
            yield pb.Record.FromString(data)
        elif kind == _FIRST:
            parts = [data]
        elif kind == _MIDDLE:
            parts.append(data)
        elif kind == _LAST:
            parts.append(data)
            yield pb.Record.FromString(b"".join(parts))


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


@dataclass
class OfflineRun:
    run_id: str
    sessions: int = 0
    name: str = ""
    project: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)

    def series(self, key: str) -> list[tuple[int, float]]:
        return [(row["_step"], row[key]) for row in self.history if key in row]


def _finished(path: Path) -> bool:
    try:
        return any(r.WhichOneof("record_type") == "exit" for r in records(path))
    except (ValueError, OSError):
        return False


def read_offline_run(wandb_dir: Path, run_id: str, timeout_s: float = 60.0, sessions: int = 1) -> OfflineRun:
    """Merge every offline session (``offline-run-*-<id>``) of one run under ``wandb_dir``.

    ``run.finish()`` returns before W&B's service process has written everything (on a loaded machine
    a session's folder may not even exist yet), so this waits (up to ``timeout_s``) until at least
    ``sessions`` sessions exist and each one's log holds its exit record.
    """
    run = OfflineRun(run_id)
    deadline = time.monotonic() + timeout_s
    while True:
        paths = sorted(wandb_dir.rglob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
        done = len(paths) >= sessions and all(_finished(p) for p in paths)
        if done or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    for path in paths:
        run.sessions += 1
        for rec in records(path):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                r = rec.run
                run.name, run.project = r.display_name, r.project
                run.tags = list(r.tags)
                for item in r.config.update:
                    run.config[_key(item)] = json.loads(item.value_json)
            elif kind == "config":
                for item in rec.config.update:
                    run.config[_key(item)] = json.loads(item.value_json)
            elif kind == "history":
                run.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
            elif kind == "summary":
                for item in rec.summary.update:
                    keys = list(item.nested_key) or [item.key]
                    target = run.summary
                    for k in keys[:-1]:
                        target = target.setdefault(k, {})
                    target[keys[-1]] = json.loads(item.value_json)
            elif kind == "artifact":
                a = rec.artifact
                run.artifacts.append({"name": a.name, "type": a.type,
                                      "files": sorted(e.path for e in a.manifest.contents)})
            elif kind == "exit":
                run.exit_codes.append(rec.exit.exit_code)
    run.config.pop("_wandb", None)
    return run


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline W&B with every directory it writes (and HOME) under tmp; returns WANDB_DIR."""
    pytest.importorskip("wandb")
    root = tmp_path / "wandb-env"
    for name, sub in (("WANDB_DIR", "dir"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"),
                      ("WANDB_DATA_DIR", "data"), ("HOME", "home"), ("XDG_CONFIG_HOME", "home/.config")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(root / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return root / "dir"
