"""The HTML page shared by report.html and diff.html: one self-contained file, no network.

Charts are Plotly figures (JSON ``data``/``layout``) drawn by plotly.js, which is inlined once per
page from the ``plotly`` package's own bundled copy — no CDN. The Python ``plotly`` package is
never imported (it takes ~0.1 s), only its file is read. All user text goes through ``esc``:
model outputs are untrusted.
"""

from __future__ import annotations

import html
import importlib.util
import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from insideLLMs.stats import percentile

MAX_EXAMPLES = 500
MAX_TEXT_CHARS = 4000
EXPECTED_KEYS = ("expected", "answer", "target", "reference", "label", "expected_answer", "solution")


def esc(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else _as_text(value), quote=True)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return str(value)


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} more characters]"


@lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """The bundled plotly.min.js of the installed ``plotly`` package (found without importing it).

    Kept as bytes: the 4.6 MB file goes into the page as it is, never decoded and re-encoded."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is missing; pip install 'plotly>=5.20'")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path.read_bytes()


def _script_json(obj: Any) -> str:
    """JSON safe to put inside <script>: no "</script>", "<!--" or "&" can appear in it."""
    text = orjson.dumps(obj).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure(div_id: str, data: list[dict[str, Any]], layout: dict[str, Any], height: int = 340) -> str:
    """A Plotly chart: a div and the call that draws it."""
    base_layout = {
        "height": height, "margin": {"l": 60, "r": 20, "t": 40, "b": 90},
        "font": {"family": "system-ui, sans-serif", "size": 12}, "legend": {"orientation": "h", "y": -0.28},
    }
    spec = _script_json({"data": data, "layout": {**base_layout, **layout}})
    return (
        f'<div class="chart" id="{div_id}"></div>\n'
        f"<script>(function(){{var f={spec};"
        f'Plotly.newPlot("{div_id}",f.data,f.layout,{{displaylogo:false,responsive:true}});}})();</script>'
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    """An escaped HTML table; a cell that is a ``Markup`` string is inserted as is."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, Markup) else esc(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Markup(str):
    """Already-escaped HTML."""


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def usd(value: float | None, *, sign: bool = False) -> str:
    """A cost as people read it: ``$12.34``, ``$0.1235``, ``$0.006``, ``$0.00002025`` (cents, or four significant
    digits under a dollar); ``—`` when unknown (never ``$0`` for an unknown cost). ``sign``: a change, ``+$0.002``."""
    if value is None:
        return "—"
    size = abs(value)
    if size == 0:
        return "+$0" if sign else "$0"
    if size >= 1:
        text = f"{size:,.2f}"
    else:
        text = f"{size:.{3 - math.floor(math.log10(size))}f}".rstrip("0")
        text += "0" * max(0, 2 - len(text.partition(".")[2]))
    return ("-" if value < 0 else "+" if sign else "") + "$" + text


def expected_of(input_: Any) -> Any:
    """The expected answer from an example's input, under the usual names, if there is one."""
    if isinstance(input_, Mapping):
        for key in EXPECTED_KEYS:
            if key in input_:
                return input_[key]
    return None


def prompt_of(input_: Any, messages: Any = None) -> str:
    """What was asked: the input's ``prompt``, else the last user message, else the input as JSON."""
    if isinstance(input_, Mapping) and "prompt" in input_:
        return _as_text(input_["prompt"])
    if isinstance(messages, list):
        for msg in reversed(messages):
            if isinstance(msg, Mapping) and msg.get("role") == "user":
                return _as_text(msg.get("content"))
    return _as_text(input_)


def pre(value: Any, cls: str = "") -> Markup:
    return Markup(f'<pre class="{cls}">{esc(clip(_as_text(value)))}</pre>')


def filter_box(target: str, total_shown: int, total: int, what: str, kinds: Sequence[str] = ()) -> str:
    """A text box (and optional class picker) that hides non-matching examples in ``#target``."""
    note = f"Showing {total_shown:,} of {total:,} {what}"
    if total > total_shown:
        note += f" (only the first {total_shown:,} are embedded in this page)"
    select = ""
    if kinds:
        options = "".join(f'<option value="{esc(k)}">{esc(k)}</option>' for k in kinds)
        select = f'<select class="kind" data-target="{target}"><option value="">all classes</option>{options}</select>'
    return (
        f'<div class="filter"><input type="search" class="filter-box" data-target="{target}" '
        f'placeholder="Filter {esc(what)}: model, probe, id, text…" aria-label="filter">{select}'
        f'<span class="count" id="{target}-count">{esc(note)}</span></div>'
    )


def latency_chart(div_id: str, series: Mapping[str, array], bins: int = 30) -> str:
    """Latency distribution per series: overlaid histograms for one or two series, box plots for more.

    Binned or reduced to quartiles here, so a million timings become a few dozen numbers.
    """
    if not any(len(xs) for xs in series.values()):
        return '<p class="muted">No timings.jsonl: no latency to show.</p>'
    if len(series) > 2:
        return _latency_boxes(div_id, series)
    values = sorted(v for xs in series.values() for v in xs)
    lo, hi = values[0], percentile(values, 99)
    if hi <= lo:
        hi = lo + 1.0
    width = (hi - lo) / bins
    centers = [round(lo + width * (i + 0.5), 3) for i in range(bins)]
    data = []
    for name, xs in series.items():
        counts = [0] * bins
        for v in xs:
            counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
        data.append({"type": "bar", "name": name, "x": centers, "y": counts, "opacity": 0.6,
                     "width": width * 0.95})
    layout = {
        "barmode": "overlay", "title": {"text": "Latency distribution (ms; the slowest 1% fall in the last bin)"},
        "xaxis": {"title": {"text": "latency (ms)"}}, "yaxis": {"title": {"text": "examples"}},
    }
    return figure(div_id, data, layout)


def _latency_boxes(div_id: str, series: Mapping[str, array]) -> str:
    data = []
    for name, xs in series.items():
        if not len(xs):
            continue
        s = sorted(xs)
        data.append({
            "type": "box", "name": name, "x": [name], "q1": [round(percentile(s, 25), 3)],
            "median": [round(percentile(s, 50), 3)], "q3": [round(percentile(s, 75), 3)],
            "lowerfence": [round(s[0], 3)], "upperfence": [round(percentile(s, 99), 3)],
            "mean": [round(sum(s) / len(s), 3)], "showlegend": False,
        })
    layout = {
        "title": {"text": "Latency distribution (ms): box = quartiles, whiskers = min to p99, dashed = mean"},
        "yaxis": {"title": {"text": "latency (ms)"}, "rangemode": "tozero"},
    }
    return figure(div_id, data, layout)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:4px 0 8px}
.muted{color:#667085}.meta{color:#475467;font-size:13px}
section{background:#fff;border:1px solid #e4e7ec;border-radius:8px;padding:12px 16px;margin-top:16px}
table{border-collapse:collapse;width:100%;font-size:13px}table.narrow{width:auto;min-width:320px}
th,td{padding:5px 8px;border-bottom:1px solid #eaecf0;text-align:left;vertical-align:top}
th{background:#f2f4f7;font-weight:600;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{width:100%;min-height:300px}
.filter{display:flex;gap:8px;align-items:center;margin:8px 0}
.filter input{flex:1;max-width:420px;padding:6px 8px;border:1px solid #d0d5dd;border-radius:6px}
.filter select{padding:6px;border:1px solid #d0d5dd;border-radius:6px}
.count{color:#667085;font-size:13px}
.example{border:1px solid #eaecf0;border-radius:6px;margin:8px 0;padding:8px 10px;background:#fff}
.example h3{font-size:13px;margin:0 0 6px;font-weight:600}
.example .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:8px}
.example .label{font-size:11px;text-transform:uppercase;color:#667085;letter-spacing:.04em}
pre{white-space:pre-wrap;word-break:break-word;margin:2px 0;padding:6px 8px;background:#f8f9fb;
 border-radius:4px;font-size:12px;max-height:260px;overflow:auto}
pre.diff span{display:block}pre.diff .add{color:#067647;background:#ecfdf3}pre.diff .del{color:#b42318;background:#fef3f2}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:11px;font-weight:600;margin-right:6px}
.b-regression,.b-error,.b-failed,.b-fail{background:#fee4e2;color:#b42318}
.b-improvement,.b-passed,.b-pass{background:#dcfae6;color:#067647}
.b-changed{background:#fef0c7;color:#b54708}
.b-only-in-baseline,.b-only-in-candidate,.b-timeout,.b-rate_limited,.b-skipped{background:#eaecf0;color:#344054}
.gate-pass{color:#067647}.gate-fail{color:#b42318}
"""

_FILTER_JS = """
(function(){
 function apply(target){
  var box=document.querySelector('.filter-box[data-target="'+target+'"]');
  var sel=document.querySelector('select.kind[data-target="'+target+'"]');
  var q=(box&&box.value||'').toLowerCase(), kind=sel?sel.value:'', shown=0, total=0;
  document.querySelectorAll('#'+target+' .example').forEach(function(el){
   total++;
   var ok=(!q||el.textContent.toLowerCase().indexOf(q)>=0)&&(!kind||el.dataset.kind===kind);
   el.style.display=ok?'':'none'; if(ok)shown++;
  });
  var c=document.getElementById(target+'-count');
  if(c&&(q||kind))c.textContent=shown+' of '+total+' embedded examples match';
 }
 document.querySelectorAll('.filter-box,select.kind').forEach(function(el){
  el.addEventListener('input',function(){apply(el.dataset.target);});
 });
})();
"""


def _head_parts() -> tuple[bytes, bytes, bytes]:
    start = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             '<meta name="viewport" content="width=device-width, initial-scale=1">'
             f'<style>{_CSS}</style><script type="text/javascript">')
    return start.encode("utf-8"), plotly_js(), b"</script>"


def page_head() -> bytes:
    """The first bytes of every page: the styles and the inlined plotly.js, the same for every page
    of one installation; the page's own content comes after them."""
    return b"".join(_head_parts())


def page(title: str, body: str) -> bytes:
    """A complete HTML document (UTF-8): ``page_head()``, then the title, the body, the filter script."""
    tail = f"<title>{esc(title)}</title></head>\n<body><main>\n{body}\n</main><script>{_FILTER_JS}</script></body></html>\n"
    return b"".join((*_head_parts(), tail.encode("utf-8")))
