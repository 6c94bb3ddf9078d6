"""Redacting a file as it is copied into a run folder (every artifact).

One scan over the whole file finds every place a secret could be (a superset of what ``redact``
and ``redact_text_file_content`` would change: credential-shaped values, URL passwords, and
``secret_name: value`` pairs); only the lines it hits are redacted, everything else is kept byte
for byte. The scan is one RE2 automaton (``google-re2``) when installed, else substring hints.
A report page's inlined plotly.js, public program text, is not scanned (_public_content.py). The
precise patterns are compiled on the first hit: most files have none.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any, Callable

import orjson

from insideLLMs.secrets import (
    _KEY_HINTS_B,
    _KEY_VALUE_RE,
    _URL_CREDENTIALS_RE,
    _VALUE_HINTS_B,
    _VALUE_PATTERNS,
    REDACTED,
    is_secret_key,
    redact,
    redact_jsonl_line,
)
from insideLLMs.tracking.store._public_content import public_spans
from insideLLMs.tracking._loggable import sha256_file

try:  # optional accelerator: a DFA runs all patterns in one pass at hundreds of MB/s
    import re2 as _re2
except ImportError:  # pragma: no cover - the substring scan below is the fallback
    _re2 = None

# Every value pattern of redact.py without its look-arounds (RE2 has none), plus any name holding a
# credential word followed by `:` or `=`. "token" followed by s/i (tokens, tokenizer) is not a hint;
# "key" is one only as api/private/access/secret key (a bare `key:` is everywhere in HTML and JS,
# and is_secret_key says no to it).
_TRIGGER = (
    rb"Bearer|bearer|sk-[A-Za-z0-9_-]{20}|hf_[A-Za-z0-9]{30}|gh[pousr]_[A-Za-z0-9]{30}|github_pat_"
    rb"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|xox[abprs]-|AIza[0-9A-Za-z_-]{35}|eyJ[A-Za-z0-9_-]{8,}\.eyJ"
    rb"|PRIVATE KEY-----|://[^/\s:@\"'<>]+:[^/\s@\"'<>]+@"
    rb"|(?i:(?:api|private|access|secret)[_.-]*key|secret|passw|passphrase|pwd|auth|cookie|credential)"
    rb"[A-Za-z0-9_.-]*[\"']?\s*[:=]"
    rb"|(?i:token)(?:[a-hj-rt-zA-HJ-RT-Z0-9_.-][A-Za-z0-9_.-]*)?[\"']?\s*[:=]"
)
_SCANNER: Any = None
if _re2 is not None:
    _options = _re2.Options()
    _options.max_mem = 64 << 20
    _SCANNER = _re2.compile(_TRIGGER, _options)

_TEXT_SUFFIXES = frozenset(
    {".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".txt", ".html", ".htm", ".csv", ".tsv", ".md",
     ".log", ".toml", ".ini", ".cfg", ".env", ".py", ".xml", ".svg", ".js", ".css", ""}
)


_CODE_SUFFIXES = frozenset({".html", ".htm", ".js"})  # value patterns only: see _secret_at


def _hits(buf: bytes, skip: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """(start, end) of every place a secret could be, outside the ``skip`` spans (sorted, disjoint)."""
    hits: list[tuple[int, int]] = []
    pos = 0
    for start, end in [*(skip or ()), (len(buf), len(buf))]:
        if start > pos:
            hits += _scan(buf, pos, start)
        pos = end
    return hits


def _scan(buf: bytes, pos: int, endpos: int) -> list[tuple[int, int]]:
    if _SCANNER is not None:
        return [m.span() for m in _SCANNER.finditer(buf, pos, endpos)]
    part = buf if (pos, endpos) == (0, len(buf)) else buf[pos:endpos]
    return [(pos + start, pos + end) for start, end in _hint_hits(part)]


def _hint_hits(buf: bytes) -> list[tuple[int, int]]:
    """The fallback scan: C-speed ``find`` of every hint over the whole buffer."""
    hits: list[tuple[int, int]] = []
    low = buf.lower()
    for haystack, needles in ((low, _KEY_HINTS_B + (b"token",)), (buf, _VALUE_HINTS_B + (b"://",))):
        for needle in needles:
            pos = haystack.find(needle)
            while pos != -1:
                if needle != b"token" or low[pos + 5:pos + 6] not in (b"s", b"i"):
                    hits.append((pos, pos + len(needle)))
                pos = haystack.find(needle, pos + 1)
    return sorted(hits)


def _lines(buf: bytes, hits: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The lines holding the hits, merged and in order."""
    spans: list[tuple[int, int]] = []
    for start, end in hits:
        if spans and start < spans[-1][1]:
            continue
        line_start = buf.rfind(b"\n", 0, start) + 1
        line_end = buf.find(b"\n", end)
        spans.append((line_start, len(buf) if line_end == -1 else line_end + 1))
    return spans


def _rewrite(buf: bytes, spans: list[tuple[int, int]], fix: Callable[[bytes], bytes]) -> bytes:
    out: list[bytes] = []
    prev = 0
    for start, end in spans:
        out += (buf[prev:start], fix(buf[start:end]))
        prev = end
    out.append(buf[prev:])
    return b"".join(out)


@cache
def _precise() -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes]]:
    """redact.py's value, URL-credential and ``name: value`` patterns for bytes (compiled on first use)."""
    return (re.compile("|".join(f"(?:{p})" for p in _VALUE_PATTERNS).encode()),
            re.compile(_URL_CREDENTIALS_RE.pattern.encode()),
            re.compile(_KEY_VALUE_RE.pattern.encode()))


_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_SCHEME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")
_KEPT_VALUES = (b"null", b"none", b"~", b"true", b"false", b'""', b"''")
_R = REDACTED.encode()


def _secret_at(buf: bytes, start: int, strict: bool = False) -> tuple[int, int, bytes] | None:
    """The secret a hit at ``start`` points to, as (start, end, replacement), found with the precise
    patterns of redact.py anchored there (so each costs the length of one match, not of the file).
    ``strict`` (for code: a page's inlined JavaScript) applies the ``secret_name: value`` rule only to a
    quoted name with a quoted value (``"api_key": "..."``): unquoted, it matches program text such as
    ``credentials:e.credentials``, not secrets."""
    value_re, url_re, key_value_re = _precise()
    if buf.startswith(b"PRIVATE KEY-----", start):  # a PEM block: from its BEGIN line to its END line
        begin = buf.rfind(b"-----BEGIN ", max(0, start - 200), start)
        m = value_re.match(buf, begin) if begin != -1 else None
        return (m.start(), m.end(), _R) if m else None
    if buf.startswith(b"://", start):  # scheme://user:password@host
        i = start
        while i > 0 and buf[i - 1] in _SCHEME_CHARS:
            i -= 1
        while i < start and not buf[i:i + 1].isalpha():
            i += 1
        m = url_re.match(buf, i) if i < start else None
        return (start + 3, m.end() - 1, _R) if m else None
    m = value_re.match(buf, start)
    if m:
        return m.start(), m.end(), _R
    i = start  # `secret_name: value`, `"secret_name": "value"`, `secret_name=value`
    while i > 0 and buf[i - 1] in _NAME_CHARS:
        i -= 1
    if i > 0 and buf[i - 1] in b"\"'":
        i -= 1
    m = key_value_re.match(buf, i)
    if not m or not is_secret_key(m["name"].decode("utf-8", "replace")):
        return None
    value = m["value"]
    if strict and not (buf[m.start():m.start() + 1] in (b'"', b"'") and value[:1] in (b'"', b"'")):
        return None
    if _R[:-1] in value or value.lower() in _KEPT_VALUES or value.isdigit():
        return None
    quote = value[:1] if value[:1] in (b'"', b"'") else b""
    return m.start("value"), m.end("value"), quote + _R + quote


def _redact_text_hits(buf: bytes, hits: list[tuple[int, int]], strict: bool = False) -> bytes:
    found = sorted(filter(None, (_secret_at(buf, start, strict) for start, _ in hits)))
    if not found:
        return buf
    out: list[bytes] = []
    prev = 0
    for start, end, replacement in found:
        if start < prev:  # overlaps the secret before it: widen that one
            if end > prev:
                out.append(_R)
                prev = end
            continue
        out += (buf[prev:start], replacement)
        prev = end
    out.append(buf[prev:])
    return b"".join(out)


def redacted_bytes(raw: bytes, suffix: str) -> bytes:
    """``raw`` (the content of a file named ``*<suffix>``) with every secret replaced; ``raw`` itself
    (the same object) when there is nothing to replace or the file is not text."""
    hits = _hits(raw, public_spans(raw, suffix))
    if not hits:
        return raw
    if suffix in (".jsonl", ".ndjson"):
        return _rewrite(raw, _lines(raw, hits), redact_jsonl_line)
    if b"\x00" in raw:  # not text, whatever its name says
        return raw
    if suffix == ".json":
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            cleaned = redact(obj)
            return raw if cleaned == obj else orjson.dumps(cleaned, option=orjson.OPT_INDENT_2) + b"\n"
    return _redact_text_hits(raw, hits, strict=suffix in _CODE_SUFFIXES)


def copy_redacted(src: Path, dst: Path, *, link: bool = False) -> str:
    """Copy a file, redacting text files (JSON/JSONL structurally, other text line by line); returns
    the sha256 of what was written. Files that are not text (images, weights) are copied byte for byte.

    ``link``: ``src`` is only ever replaced, never changed in place (a run directory's report.html),
    so when nothing in it is to be redacted it becomes a hard link to it where both are on one
    filesystem: no second copy on disk (bench/artifact_copy.py, section disk: the tracked run's
    artifacts take ~90 % less space)."""
    suffix = src.suffix.lower()
    if suffix not in _TEXT_SUFFIXES:
        shutil.copyfile(src, dst)
        return sha256_file(dst)
    raw = src.read_bytes()
    out = redacted_bytes(raw, suffix)
    if not (out is raw and link and _linked(src, dst)):
        dst.write_bytes(out)
    return hashlib.sha256(out).hexdigest()


def _linked(src: Path, dst: Path) -> bool:
    """Make ``dst`` (absent, or an empty placeholder) a hard link to ``src``; False where that cannot be done."""
    try:
        dst.unlink(missing_ok=True)
        os.link(src, dst)
        return True
    except OSError:  # another filesystem, no hard links there, too many links: copy instead
        return False
