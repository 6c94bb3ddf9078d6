"""An opt-in on-disk cache of model answers, keyed by model spec, messages and generation settings.

Re-running a run with a changed probe (or after a crash without ``--resume``) then costs no API
calls. Only successful answers are cached. SQLite (stdlib) keeps it one file, safe to share
between processes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from insideLLMs.canonical import hash_obj
from insideLLMs.models.base import Completion, Message, Usage


class ResponseCache:
    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "responses.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # No fsync per answer: a power cut may lose the last answers (they are asked again), never the file's
        # consistency. A run that fills the cache: bench/eval_scorers.py, section (b).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, completion BLOB NOT NULL)")

    @staticmethod
    def key(
        model_spec: dict[str, Any], messages: list[Message], generation: dict[str, Any], epoch: int | None = None
    ) -> str:
        """The answer's key; an epoch of a run with epochs is part of it, so epochs are never served one answer."""
        request: dict[str, Any] = {"model": model_spec, "messages": messages, "generation": generation}
        if epoch is not None:
            request["epoch"] = epoch
        return hash_obj(request)

    def get(self, key: str) -> Completion | None:
        row = self._db.execute("SELECT completion FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = orjson.loads(row[0])
        usage = Usage(**data["usage"]) if data.get("usage") else None
        return Completion(**(data | {"usage": usage}))

    def put(self, key: str, completion: Completion) -> None:
        data = {
            "text": completion.text,
            "usage": completion.usage.to_dict() if completion.usage else None,
            "finish_reason": completion.finish_reason,
            "served_model": completion.served_model,
            "system_fingerprint": completion.system_fingerprint,
        }
        self._db.execute("INSERT OR REPLACE INTO answers (key, completion) VALUES (?, ?)", (key, orjson.dumps(data)))

    def close(self) -> None:
        self._db.close()
