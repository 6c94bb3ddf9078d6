"""diff.html: written by `insidellms diff --html`, escaped, capped, and rendered by a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from support.cli import run_cli
from support.run_dirs import record

MakeRun = Callable[..., Path]
EVIL = "</pre><script>window.pwned=1</script>"


def _runs(make_run: MakeRun) -> tuple[Path, Path]:
    base, cand = [], []
    for probe in ("factuality", "logic"):
        for i in range(40):
            ex = f"{probe[:4]}-{i:02d}"
            base.append(record(ex, probe=probe))
            if i % 9 == 0:
                cand.append(record(ex, probe=probe, run_id="r2", output=f"{EVIL}\nfive", passed=False))
            elif i % 13 == 0:
                cand.append(record(ex, probe=probe, run_id="r2", output="4, certainly"))
            else:
                cand.append(record(ex, probe=probe, run_id="r2"))
    cand.append(record("extra", probe="logic", run_id="r2"))
    return make_run("base", base), make_run("cand", cand)


def test_diff_html_is_written_and_escaped(make_run: MakeRun, tmp_path: Path) -> None:
    base, cand = _runs(make_run)
    out = tmp_path / "diff.html"
    result = run_cli("diff", str(base), str(cand), "--html", str(out), "--fail-on-regressions")
    assert result.returncode == 2
    assert f"wrote {out}" in result.stderr
    text = out.read_text()
    assert "Gate failed" in text and "10 regression(s) (--fail-on-regressions)" in text
    assert 'Plotly.newPlot("pass-rate"' in text and 'Plotly.newPlot("latency"' in text
    assert EVIL not in text and "&lt;/pre&gt;&lt;script&gt;window.pwned=1" in text
    assert "Showing 17 of 17 changed examples" in text
    assert 'data-kind="only-in-candidate"' in text


@pytest.mark.slow
def test_diff_html_renders_in_a_real_browser(make_run: MakeRun, tmp_path: Path, open_html: Any) -> None:
    base, cand = _runs(make_run)
    out = tmp_path / "diff.html"
    assert run_cli("diff", str(base), str(cand), "--html", str(out)).returncode == 0
    loaded = open_html(out, screenshot=tmp_path / "diff.png")
    page = loaded.page
    assert loaded.console_errors == []
    assert all(url.startswith(("file:", "data:")) for url in loaded.requests), loaded.requests
    assert page.locator("#pass-rate .main-svg").count() >= 1
    assert page.locator("#latency .main-svg").count() >= 1
    assert page.locator("#pass-rate .bars .point").count() == 4  # 2 groups × baseline/candidate
    assert page.evaluate("window.pwned") is None
    assert page.locator("#changes .example").count() == 17
    page.select_option("select.kind", "regression")
    assert page.locator("#changes .example:visible").count() == 10
    page.fill(".filter-box", "logi-")
    assert page.locator("#changes .example:visible").count() == 5
    assert page.locator("#changes-count").inner_text() == "5 of 17 embedded examples match"
    assert (tmp_path / "diff.png").stat().st_size > 10_000
