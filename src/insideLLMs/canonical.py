"""Canonical JSON and hashing: the byte-level basis of deterministic run directories.

Canonical JSON here means sorted keys, no insignificant whitespace, UTF-8 (non-ASCII
kept as is). Every deterministic file and every hash in insideLLMs goes through it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

SCHEMA_VERSION = "1"
RUN_ID_HEX_CHARS = 16

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def dumps_bytes(obj: Any) -> bytes:
    """Canonical JSON as bytes (no trailing newline)."""
    return orjson.dumps(obj, option=_OPTS)


def dumps(obj: Any) -> str:
    """Canonical JSON as text."""
    return dumps_bytes(obj).decode("utf-8")


def dumps_pretty(obj: Any) -> bytes:
    """Sorted, indented JSON with a trailing newline, for files people read (manifest, summary)."""
    return orjson.dumps(obj, option=_OPTS | orjson.OPT_INDENT_2) + b"\n"


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def hash_obj(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``."""
    return sha256_hex(dumps_bytes(obj))


def compute_run_id(
    models: list[dict[str, Any]],
    probes: list[dict[str, Any]],
    dataset_hashes: list[str],
    generation: dict[str, Any],
    clusters: list[str | None] | None = None,
    epochs: int = 1,
) -> str:
    """The deterministic run id: what was asked of which model, never where it is tracked or how fast.
    ``clusters``: each dataset's cluster field, given only when one names any (older run ids stay as they were);
    ``epochs``: part of the id only when more than one (a one-epoch run keeps its id)."""
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "models": models,
        "probes": probes,
        "datasets": dataset_hashes,
        "generation": generation,
    }
    if clusters is not None:
        payload["clusters"] = clusters
    if epochs != 1:
        payload["epochs"] = epochs
    return hash_obj(payload)[:RUN_ID_HEX_CHARS]


__all__ = [
    "RUN_ID_HEX_CHARS",
    "SCHEMA_VERSION",
    "compute_run_id",
    "dumps",
    "dumps_bytes",
    "dumps_pretty",
    "hash_obj",
    "loads",
    "sha256_hex",
]
