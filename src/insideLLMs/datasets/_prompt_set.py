"""Prompt sets: examples with stable ids and a content hash, loaded from JSONL, CSV, a list or HF datasets.

An example is a row (a dict) plus its id: the id comes from the row's ``id`` field (or the field
named by ``id_field``) and otherwise from the row index, so it is stable across runs. The content
hash covers ids and rows in order, and goes into the manifest and the run_id.

Every loader takes ``fields`` (example field -> the column or key it is read from), so a probe's field
names need not be the data's: ``{"prompt": "question"}`` reads ``question`` as ``prompt``. Columns not
named keep their names; ``id_field`` names a field after renaming.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import posixpath
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from insideLLMs.canonical import dumps_bytes
from insideLLMs.jsonl import iter_objects
from insideLLMs.errors import UserError


class DatasetError(UserError):
    """Bad prompt-set input; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    data: dict[str, Any]
    #: the value of the prompt set's cluster field (a passage, a conversation, a template), as text; None
    #: when the prompt set names none. Not part of the content hash: it is read from ``data``.
    cluster: str | None = None


@dataclass(frozen=True)
class PromptSet:
    examples: tuple[Example, ...]
    name: str = "inline"
    source: str | None = None
    hash: str = field(default="")
    #: the 1-based line of its file each example came from (JSONL, CSV), for error messages
    lines: array | None = field(default=None, compare=False, repr=False)
    #: the field shared by related examples (``dataset.cluster``), whose value each example carries
    cluster: str | None = None

    def __post_init__(self) -> None:
        ids = [e.id for e in self.examples]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise DatasetError(f"{self.source or self.name}: duplicate example id {dup!r}")
        if not self.hash:
            object.__setattr__(self, "hash", _content_hash(self.examples))

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def head(self, n: int | None) -> "PromptSet":
        """The first ``n`` examples (``--max-examples``); a new hash, so a new run_id."""
        if n is None or n >= len(self.examples):
            return self
        lines = self.lines[:n] if self.lines is not None else None
        return PromptSet(self.examples[:n], name=self.name, source=self.source, lines=lines, cluster=self.cluster)

    def clustered_by(self, name: str, locate: Callable[[int], str] | None = None) -> "PromptSet":
        """The same examples, each carrying the value of its field ``name`` as its cluster (examples that share
        a passage, a conversation or a template are not independent: their error bars are clustered).

        Every row must have the field, a string or an integer; else a ``DatasetError`` names the first row
        that does not (``locate(index)`` says where it is written; default: the file and line)."""
        examples = []
        for index, example in enumerate(self.examples):
            value = example.data.get(name)
            if value is None or isinstance(value, bool) or not isinstance(value, (str, int)):
                what = "has no field" if value is None else f"has {type(value).__name__} {value!r} in field"
                where = locate(index) if locate is not None else self._where(index)
                raise DatasetError(f"{where}: example {example.id!r} {what} {name!r} (dataset.cluster); "
                                   "give every row a string or integer there, or remove dataset.cluster")
            examples.append(Example(example.id, example.data, str(value)))
        return PromptSet(tuple(examples), name=self.name, source=self.source, hash=self.hash, lines=self.lines,
                         cluster=name)

    def _where(self, index: int) -> str:
        if self.lines is not None:
            return f"{self.source or self.name}:{self.lines[index]}"
        return f"{self.source or self.name}: item {index}"

    @property
    def info(self) -> dict[str, Any]:
        """How the manifest names the prompt set; ``cluster`` only when one is named (runs without it keep their bytes)."""
        info = {"name": self.name, "source": self.source, "hash": self.hash, "size": len(self.examples)}
        if self.cluster is not None:
            info["cluster"] = self.cluster
        return info

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_list(
        cls, rows: Iterable[Any], *, name: str = "inline", id_field: str = "id", fields: Mapping[str, str] | None = None
    ) -> "PromptSet":
        """Rows are dicts, or plain strings (taken as ``{"prompt": text}``, never renamed)."""
        rename = field_renamer(fields)
        examples = []
        for index, row in enumerate(rows):
            if isinstance(row, str):
                row = {"prompt": row}
            elif isinstance(row, Mapping):
                row = rename(dict(row))
            else:
                raise DatasetError(f"{name}: item {index}: expected an object or a string, got {type(row).__name__}")
            examples.append(_example(row, index, id_field, where=f"{name}: item {index}"))
        return cls(tuple(examples), name=name, source=None)

    @classmethod
    def from_jsonl(
        cls,
        path: str | Path,
        *,
        id_field: str = "id",
        name: str | None = None,
        base_dir: str | Path | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> "PromptSet":
        """``base_dir``: the folder a relative ``path`` is in and ``source`` is named from (default: the working folder)."""
        source, path = _locate(path, base_dir)
        _check_file(path)
        rows = iter_objects(path, DatasetError)
        if fields:
            rename = field_renamer(fields)
            rows = ((lineno, rename(row)) for lineno, row in rows)
        return cls._from_rows(rows, path, source, id_field, name)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        columns: Mapping[str, str] | None = None,
        id_field: str = "id",
        name: str | None = None,
        base_dir: str | Path | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> "PromptSet":
        """``fields`` maps example fields to CSV headers, e.g. ``{"prompt": "question"}`` (``columns``: its older
        name); a header it names must be in the file. ``base_dir`` as for ``from_jsonl``."""
        source, path = _locate(path, base_dir)
        _check_file(path)
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise DatasetError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
        return cls._from_rows(_csv_rows(io.StringIO(text, newline=""), path, fields or columns or {}), path, source, id_field, name)

    @classmethod
    def _from_rows(cls, rows: Iterable[tuple[int, dict[str, Any]]], path: Path, source: str, id_field: str,
                   name: str | None) -> "PromptSet":
        """A prompt set from (line number, row) pairs of the file at ``path``."""
        examples, lines = [], array("I")
        for index, (lineno, row) in enumerate(rows):
            examples.append(_example(row, index, id_field, where=f"{path}:{lineno}"))
            lines.append(lineno)
        return cls(tuple(examples), name=name or path.stem, source=source, lines=lines)

    @classmethod
    def from_hf(
        cls,
        dataset: str,
        *,
        split: str = "test",
        subset: str | None = None,
        columns: Mapping[str, str] | None = None,
        id_field: str = "id",
        limit: int | None = None,
        revision: str | None = None,
        base_dir: str | Path | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> "PromptSet":
        """A Hugging Face dataset (``hf`` extra): a hub id, or a local folder (relative to ``base_dir``, default the
        working folder). Uses the local cache when the hub is unreachable. ``fields`` as for ``from_csv``."""
        from insideLLMs.datasets._hf import load_hf_rows

        named, folder = _locate(dataset, base_dir)
        if not folder.is_dir():  # a hub id
            named, folder = dataset, Path(dataset)
        rows = load_hf_rows(str(folder), split=split, subset=subset, limit=limit, revision=revision)
        rename = field_renamer(fields or columns)
        label = f"{named}{'/' + subset if subset else ''}:{split}"
        examples = [_example(rename(row), index, id_field, f"hf:{label}: row {index}") for index, row in enumerate(rows)]
        return cls(tuple(examples), name=named.rsplit("/", 1)[-1], source=f"hf:{label}")


def field_renamer(fields: Mapping[str, str] | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function giving a row with each field of ``fields`` (field -> column) read from its column, in the
    row's column order; columns not named keep their names (a named field wins over a column of its name),
    and a column missing from a row is simply not there."""
    if not fields:
        return lambda row: row
    by_column: dict[str, list[str]] = {}
    for name, column in fields.items():
        by_column.setdefault(column, []).append(name)

    def rename(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key in by_column:
                for name in by_column[key]:
                    out[name] = value
            elif key not in fields or fields[key] not in row:
                out.setdefault(key, value)
        return out

    return rename


def _csv_rows(fh: Any, path: Path, fields: Mapping[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of each CSV record, its headers renamed by ``fields`` (field -> header)."""
    rename = field_renamer(fields)
    reader = csv.DictReader(fh)
    headers = reader.fieldnames or []
    missing = [h for h in dict.fromkeys(fields.values()) if h not in headers]
    if missing:
        raise DatasetError(f"{path}:1: column(s) {', '.join(missing)} not in header {headers}")
    for raw in reader:
        lineno = reader.line_num
        if None in raw:
            raise DatasetError(f"{path}:{lineno}: more fields than the header has")
        if None in raw.values():
            given = sum(v is not None for v in raw.values())
            raise DatasetError(f"{path}:{lineno}: {given} field(s) where the header has {len(headers)}")
        yield lineno, rename(raw)


def _content_hash(examples: tuple[Example, ...]) -> str:
    """sha256 over the examples' canonical JSON, one per line; streamed, never one big buffer."""
    digest = hashlib.sha256()
    for index, example in enumerate(examples):
        digest.update(b"\n" if index else b"")
        digest.update(dumps_bytes([example.id, example.data]))
    return digest.hexdigest()


def _example(row: dict[str, Any], index: int, id_field: str, where: str) -> Example:
    """The row as an example: its id from ``id_field``, else its index; ``where`` names the row in an error."""
    raw_id = row.get(id_field)
    if raw_id is None:
        return Example(id=str(index), data=row)
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
        raise DatasetError(f"{where}: field {id_field!r} must be a string or an integer")
    return Example(id=str(raw_id), data=row)


def _locate(path: str | Path, base_dir: str | Path | None) -> tuple[str, Path]:
    """How the run directory names a data file, and the path to open.

    The name is never a machine path, so a run directory is the same in every checkout: the
    path relative to ``base_dir`` with posix separators; for a file outside ``base_dir``, the
    relative path as given (``../shared/qa.jsonl``), or the file name when given an absolute one.
    """
    given = Path(path)
    base = Path(base_dir) if base_dir is not None else Path()
    full = given if given.is_absolute() else base / given
    try:
        return Path(os.path.abspath(full)).relative_to(os.path.abspath(base)).as_posix(), full
    except ValueError:  # outside base_dir
        return (given.name if given.is_absolute() else posixpath.normpath(given.as_posix())), full


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DatasetError(f"{path}: prompt set file not found")
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, expected a prompt set file")

