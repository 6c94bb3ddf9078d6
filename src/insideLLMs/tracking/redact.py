"""One redaction step for everything tracked: secrets never reach a backend or an artifact file.

Two rules. A *key* named like a credential (``api_key``, ``access_token``, ``password``,
``Authorization``…) has its value replaced whatever it is. A *value* shaped like a credential
(provider API keys, bearer tokens, JWTs, ``https://user:pass@host``) is replaced wherever it
appears, in any string, at any depth. Names such as ``max_tokens``, ``prompt_tokens``,
``use_cls_token`` or ``tokenizer`` are not secrets and are left alone.
"""

from __future__ import annotations

import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

REDACTED = "[REDACTED]"

# Key segments that always mean "credential".
_SECRET_WORDS = frozenset(
    {"apikey", "secret", "password", "passwd", "passphrase", "pwd", "authorization", "cookie",
     "cookies", "credential", "credentials", "privatekey", "accesskey", "secretkey"}
)
# Two-segment spellings: api_key, x-api-key, private_key, access_key.
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")})
# "token" is a secret unless it names a vocabulary token (use_cls_token, pad_token, eos_token…).
_VOCAB_TOKEN_PREFIXES = frozenset(
    {"cls", "sep", "pad", "eos", "bos", "unk", "mask", "special", "start", "end", "stop", "sentence",
     "num", "max", "min", "total", "prompt", "completion", "input", "output", "count", "first", "last",
     "reasoning", "cached", "image", "audio", "add", "decoder", "vocab", "new", "per", "extra", "eot"}
)

_SEGMENT_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

_VALUE_PATTERNS = [
    r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}",  # Authorization: Bearer <token>
    r"(?<![A-Za-z0-9_-])sk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic (sk-ant-…)
    r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})",  # GitHub
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])",  # AWS access key id
    r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}",  # Google API key
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)?",  # PEM block
]
_VALUE_RE = re.compile("|".join(f"(?:{p})" for p in _VALUE_PATTERNS))
# scheme://user:password@host -> scheme://[REDACTED]@host
_URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@\"'<>]+:[^/\s@\"'<>]+@")
# Secrets written as `key: value`, `key=value` or `"key": "value"` in YAML, .env, logs, HTML.
_KEY_VALUE_RE = re.compile(
    r"""(?P<key>["']?(?P<name>[A-Za-z0-9_.-]+)["']?\s*[:=]\s*)(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,}\]#"']+)"""
)
# Cheap pre-checks (plain substring tests run at C speed; the regexes above are only tried on a hit).
_KEY_HINTS = ("key", "secret", "passw", "pwd", "authoriz", "cookie", "credential", "passphrase", "auth")
_TOKEN_HINT_RE = re.compile(r"token(?![si])")  # token, access_token: yes; tokens, tokenizer: no
_VALUE_HINTS = ("Bearer", "bearer", "sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "AKIA",
                "ASIA", "xox", "AIza", "eyJ", "@", "PRIVATE KEY")


def _may_hold_secret_key(text: str) -> bool:
    low = text.lower()
    return any(h in low for h in _KEY_HINTS) or ("token" in low and _TOKEN_HINT_RE.search(low) is not None)


def _may_hold_secret_value(text: str) -> bool:
    return any(h in text for h in _VALUE_HINTS)


@lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """True if a field called ``name`` holds a credential (``api_key``, ``hf_token``, ``Authorization``)."""
    segments = [s.lower() for s in _SEGMENT_SPLIT.split(name) if s]
    if not segments:
        return False
    if "".join(segments) in _SECRET_WORDS or name.lower() in ("auth", "token"):
        return True
    for i, seg in enumerate(segments):
        if seg in _SECRET_WORDS:
            return True
        if i and (segments[i - 1], seg) in _SECRET_PAIRS:
            return True
        if seg == "token" and (i == 0 or segments[i - 1] not in _VOCAB_TOKEN_PREFIXES):
            if i + 1 < len(segments) and segments[i + 1] in ("id", "ids", "count", "counts", "type", "limit"):
                continue  # token_id, token_count: vocabulary, not credentials
            return True
        if seg.endswith("token") and seg[:-5] in ("access", "auth", "refresh", "bearer", "api", "session", "id"):
            return True  # accesstoken, authToken written as one word
    return False


def _redact_key_value(key: str, value: Any) -> Any:
    """The value stored under a secret-named key. Flags, empties and counts (``token: 3``) stay."""
    if value is None or isinstance(value, bool) or value == "":
        return value
    if isinstance(value, (int, float)) and not _strict_key(key):
        return value
    return REDACTED


def redact_text(text: str) -> str:
    """Replace credential-shaped values and URL passwords inside free text."""
    if not _may_hold_secret_value(text):
        return text
    text = _URL_CREDENTIALS_RE.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _VALUE_RE.sub(REDACTED, text)


def redact(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, strings, numbers) with every secret replaced by ``[REDACTED]``."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if isinstance(key, str) and is_secret_key(key):
                out[key] = _redact_key_value(key, value)
            else:
                out[key] = redact(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    return obj


@lru_cache(maxsize=4096)
def _strict_key(name: str) -> bool:
    """Keys whose numeric values are secrets too (a numeric password is still a password)."""
    segments = {s.lower() for s in _SEGMENT_SPLIT.split(name) if s}
    return bool(segments & {"password", "passwd", "pwd", "secret", "passphrase", "pin"})


def _redact_line_pairs(line: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if not is_secret_key(m["name"]):
            return m[0]
        value = m["value"]
        if REDACTED[:-1] in value or value.lower() in ("null", "none", "~", "true", "false", '""', "''") or value.isdigit():
            return m[0]
        quote = value[0] if value[0] in "\"'" else ""
        return f"{m['key']}{quote}{REDACTED}{quote}"

    return _KEY_VALUE_RE.sub(sub, line)


def redact_text_file_content(text: str) -> str:
    """Redact a whole text document (YAML, HTML, logs): value patterns plus ``secret_key: value`` pairs."""
    text = redact_text(text)
    if not _may_hold_secret_key(text):
        return text
    return "".join(_redact_line_pairs(line) if _may_hold_secret_key(line) else line
                   for line in text.splitlines(keepends=True))


def _redact_jsonl_line(line: bytes) -> bytes:
    text = line.decode("utf-8", "replace")
    if not (_may_hold_secret_key(text) or _may_hold_secret_value(text)):
        return line
    stripped = line.rstrip(b"\r\n")
    try:
        obj = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return redact_text_file_content(text).encode("utf-8")
    cleaned = redact(obj)
    if cleaned == obj:
        return line
    return orjson.dumps(cleaned, option=orjson.OPT_SORT_KEYS) + line[len(stripped):]




_KEY_HINTS_B = tuple(h.encode() for h in _KEY_HINTS)
_VALUE_HINTS_B = tuple(h.encode() for h in _VALUE_HINTS)


def _suspect_lines(buf: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line holding a hint of a secret, found with C-speed ``find`` over the whole buffer."""
    starts: set[int] = set()
    low = buf.lower()

    def scan(haystack: bytes, needle: bytes, check: Any = None) -> None:
        pos = haystack.find(needle)
        while pos != -1:
            if check is None or check(pos):
                line_start = buf.rfind(b"\n", 0, pos) + 1
                starts.add(line_start)
                nxt = buf.find(b"\n", pos)
                if nxt == -1:
                    return
                pos = haystack.find(needle, nxt)
            else:
                pos = haystack.find(needle, pos + 1)

    for hint in _KEY_HINTS_B:
        scan(low, hint)
    scan(low, b"token", lambda pos: low[pos + 5:pos + 6] not in (b"s", b"i"))
    for hint in _VALUE_HINTS_B:
        scan(buf, hint)
    spans = []
    for line_start in sorted(starts):
        end = buf.find(b"\n", line_start)
        spans.append((line_start, len(buf) if end == -1 else end + 1))
    return spans


def _redact_lines(buf: bytes, line_fn: Any) -> bytes:
    """``buf`` with ``line_fn`` applied to the lines that may hold a secret; the rest is kept byte for byte."""
    out: list[bytes] = []
    prev = 0
    for start, end in _suspect_lines(buf):
        out.append(buf[prev:start])
        out.append(line_fn(buf[start:end]))
        prev = end
    out.append(buf[prev:])
    return b"".join(out)


def _redact_text_line(line: bytes) -> bytes:
    return redact_text_file_content(line.decode("utf-8")).encode("utf-8")


_TEXT_SUFFIXES = frozenset(
    {".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".txt", ".html", ".htm", ".csv", ".tsv", ".md",
     ".log", ".toml", ".ini", ".cfg", ".env", ".py", ".xml", ".svg", ".js", ".css", ""}
)


def copy_redacted(src: Path, dst: Path) -> None:
    """Copy a file, redacting text files (JSON/JSONL structurally, other text line by line).

    Only lines that hold a hint of a secret are looked at closely, so a large clean file copies fast.
    Files that are not UTF-8 text (images, model weights) are copied byte for byte.
    """
    suffix = src.suffix.lower()
    if suffix not in _TEXT_SUFFIXES:
        shutil.copyfile(src, dst)
        return
    raw = src.read_bytes()
    if suffix in (".jsonl", ".ndjson"):
        dst.write_bytes(_redact_lines(raw, _redact_jsonl_line))
        return
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        dst.write_bytes(raw)
        return
    if b"PRIVATE KEY-----" in raw:  # a PEM block spans lines: redact it whole first
        raw = redact_text(raw.decode("utf-8")).encode("utf-8")
    if suffix == ".json" and _suspect_lines(raw):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            cleaned = redact(obj)
            dst.write_bytes(raw if cleaned == obj else orjson.dumps(cleaned, option=orjson.OPT_INDENT_2) + b"\n")
            return
    dst.write_bytes(_redact_lines(raw, _redact_text_line))
