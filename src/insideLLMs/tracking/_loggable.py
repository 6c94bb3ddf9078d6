"""Turning what users log into what the journal holds: JSON-safe values, flat params, tag dicts,
safe artifact names, and the file hash every artifact event carries."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import msgspec
import orjson

Tags = Iterable[str] | Mapping[str, Any] | str | None


def normalize_tags(tags: Tags) -> dict[str, str]:
    """Tags as ``{name: value}``; a bare tag ``v1`` becomes ``{"v1": ""}``."""
    if tags is None:
        return {}
    if isinstance(tags, str):
        return {tags: ""}
    if isinstance(tags, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    return {str(t): "" for t in tags}


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data from our records, dataclasses, msgspec Structs, pydantic models, paths and sets."""
    return orjson.loads(orjson.dumps(obj, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return obj.to_dict()
    if hasattr(obj, "model_dump") and callable(obj.model_dump):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, msgspec.Struct):
        return msgspec.structs.asdict(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy/torch scalars
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return obj.tolist()
    return repr(obj)


_SCALARS = (str, bool, int, float)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists and other objects become compact JSON strings."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}" if prefix else key
        if value is None or type(value) in _SCALARS:
            flat[name] = value
        elif isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, prefix=f"{name}."))
        elif isinstance(value, _SCALARS):  # str/int/float subclasses (enums)
            flat[name] = value
        else:
            flat[name] = orjson.dumps(to_jsonable(value), option=orjson.OPT_SORT_KEYS).decode()
    return flat


def safe_artifact_name(name: str) -> str:
    """A relative artifact name (``a/b.json``); ``..`` and absolute paths are refused."""
    parts = [p for p in str(name).replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"artifact name {name!r} must be a relative name without '..'")
    return "/".join(parts)


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
