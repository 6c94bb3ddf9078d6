"""The public part of a file being tracked, which the redaction scan skips: the plotly.js bundle that a
report page (report.html) inlines, taken from the installed ``plotly`` package.

It is program text anyone can download, not the user's data: any "secret" the scan found in it
would be a false positive, and redacting it would break the page. A page holding the bundle byte
for byte has that span skipped; everything else in the page is scanned.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

_HTML = frozenset({".html", ".htm"})
_PROBE = 256  # bytes of the bundle searched for first; the whole bundle is then compared in place


@lru_cache(maxsize=1)
def plotly_bundle() -> bytes:
    """The installed ``plotly`` package's plotly.min.js (found without importing plotly); empty without it."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return b""
    try:
        return (Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js").read_bytes()
    except OSError:
        return b""


def public_spans(raw: bytes, suffix: str) -> list[tuple[int, int]]:
    """(start, end) of the plotly.js bundle in ``raw`` (a file named ``*<suffix>``), if it holds it whole."""
    if suffix not in _HTML:
        return []
    bundle = plotly_bundle()
    if len(bundle) <= _PROBE or len(raw) < len(bundle):
        return []
    start = raw.find(bundle[:_PROBE])
    if start == -1 or raw.find(bundle, start, start + len(bundle)) != start:  # the whole bundle, in place
        return []
    return [(start, start + len(bundle))]
