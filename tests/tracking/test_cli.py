"""`insidellms tracking list / show / compare` on real run folders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from insideLLMs.cli.tracking import tracking
from insideLLMs.tracking import get_tracker
from support.cli import run_cli


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    logs = tmp_path / "tracking_logs"
    for name, temperature, scale in (("baseline", 0.0, 1.0), ("candidate", 0.7, 0.5)):
        tracker = get_tracker("local", output_dir=str(logs), tags=["nightly"])
        with tracker.start_run(name=name, params={"model": "gpt-4o", "temperature": temperature}):
            for step in range(20):
                tracker.log_metrics({"latency_ms": (100 + step) * scale, "success": 1}, step=step)
            tracker.log_metrics({"success_rate": 0.9 if name == "baseline" else 0.95})
            tracker.log_artifact("results", {"name": name})
    return logs


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(tracking, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_list(two_runs: Path) -> None:
    out = _invoke("list", str(two_runs))
    lines = [line for line in out.splitlines() if "run_" in line]
    assert len(lines) == 2
    assert "baseline" in lines[0] and "candidate" in lines[1]  # oldest first
    assert all("finished" in line and "local" in line for line in lines)


def test_show_latest_by_name_by_key_prefix_and_path(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(two_runs.parent)
    latest = _invoke("show")
    assert "candidate" in latest and "finished" in latest
    assert _invoke("show", "--latest") == latest
    out = _invoke("show", "baseline")
    assert re.search(r"temperature\s*│\s*0", out)
    # the run-level metric in the metrics table (no model × probe in this run: one row over the whole run);
    # the step series in a section of their own, not as their last values
    metrics, series = out.split("Step series")
    assert re.search(r"│ all\s*│ all\s*│\s*0.9\s*│", metrics) and "success_rate" in metrics
    assert "latency_ms" not in metrics and "success " not in metrics
    assert re.search(r"│ latency_ms\s*│\s*20\s*│\s*109.5\s*│\s*100\s*│\s*119\s*│", series)
    assert "artifacts/results.json" in out and "nightly" in out
    key = next(p.name for p in two_runs.iterdir() if "baseline" in (p / "run.json").read_text())
    assert _invoke("show", key[:9]) == out
    by_path = _invoke("show", str(two_runs / key))
    assert "baseline" in by_path and key in by_path


def test_show_unknown_run_is_one_clear_line(two_runs: Path) -> None:
    result = CliRunner().invoke(tracking, ["show", "nope", "--dir", str(two_runs)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: no run 'nope' in {two_runs}; see: insidellms tracking list {two_runs}"


def test_compare_tables_and_html(two_runs: Path, tmp_path: Path) -> None:
    out_html = tmp_path / "compare.html"
    out = _invoke("compare", "baseline", "candidate", "--dir", str(two_runs), "-o", str(out_html))
    row = next(line for line in out.splitlines() if line.strip().startswith("│ success_rate"))
    assert "0.9" in row and "0.95" in row
    assert "latency_ms" not in out  # a series, not a run-level metric: charted in the page, not compared
    assert "temperature" in out  # the differing parameter is listed
    html = out_html.read_text()
    assert _script_sources(html) == []  # plotly is inlined: the page works offline
    assert html.count('class="plotly-graph-div"') == 2  # one chart per step series: latency_ms, success
    assert "baseline" in html and "candidate" in html and "latency_ms" in html


def _script_sources(html: str) -> list[str]:
    from html.parser import HTMLParser

    sources: list[str] = []

    class Scripts(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "script":
                sources.extend(v or "" for k, v in attrs if k == "src")

    Scripts().feed(html)
    return sources


def test_compare_through_the_real_command(two_runs: Path) -> None:
    proc = run_cli("tracking", "compare", "baseline", "candidate", cwd=two_runs.parent)
    assert proc.returncode == 0, proc.stderr
    assert "success_rate" in proc.stdout


def test_list_of_an_empty_folder(tmp_path: Path) -> None:
    assert "no tracked runs" in _invoke("list", str(tmp_path))


def test_push_reports_clearly_when_unavailable(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("insideLLMs.tracking._push") is not None:
        pytest.skip("push is available; it is tested with the real backends")
    result = CliRunner().invoke(tracking, ["push", str(tmp_path), "--backend", "local"])
    assert result.exit_code == 1 and "not available" in result.output


def test_sync_and_push_take_every_option_a_remote_backend_reads() -> None:
    from insideLLMs.config import BACKENDS

    options = {n for b in BACKENDS.values() if b.sink for n in b.options} - {"run_name"}
    assert options >= {"tracking_uri", "experiment_name", "project", "entity", "mode", "log_dir"}
    for command in ("sync", "push"):
        text = _invoke(command, "--help")
        assert all(f"--{name.replace('_', '-')}" in text for name in options), text


def test_show_lists_many_score_means_a_row_each_so_they_stay_readable(tmp_path: Path) -> None:
    """A probe with many scores (instruction_following has a score per constraint) must not squeeze a
    column per score into the terminal: past a handful, each metric gets its own row."""
    logs = tmp_path / "logs"
    tracker = get_tracker("local", output_dir=str(logs))
    scores = {f"score_{i:02d}_mean": i / 10 for i in range(12)}
    with tracker.start_run(name="many", params={"model_name": "m", "probe_type": "p"}):
        tracker.log_metrics({"pass_rate": 0.5, "n": 10, **scores})
    out = CliRunner().invoke(tracking, ["show", "--latest", "--dir", str(logs)], env={"COLUMNS": "100"}).output
    for name, value in scores.items():
        assert re.search(rf"│ {name}\s+│\s+{value:g} │", out), name
