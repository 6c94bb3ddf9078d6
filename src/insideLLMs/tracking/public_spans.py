"""Parts of a file being tracked that are known public content, so the redaction scan can skip them.

Every report.html inlines the plotly.js bundle of the installed ``plotly`` package: 4.6 MB of its
~5 MB. Those bytes are the package's own file, byte for byte (checked here), so they hold none of
the user's secrets; scanning them cost ~9 ms per tracked run, and any "secret" found in minified
JavaScript would be a false positive whose redaction breaks the page. Everything else in the file
is scanned as before.
"""

from __future__ import annotations

import mmap

_HTML = frozenset({".html", ".htm"})
_PROBE = 256  # bytes of the bundle searched for first; the whole bundle is then compared in place
_MIN_SIZE = 1 << 20  # a smaller file cannot hold the bundle (and is not worth the look)


def _plotly_bundle() -> bytes:
    """The bundle report pages inline (cached: already read when this process wrote a report), or b""."""
    from insideLLMs.report_page import plotly_js

    try:
        return plotly_js()
    except (OSError, RuntimeError):  # plotly is not installed: no page inlines it
        return b""


def public_spans(raw: bytes | mmap.mmap, suffix: str) -> list[tuple[int, int]]:
    """(start, end) of each known public part of ``raw`` (a file named ``*<suffix>``), in order."""
    if suffix not in _HTML or len(raw) < _MIN_SIZE:
        return []
    bundle = _plotly_bundle()
    if len(bundle) <= _PROBE or len(raw) < len(bundle):
        return []
    start = raw.find(bundle[:_PROBE])
    if start == -1 or raw.find(bundle, start, start + len(bundle)) != start:  # the whole bundle, in place
        return []
    return [(start, start + len(bundle))]
