"""report.html and `insidellms report`: content, escaping, caps, and a real browser rendering it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from insideLLMs.report import render_report, write_report
from support.cli import run_cli
from support.run_dirs import record

MakeRun = Callable[..., Path]
EVIL = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def _grid() -> list[dict[str, Any]]:
    records = []
    for model in ("gpt-x", "claude-y"):
        for probe in ("factuality", "logic"):
            for i in range(20):
                ok = (i + len(model) + len(probe)) % 4 != 0
                records.append(record(f"{probe[:4]}-{i:02d}", model=model, probe=probe, passed=ok,
                                      output="4" if ok else "five, I believe", prompt=f"What is 2+2? ({i})"))
    records[3] = record("fact-03", model="gpt-x", status="error", passed=None, output=None,
                        error={"type": "ModelError", "message": "HTTP 500 from the server"})
    records[6] = record("fact-06", model="gpt-x", output=EVIL, passed=False, prompt=EVIL)
    return records


@pytest.fixture
def grid_run(make_run: MakeRun) -> Path:
    return make_run("grid", _grid())


def test_report_contains_table_charts_and_failures(grid_run: Path) -> None:
    path = write_report(grid_run)
    assert path == grid_run / "report.html"
    text = path.read_text()
    assert text.count("<script type=\"text/javascript\">") == 1  # plotly.js inlined once
    assert "cdn" not in text.split("<script type=\"text/javascript\">")[0].lower()
    assert 'Plotly.newPlot("pass-rate"' in text and 'Plotly.newPlot("latency"' in text
    assert "Summary per model × probe" in text and "claude-y" in text
    assert "HTTP 500 from the server" in text
    failing = sum(1 for r in _grid() if r["status"] != "success" or r["passed"] is False)
    assert f"Showing {failing} of {failing} failing examples" in text
    assert EVIL not in text
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in text


def test_report_caps_embedded_examples(make_run: MakeRun) -> None:
    run = make_run("many", [record(f"e{i:04d}", output="no", passed=False) for i in range(620)])
    text = write_report(run).read_text()
    assert "Showing 500 of 620 failing examples (only the first 500 are embedded in this page)" in text
    assert text.count('<div class="example"') == 500


def test_report_command_rebuilds_summary_and_report(grid_run: Path) -> None:
    (grid_run / "summary.json").unlink()
    result = run_cli("report", str(grid_run))
    assert result.returncode == 0, result.stderr
    assert f"wrote {grid_run / 'summary.json'}" in result.stdout
    assert f"wrote {grid_run / 'report.html'}" in result.stdout
    summary = json.loads((grid_run / "summary.json").read_text())
    assert summary["run_id"] == "run-a"
    assert [(g["model"], g["probe"], g["n"]) for g in summary["groups"]] == [
        ("gpt-x", "factuality", 20), ("gpt-x", "logic", 20), ("claude-y", "factuality", 20), ("claude-y", "logic", 20)]
    assert summary["volatile"]["latency_ms"]["gpt-x/factuality"]["p50"] is not None


def test_report_command_input_errors(tmp_path: Path) -> None:
    result = run_cli("report", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "no such run directory" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "broken").mkdir()
    good = json.dumps(record("a"))
    (tmp_path / "broken" / "records.jsonl").write_text(good + '\n{oops\n')
    result = run_cli("report", str(tmp_path / "broken"))
    assert result.returncode == 1
    assert f"{tmp_path / 'broken' / 'records.jsonl'}:2: malformed JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "broken" / "records.jsonl").write_text('{"run_id": "x"}\n')
    result = run_cli("report", str(tmp_path / "broken"))
    assert result.returncode == 1 and "records.jsonl:1: not a record" in result.stderr


def test_report_without_timings_or_summary(make_run: MakeRun) -> None:
    run = make_run("bare", [record("a"), record("b", passed=False, output="3")], summary=False)
    (run / "timings.jsonl").unlink()
    text = write_report(run).read_text()
    assert "No timings.jsonl: no latency to show." in text
    assert "Showing 1 of 1 failing examples" in text


@pytest.mark.slow
def test_report_renders_in_a_real_browser(grid_run: Path, open_html: Any, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    loaded = open_html(write_report(grid_run), screenshot=shot)
    page = loaded.page
    assert loaded.console_errors == []
    assert all(url.startswith("file:") or url.startswith("data:") for url in loaded.requests), loaded.requests
    assert page.locator("#pass-rate .main-svg").count() >= 1
    assert page.locator("#latency .main-svg").count() >= 1
    assert page.locator("#pass-rate .bars .point").count() == 4  # 2 models × 2 probes
    assert page.evaluate("window.alertFired === undefined")
    examples = page.locator("#failures .example")
    total = examples.count()
    assert total > 5
    page.fill(".filter-box", "HTTP 500")
    assert page.locator("#failures .example:visible").count() == 1
    assert page.locator("#failures-count").inner_text() == f"1 of {total} embedded examples match"
    page.fill(".filter-box", "")
    assert page.locator("#failures .example:visible").count() == total
    assert shot.stat().st_size > 10_000


def test_report_gathered_during_a_run_equals_one_rebuilt_from_its_files(tmp_path: Path) -> None:
    """The runner feeds the report as it writes records (no second read); `insidellms report`
    reads the files. Both must give the same page."""
    rows = "".join(json.dumps({"id": f"q{i}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)}) + "\n" for i in range(40))
    (tmp_path / "data.jsonl").write_text(rows)
    (tmp_path / "eval.yaml").write_text(
        "model: {type: dummy, args: {responses: {'What is 3 plus 3?': 'Answer: 6', 'What is 5 plus 5?': 'Answer: 10'},"
        " fail_every: 7}}\nprobe: {type: logic, args: {instruction: false}}\ndataset: {path: data.jsonl}\n"
        "runner: {max_retries: 0}\n"
    )
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", "--max-examples", "25", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    during = (tmp_path / "out" / "report.html").read_bytes()
    assert b"25 records" in during and b"Plotly.newPlot" in during
    assert b"scripted failure" in during and b'<span class="badge b-failed">' in during  # errors and wrong answers
    assert during == render_report(tmp_path / "out")


def _clustered_grid() -> list[dict[str, Any]]:
    records = []
    for model in ("gpt-x", "claude-y"):
        for probe in ("factuality", "logic"):
            for i in range(24):
                ok = (i // 4 + len(model)) % 3 != 0
                rec = record(f"{probe[:4]}-{i:02d}", model=model, probe=probe, passed=ok,
                             scores={"correct": ok, "f1": round((i % 5) / 4, 2)})
                rec["cluster"] = f"passage-{i // 4}"
                records.append(rec)
    return records


@pytest.mark.slow
def test_report_charts_have_error_bars_with_the_summary_intervals(make_run: MakeRun, open_html: Any) -> None:
    """In a real browser, each bar of the pass-rate and score-mean charts carries the 95 % interval of
    summary.json as its error bar (read back from the drawn Plotly figures), and the table shows them too."""
    run = make_run("clustered", _clustered_grid())
    run_cli("report", str(run))
    summary = json.loads((run / "summary.json").read_text())
    groups = {(g["model"], g["probe"]): g for g in summary["groups"]}
    loaded = open_html(write_report(run))
    page = loaded.page
    assert loaded.console_errors == []
    assert page.locator("#pass-rate .errorbar").count() == 4 and page.locator("#score-means .errorbar").count() == 8
    figures = page.evaluate("""() => Object.fromEntries(['pass-rate', 'score-means'].map(id => [id,
        document.getElementById(id).data.map(t => ({name: t.name, x: t.x, y: t.y, plus: t.error_y.array,
                                                    minus: t.error_y.arrayminus}))]))""")
    for trace in figures["pass-rate"]:
        for probe, y, plus, minus in zip(trace["x"], trace["y"], trace["plus"], trace["minus"]):
            g = groups[(trace["name"], probe)]
            iv = g["intervals"]["pass_rate"]
            assert iv["method"] == "cluster" and iv["clusters"] == 6
            assert y == g["pass_rate"]
            assert (y + plus, y - minus) == pytest.approx((iv["high"], iv["low"]), abs=1e-9)
    seen = set()
    for trace in figures["score-means"]:
        for label, y, plus, minus in zip(trace["x"], trace["y"], trace["plus"], trace["minus"]):
            probe, score = label.split(" · ")
            g = groups[(trace["name"], probe)]
            iv = g["intervals"]["scores"][score]
            assert y == g["scores"][score]
            assert (y + plus, y - minus) == pytest.approx((iv["high"], iv["low"]), abs=1e-9)
            seen.add((trace["name"], probe, score))
    assert len(seen) == 8  # 2 models × 2 probes × 2 scores
    row = page.locator("table tbody tr").first.inner_text()
    iv = groups[("gpt-x", "factuality")]["intervals"]["pass_rate"]
    assert f"[{iv['low'] * 100:.1f}–{iv['high'] * 100:.1f}%]" in row and "cluster (CR1, 6 clusters)" in row
