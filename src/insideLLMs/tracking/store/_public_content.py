"""Parts of a file being tracked that are known public content, so the redaction scan can skip them.

Every report.html starts with the same head: our styles and the plotly.js bundle of the installed
``plotly`` package, 4.6 MB of its ~5 MB (``report_page.page_head``). When a page starts with those
exact bytes (checked here), they hold none of the user's secrets: scanning them cost ~9 ms per
tracked run, and any "secret" found in minified JavaScript would be a false positive whose
redaction breaks the page. Their sha256 is worked out once per process, so hashing such a page
costs only its run-specific rest. A page of another layout is checked for the bundle alone.
Everything else in the file is scanned as before.
"""

from __future__ import annotations

import hashlib
import mmap
from functools import lru_cache
from typing import Any

_HTML = frozenset({".html", ".htm"})
_PROBE = 256  # bytes of the bundle searched for first; the whole bundle is then compared in place
_MIN_SIZE = 1 << 20  # a smaller file cannot hold the bundle (and is not worth the look)


@lru_cache(maxsize=1)
def _known() -> tuple[bytes, bytes, Any]:
    """(page head, plotly bundle, sha256 state of the head); empty without plotly installed."""
    from insideLLMs.report.page import page_head, plotly_js

    try:
        head, bundle = page_head(), plotly_js()
    except (OSError, RuntimeError):  # plotly is not installed: no page inlines it
        return b"", b"", None
    return head, bundle, hashlib.sha256(head)


def warm_up() -> None:
    """Read and hash the known parts now (a tracking process does it before the run ends)."""
    _known()


def page_head_length(raw: bytes | mmap.mmap, suffix: str) -> int:
    """How many bytes of ``raw`` (a file named ``*<suffix>``) are the report-page head; 0 if it does not start with it."""
    if suffix not in _HTML or len(raw) < _MIN_SIZE:
        return 0
    head = _known()[0]
    if not head or len(raw) < len(head) or raw.find(head, 0, len(head)) != 0:
        return 0
    return len(head)


def sha256_after_head(raw: bytes | mmap.mmap, head_length: int) -> str:
    """The sha256 of ``raw``, which starts with the page head (``page_head_length``): the head's is cached."""
    digest = _known()[2].copy()
    digest.update(raw[head_length:])
    return digest.hexdigest()


def public_spans(raw: bytes | mmap.mmap, suffix: str) -> list[tuple[int, int]]:
    """(start, end) of each known public part of ``raw`` (a file named ``*<suffix>``), in order."""
    head_length = page_head_length(raw, suffix)
    if head_length:
        return [(0, head_length)]
    if suffix not in _HTML or len(raw) < _MIN_SIZE:
        return []
    bundle = _known()[1]
    if len(bundle) <= _PROBE or len(raw) < len(bundle):
        return []
    start = raw.find(bundle[:_PROBE])
    if start == -1 or raw.find(bundle, start, start + len(bundle)) != start:  # the whole bundle, in place
        return []
    return [(start, start + len(bundle))]
