"""Reading JSON-lines files one object at a time, with errors that name the file and the line.

The one JSONL reader: datasets, the run directory, the diff, the tracking journal and the sinks'
table files all read through ``iter_lines``. Most callers want ``iter_objects``; the diff uses the
two steps apart because it keeps each line's byte offset (to read a record again later) and compares
raw lines before parsing them, and the journal because a line without its newline is a torn write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Iterator

import orjson


def json_problem(line: bytes) -> str:
    """What is wrong with one line of JSON, the column counted from the line's start."""
    try:
        orjson.loads(line.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as exc:
        return f"{exc.msg} (column {exc.colno})"
    return "not valid JSON"


def open_binary(path: Path, error: type[Exception]) -> BinaryIO:
    """``path`` opened for reading bytes; a file that cannot be opened raises ``error("file: cannot read (...)")``."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None


def iter_lines(path: Path, error: type[Exception]) -> Iterator[tuple[int, int, bytes]]:
    """Yield (line number, byte offset, raw line) for each non-blank line.

    A file that cannot be opened raises ``error("file: cannot read (...)")``.
    """
    fh = open_binary(path, error)
    offset = 0
    with fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.isspace():
                yield lineno, offset, line
            offset += len(line)


def parse_object(path: Path, lineno: int, line: bytes, error: type[Exception]) -> dict[str, Any]:
    """The JSON object on one line; raise ``error("file:line: ...")`` if it is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise error(f"{path}:{lineno}: malformed JSON: {json_problem(line)}") from None
    if not isinstance(obj, dict):
        raise error(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
    return obj


def iter_objects(path: Path, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; raise ``error("file:line: ...")`` on a bad one."""
    for lineno, _, line in iter_lines(path, error):
        yield lineno, parse_object(path, lineno, line, error)


__all__ = ["iter_lines", "iter_objects", "json_problem", "open_binary", "parse_object"]
