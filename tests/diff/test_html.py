"""diff.html: written by `insidellms diff --html`, escaped, capped, and rendered by a real browser."""

from __future__ import annotations

import re
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


def _flip_runs(make_run: MakeRun) -> tuple[Path, Path]:
    """Candidate vs baseline: 3 pass→fail flips, 2 fail→pass, a score-only regression, a wording change; listed
    in the stream in an order that is not the review order."""
    base, cand = [], []
    for i in range(30):
        ex = f"ex-{i:02d}"
        passed = i not in (1, 4, 20)
        base.append(record(ex, passed=passed, output="4" if passed else "5", scores={"f1": 0.9}))
        if i in (1, 4):  # fail → pass
            cand.append(record(ex, run_id="r2", scores={"f1": 0.9}))
        elif i in (12, 25, 28):  # pass → fail
            cand.append(record(ex, run_id="r2", passed=False, output="5", scores={"f1": 0.9}))
        elif i == 3:  # a regression without a flip: the score dropped
            cand.append(record(ex, run_id="r2", scores={"f1": 0.5}))
        elif i == 7:
            cand.append(record(ex, run_id="r2", output="4.", scores={"f1": 0.9}))
        else:
            cand.append(record(ex, run_id="r2", passed=passed, output="4" if passed else "5", scores={"f1": 0.9}))
    return make_run("base", base), make_run("cand", cand)


def test_diff_html_opens_with_intervals_and_sorts_flips_first(make_run: MakeRun, tmp_path: Path) -> None:
    base, cand = _flip_runs(make_run)
    out = tmp_path / "diff.html"
    result = run_cli("diff", str(base), str(cand), "--html", str(out), "--fail-on-regression-ci", "pass_rate:0.5")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    body = text[text.index("<body>"):]
    # the gate's verdict line, then the intervals as the first table, then which test decided each group
    assert body.index('id="gate"') < body.index('id="intervals"') < body.index('id="verdicts"') < body.index("What changed")
    assert body.index("<table") == body.index('<table class="intervals">')
    assert "paired 95 % interval" in body and "unpaired 95 % interval" in body and "decided by" in body
    flips = re.findall(r'data-flip="([^"]*)"', body)
    assert flips == ["pass→fail"] * 3 + [""] + ["fail→pass"] * 2 + [""]


@pytest.mark.slow
def test_diff_html_filters_regressions_and_improvements_in_a_browser(make_run: MakeRun, tmp_path: Path,
                                                                       open_html: Any) -> None:
    base, cand = _flip_runs(make_run)
    out = tmp_path / "diff.html"
    assert run_cli("diff", str(base), str(cand), "--html", str(out)).returncode == 0
    loaded = open_html(out)
    page = loaded.page
    assert loaded.console_errors == []
    assert all(url.startswith(("file:", "data:")) for url in loaded.requests), loaded.requests
    first = page.locator("table").first
    assert first.get_attribute("class") == "intervals"
    assert first.locator("tbody tr").count() == 2  # pass_rate and f1
    visible = page.locator("#changes .example:visible")
    assert visible.count() == 7
    assert visible.first.get_attribute("data-flip") == "pass→fail"
    page.get_by_role("button", name="Regressions").click()
    assert visible.count() == 4
    assert [visible.nth(i).get_attribute("data-flip") for i in range(4)] == ["pass→fail"] * 3 + [""]
    assert page.get_by_role("button", name="Regressions").get_attribute("aria-pressed") == "true"
    page.get_by_role("button", name="Improvements").click()
    assert visible.count() == 2
    assert {visible.nth(i).get_attribute("data-flip") for i in range(2)} == {"fail→pass"}
    assert page.locator("#changes-count").inner_text() == "2 of 7 embedded examples match"
    page.get_by_role("button", name="All").click()
    assert visible.count() == 7
