"""Reading JSON-lines files one object at a time, with errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import orjson


def json_problem(line: bytes) -> str:
    """What is wrong with one line of JSON, the column counted from the line's start."""
    try:
        orjson.loads(line.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as exc:
        return f"{exc.msg} (column {exc.colno})"
    return "not valid JSON"


def iter_objects(path: Path, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; raise ``error("file:line: ...")`` on a bad one."""
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise error(f"{path}:{lineno}: malformed JSON: {json_problem(line)}") from None
            if not isinstance(obj, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj
