"""One redaction step for everything tracked: secrets never reach a backend or an artifact file.

Two rules. A *key* named like a credential (``api_key``, ``access_token``, ``password``,
``Authorization``…) has its value replaced whatever it is. A *value* shaped like a credential
(provider API keys, bearer tokens, JWTs, ``https://user:pass@host``) is replaced wherever it
appears, in any string, at any depth. Names such as ``max_tokens``, ``prompt_tokens``,
``use_cls_token`` or ``tokenizer`` are not secrets and are left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
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
# token, access_token, botTokenString: yes; tokens, tokenizer: no. Searched in the text as written: lowercased,
# botTokenString would read as "tokens".
_TOKEN_HINT_RE = re.compile(r"(?i:token)(?![si])")
_VALUE_HINTS = ("Bearer", "bearer", "sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "AKIA",
                "ASIA", "xox", "AIza", "eyJ", "@", "PRIVATE KEY")


def _may_hold_secret_key(text: str) -> bool:
    low = text.lower()
    return any(h in low for h in _KEY_HINTS) or ("token" in low and _TOKEN_HINT_RE.search(text) is not None)


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
        if REDACTED[:-1] in value or value.lower() in ("null", "none", "~", "true", "false", '""', "''"):
            return m[0]
        if value.isdigit() and not _strict_key(m["name"]):  # a count (`max_tokens: 3`); a numeric PIN is not
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


def redact_jsonl_line(line: bytes) -> bytes:
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
_TOKEN_HINT_RE_B = re.compile(rb"(?i:token)(?![si])")


def may_hold_secret(data: bytes) -> bool:
    """Cheap test on serialized data (JSON, a text line): False means ``redact`` would change nothing."""
    if any(h in data for h in _VALUE_HINTS_B):
        return True
    low = data.lower()
    return any(h in low for h in _KEY_HINTS_B) or (b"token" in low and _TOKEN_HINT_RE_B.search(data) is not None)


def dumps_redacted(obj: Any, option: int = 0) -> bytes:
    """``orjson.dumps(redact(obj))``, but the object is walked only when its JSON holds a hint of a secret."""
    data = orjson.dumps(obj, option=option)
    return orjson.dumps(redact(obj), option=option) if may_hold_secret(data) else data


__all__ = [
    "REDACTED",
    "dumps_redacted",
    "is_secret_key",
    "may_hold_secret",
    "redact",
    "redact_jsonl_line",
    "redact_text",
    "redact_text_file_content",
]
