"""Pair up the records of two runs by key, streaming, in bounded memory.

Both ``records.jsonl`` files are written in example order, so the common case is a lock-step walk
that never holds more than one record per side. Keys that do not line up (an inserted or dropped
example, a new probe) wait in a dict of *pending* keys — key → (line, byte offset) only, the record
is re-read when its partner turns up. If that dict ever grows past ``max_pending`` (the two files
are in very different orders), the merge starts over as an external join through a temporary
SQLite index, which is slower but just as correct and still bounded.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from insideLLMs.errors import UserError
from insideLLMs.jsonl import iter_lines, open_binary, parse_object

Key = tuple[str, ...]
KeyFn = Callable[[dict[str, Any]], Key]
#: (key, line number, parsed record)
Row = tuple[Key, int, dict[str, Any]]

DEFAULT_MAX_PENDING = 200_000
#: the whitespace JSON allows after a value (bytes.rstrip() would also take a form feed, which makes a line malformed)
_JSON_SPACE = b" \t\r\n"


class DiffInputError(UserError):
    """A run directory or record file the diff cannot use; the message names file and line."""


class _TooFarApart(Exception):
    """The streaming merge gave up; the caller restarts with :func:`indexed_pairs`."""


def _parse(path: Path, lineno: int, line: bytes, key_fn: KeyFn) -> Row:
    return _row(path, lineno, parse_object(path, lineno, line, DiffInputError), key_fn)


def _row(path: Path, lineno: int, obj: Any, key_fn: KeyFn) -> Row:
    if not isinstance(obj, dict):
        raise DiffInputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
    try:
        return key_fn(obj), lineno, obj
    except (KeyError, TypeError, AttributeError):
        raise DiffInputError(
            f"{path}:{lineno}: not a record (it needs model.id, probe.id and example_id)"
        ) from None


def read_rows(path: Path, key_fn: KeyFn) -> Iterator[tuple[Row, int]]:
    """Each record of a records.jsonl with its byte offset; malformed lines raise DiffInputError."""
    for lineno, offset, line in iter_lines(path, DiffInputError):
        yield _parse(path, lineno, line, key_fn), offset


class _Reread:
    """Random access to records already seen once, by byte offset."""

    def __init__(self, path: Path, key_fn: KeyFn) -> None:
        self.path, self.key_fn = path, key_fn
        self.f = open_binary(path, DiffInputError)

    def line(self, offset: int) -> bytes:
        self.f.seek(offset)
        return self.f.readline()

    def row(self, lineno: int, offset: int) -> Row:
        return _parse(self.path, lineno, self.line(offset), self.key_fn)

    def close(self) -> None:
        self.f.close()


def _duplicate(path: Path, lineno: int, key: Key) -> DiffInputError:
    return DiffInputError(f"{path}:{lineno}: duplicate record key {'/'.join(key)}")


class LineMatcher:
    """Tells from raw bytes that two records differ only in ignored top-level fields.

    Records are canonical JSON, so an ignored field (run id, model spec, probe spec) is one fixed
    byte string per model × probe in a file. Swapping the baseline's bytes for the candidate's
    (learned from parsed pairs) and comparing decides "identical" without parsing the candidate
    line. Any doubt (a value not seen yet, or its bytes occurring twice) answers False, and the
    caller parses and compares the records properly.
    """

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.fields = fields
        #: (field, value id) -> (baseline value, its bytes, the candidate's bytes), learned from pairs
        self.subs: dict[tuple[str, Any], tuple[Any, bytes, bytes]] = {}

    def learn(self, b_rec: dict[str, Any], c_rec: dict[str, Any]) -> None:
        for name in self.fields:
            b_value = b_rec.get(name)
            key = (name, _ident(b_value))
            if key not in self.subs and len(self.subs) < 1024:
                self.subs[key] = (b_value, _field_bytes(name, b_value), _field_bytes(name, c_rec.get(name)))

    def same(self, b_line: bytes, b_rec: dict[str, Any], c_line: bytes) -> bool:
        subs = self.subs
        for name in self.fields:
            b_value = b_rec.get(name)
            sub = subs.get((name, _ident(b_value)))
            if sub is None or sub[0] != b_value:
                return False
            if sub[1] != sub[2]:
                if b_line.count(sub[1]) != 1:
                    return False
                b_line = b_line.replace(sub[1], sub[2])
        return b_line == c_line or b_line.rstrip(_JSON_SPACE) == c_line.rstrip(_JSON_SPACE)


def _ident(value: Any) -> Any:
    """A hashable name for an ignored field's value: itself (run id) or its ``id`` (model, probe)."""
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, (str, int, float, type(None))) else repr(value)


def _field_bytes(name: str, value: Any) -> bytes:
    return orjson.dumps(name) + b":" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def streaming_pairs(
    base_path: Path,
    cand_path: Path,
    key_fn: KeyFn,
    matcher: LineMatcher,
    on_identical: Callable[[dict[str, Any]], None],
    max_pending: int = DEFAULT_MAX_PENDING,
) -> Iterator[tuple[Row | None, Row | None]]:
    """(baseline row, candidate row) pairs; ``None`` on the side where the key is missing.

    A pair whose lines ``matcher`` finds identical is not yielded: ``on_identical`` gets the
    baseline record and the candidate line is never parsed (the hot path of a diff). After a
    gap (examples only on one side), only the side that is behind advances until the files line
    up again. Raises :class:`_TooFarApart` when more than ``max_pending`` keys wait for a partner.
    """
    b_lines, c_lines = iter_lines(base_path, DiffInputError), iter_lines(cand_path, DiffInputError)
    reread_b, reread_c = _Reread(base_path, key_fn), _Reread(cand_path, key_fn)
    pend_b: dict[Key, tuple[int, int]] = {}
    pend_c: dict[Key, tuple[int, int]] = {}
    same = matcher.same
    loads = orjson.loads
    b_cur, c_cur = next(b_lines, None), next(c_lines, None)
    b_row: Row | None = None  # the parsed current line, once it had to be parsed
    c_row: Row | None = None
    try:
        while b_cur is not None and c_cur is not None:
            if b_row is None:
                try:
                    b_rec = loads(b_cur[2])
                except orjson.JSONDecodeError:
                    b_row = _parse(base_path, b_cur[0], b_cur[2], key_fn)  # raises, naming the line
                    raise AssertionError("unreachable") from None
                if (c_row is None and b_rec.__class__ is dict and "example_id" in b_rec
                        and same(b_cur[2], b_rec, c_cur[2])):
                    on_identical(b_rec)
                    b_cur, c_cur = next(b_lines, None), next(c_lines, None)
                    continue
                b_row = _row(base_path, b_cur[0], b_rec, key_fn)
            if c_row is None:
                c_row = _parse(cand_path, c_cur[0], c_cur[2], key_fn)
            if b_row[0] == c_row[0]:
                matcher.learn(b_row[2], c_row[2])
                yield b_row, c_row
                b_cur, c_cur, b_row, c_row = next(b_lines, None), next(c_lines, None), None, None
                continue
            hit = pend_c.pop(b_row[0], None)
            if hit is not None:  # the candidate is ahead: advance the baseline only
                yield from _pair_with_pending(b_cur[2], b_row, hit, reread_c, same, on_identical, True)
                b_cur, b_row = next(b_lines, None), None
                continue
            hit = pend_b.pop(c_row[0], None)
            if hit is not None:  # the baseline is ahead: advance the candidate only
                yield from _pair_with_pending(c_cur[2], c_row, hit, reread_b, same, on_identical, False)
                c_cur, c_row = next(c_lines, None), None
                continue
            if b_row[0] in pend_b:
                raise _duplicate(base_path, b_row[1], b_row[0])
            if c_row[0] in pend_c:
                raise _duplicate(cand_path, c_row[1], c_row[0])
            pend_b[b_row[0]] = (b_cur[0], b_cur[1])
            pend_c[c_row[0]] = (c_cur[0], c_cur[1])
            if len(pend_b) + len(pend_c) > max_pending:
                raise _TooFarApart
            b_cur, c_cur, b_row, c_row = next(b_lines, None), next(c_lines, None), None, None
        # one side is exhausted: the rest of the other can only match what waits in its pending dict
        if b_cur is not None:
            yield from _drain(b_cur, b_row, b_lines, base_path, key_fn, pend_c, reread_c, same, on_identical, True)
        if c_cur is not None:
            yield from _drain(c_cur, c_row, c_lines, cand_path, key_fn, pend_b, reread_b, same, on_identical, False)
        for lineno, offset in pend_b.values():
            yield reread_b.row(lineno, offset), None
        for lineno, offset in pend_c.values():
            yield None, reread_c.row(lineno, offset)
    finally:
        reread_b.close()
        reread_c.close()


def _drain(
    cur: tuple[int, int, bytes] | None,
    row: Row | None,
    lines: Iterator[tuple[int, int, bytes]],
    path: Path,
    key_fn: KeyFn,
    pending_other: dict[Key, tuple[int, int]],
    reread_other: "_Reread",
    same: Callable[[bytes, dict[str, Any], bytes], bool],
    on_identical: Callable[[dict[str, Any]], None],
    is_baseline: bool,
) -> Iterator[tuple[Row | None, Row | None]]:
    """The rest of one file once the other is exhausted: each row pairs with a pending partner or stands alone."""
    while cur is not None:
        row = row or _parse(path, cur[0], cur[2], key_fn)
        hit = pending_other.pop(row[0], None)
        if hit is not None:
            yield from _pair_with_pending(cur[2], row, hit, reread_other, same, on_identical, is_baseline)
        else:
            yield (row, None) if is_baseline else (None, row)
        cur, row = next(lines, None), None


def _pair_with_pending(
    line: bytes,
    row: Row,
    hit: tuple[int, int],
    reread: "_Reread",
    same: Callable[[bytes, dict[str, Any], bytes], bool],
    on_identical: Callable[[dict[str, Any]], None],
    row_is_baseline: bool,
) -> Iterator[tuple[Row | None, Row | None]]:
    """Pair the current row with its partner read back from the other file."""
    other_line = reread.line(hit[1])
    if row_is_baseline:
        if same(line, row[2], other_line):
            on_identical(row[2])
        else:
            yield row, reread.row(*hit)
        return
    other = reread.row(*hit)
    if same(other_line, other[2], line):
        on_identical(other[2])
    else:
        yield other, row


def indexed_pairs(
    base_path: Path, cand_path: Path, key_fn: KeyFn
) -> Iterator[tuple[Row | None, Row | None]]:
    """The same pairs as :func:`streaming_pairs` for files in any order, via a temporary SQLite index."""
    with tempfile.TemporaryDirectory(prefix="insidellms-diff-") as tmp:
        db = sqlite3.connect(Path(tmp) / "index.sqlite")
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        for side, path in (("b", base_path), ("c", cand_path)):
            db.execute(f"CREATE TABLE {side} (k BLOB, lineno INTEGER, off INTEGER)")
            batch: list[tuple[bytes, int, int]] = []
            for (key, lineno, _), offset in read_rows(path, key_fn):
                batch.append((orjson.dumps(key), lineno, offset))
                if len(batch) >= 10_000:
                    db.executemany(f"INSERT INTO {side} VALUES (?, ?, ?)", batch)
                    batch.clear()
            db.executemany(f"INSERT INTO {side} VALUES (?, ?, ?)", batch)
            db.execute(f"CREATE INDEX {side}_k ON {side} (k, lineno)")
            dup = db.execute(
                f"SELECT t1.k, t1.lineno FROM {side} t1 WHERE EXISTS (SELECT 1 FROM {side} t2 "
                "WHERE t2.k = t1.k AND t2.lineno < t1.lineno) ORDER BY t1.lineno LIMIT 1"
            ).fetchone()
            if dup:
                raise _duplicate(path, dup[1], tuple(orjson.loads(dup[0])))
        reread_b, reread_c = _Reread(base_path, key_fn), _Reread(cand_path, key_fn)
        try:
            query = (  # baseline order first, then what only the candidate has, in its order
                "SELECT * FROM (SELECT b.lineno AS bl, b.off, c.lineno AS cl, c.off FROM b "
                "LEFT JOIN c ON b.k = c.k UNION ALL SELECT NULL, NULL, c.lineno, c.off FROM c "
                "WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k = c.k)) ORDER BY bl IS NULL, bl, cl"
            )
            for bl, bo, cl, co in db.execute(query):
                yield (
                    reread_b.row(bl, bo) if bl is not None else None,
                    reread_c.row(cl, co) if cl is not None else None,
                )
        finally:
            reread_b.close()
            reread_c.close()
            db.close()

