"""The public tracking API (get_tracker, start_run, log_*) and the local backend's files."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from insideLLMs.rundir import Record
from insideLLMs.tracking import BackendUnavailable, Tracker, get_tracker
from insideLLMs.tracking.store import read_journal
from insideLLMs.tracking.store import find_runs, load_run
from insideLLMs.config import BACKENDS, Backend
from insideLLMs.tracking.delivery import REMOTE_BACKENDS

PYTHON = sys.executable


def _json(path: Path):
    return json.loads(path.read_text())


def _record(i: int) -> Record:
    return Record(
        run_id="r1", model={"id": "dummy", "provider": "dummy", "params": {}}, probe={"id": "logic", "version": "1", "params": {}},
        example_id=f"ex{i}", input={"prompt": f"q{i}"}, messages=[{"role": "user", "content": f"q{i}"}],
        output=f"a{i}", scores={"correct": True}, passed=True, status="success", usage={"prompt_tokens": 1, "completion_tokens": 1},
    )


def test_local_run_files_have_the_permissions_the_umask_gives(tmp_path: Path) -> None:
    """The small JSON files are replaced whole, yet a teammate can read them as they can the journal."""
    out = tmp_path / "tracking_logs"
    tracker = get_tracker("local", output_dir=str(out))
    with tracker.start_run(name="shared", params={"model": "gpt-4o"}) as run:
        tracker.log_metrics({"success_rate": 0.8})
        tracker.log_artifact("results", {"ok": True})
    journal_mode = (run.dir / "journal.jsonl").stat().st_mode & 0o777
    for name in ("run.json", "params.json", "metrics.json", "artifacts/results.json"):
        assert (run.dir / name).stat().st_mode & 0o777 == journal_mode, name
    assert not [p.name for p in run.dir.rglob("*.tmp")]


def test_local_run_files(tmp_path: Path) -> None:
    out = tmp_path / "tracking_logs"
    tracker = get_tracker("local", output_dir=str(out), tags=["v1"])
    with tracker.start_run(name="bias-test", tags={"team": "eval"}, params={"model": "gpt-4o"}) as run:
        tracker.log_params({"temperature": 0.7, "generation": {"max_tokens": 1000}})
        for step in range(5):
            tracker.log_metrics({"latency_ms": 10.0 + step, "success": 1}, step=step)
        tracker.log_metrics({"success_rate": 0.8, "error_count": 2})
        tracker.log_artifact("results", [_record(0), _record(1)])
        tracker.set_tags(["baseline"], owner="me")
    assert run.dir == out / run.key and run.key.startswith("run_")
    info = _json(run.dir / "run.json")
    assert info["name"] == "bias-test" and info["status"] == "finished"
    assert info["tags"] == {"v1": "", "team": "eval", "baseline": "", "owner": "me"}
    assert info["backends"] == ["local"] and info["ended_at"] >= info["started_at"]
    assert _json(run.dir / "params.json") == {"model": "gpt-4o", "temperature": 0.7, "generation.max_tokens": 1000}
    assert _json(run.dir / "metrics.json") == {"latency_ms": 14.0, "success": 1.0, "success_rate": 0.8, "error_count": 2.0}
    results = _json(run.dir / "artifacts" / "results.json")
    assert [r["example_id"] for r in results] == ["ex0", "ex1"] and results[0]["scores"] == {"correct": True}
    events = read_journal(run.dir).events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.kind for e in events][:2] == ["run_start", "params"] and events[-1].kind == "run_end"
    steps = [e.data["step"] for e in events if e.kind == "metrics"]
    assert steps == [0, 1, 2, 3, 4, None]


def test_failed_when_body_raises_and_exception_propagates(tmp_path: Path) -> None:
    tracker = get_tracker("local", output_dir=str(tmp_path))
    with pytest.raises(ZeroDivisionError):
        with tracker.start_run(name="boom") as run:
            tracker.log_metrics({"x": 1})
            1 / 0
    assert _json(run.dir / "run.json")["status"] == "failed"
    assert tracker.active_run is None


def test_plain_start_and_end_run(tmp_path: Path) -> None:
    tracker = get_tracker("local", output_dir=str(tmp_path))
    run = tracker.start_run(name="plain")
    tracker.log_metrics({"x": 1.5}, step=0)
    assert tracker.active_run is run
    tracker.end_run("failed")
    assert _json(run.dir / "run.json")["status"] == "failed"
    assert tracker.active_run is None
    tracker.end_run()  # nothing open: a no-op
    with pytest.raises(RuntimeError, match="has ended"):
        run.log_metrics({"x": 2})


def test_logging_without_a_run_starts_one(tmp_path: Path) -> None:
    tracker = get_tracker("local", output_dir=str(tmp_path))
    tracker.log_metrics({"custom_score": 0.93, "bias_index": 0.12})
    tracker.log_params({"model": "gpt-4o", "temperature": 0.7, "max_tokens": 1000})
    run = tracker.active_run
    assert run is not None and len(find_runs(tmp_path)) == 1
    tracker.end_run()
    assert _json(run.dir / "params.json")["max_tokens"] == 1000
    assert _json(run.dir / "run.json")["status"] == "finished"


@pytest.mark.parametrize("crash, status", [(False, "finished"), (True, "failed")])
def test_auto_started_run_ends_at_exit(tmp_path: Path, crash: bool, status: str) -> None:
    script = textwrap.dedent(f"""
        from insideLLMs.tracking import get_tracker
        tracker = get_tracker("local", output_dir={str(tmp_path)!r})
        tracker.log_metrics({{"custom_score": 0.93}})
        if {crash}:
            raise SystemError("the program died")
    """)
    proc = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=60)
    assert (proc.returncode != 0) == crash, proc.stderr
    (run_dir,) = find_runs(tmp_path)
    assert _json(run_dir / "run.json")["status"] == status
    assert _json(run_dir / "metrics.json") == {"custom_score": 0.93}


def test_two_trackers_in_two_threads_do_not_interfere(tmp_path: Path) -> None:
    results: dict[str, Path] = {}

    def work(label: str) -> None:
        tracker = get_tracker("local", output_dir=str(tmp_path))
        with tracker.start_run(name=label) as run:
            for step in range(200):
                tracker.log_metrics({f"{label}_metric": step}, step=step)
        results[label] = run.dir

    threads = [threading.Thread(target=work, args=(label,)) for label in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for label, run_dir in results.items():
        assert _json(run_dir / "metrics.json") == {f"{label}_metric": 199.0}
        assert _json(run_dir / "run.json")["name"] == label


def test_one_tracker_two_threads_each_own_run(tmp_path: Path) -> None:
    tracker = get_tracker("local", output_dir=str(tmp_path))
    barrier = threading.Barrier(2)
    dirs: dict[str, Path] = {}

    def work(label: str) -> None:
        with tracker.start_run(name=label) as run:
            barrier.wait()
            tracker.log_metrics({"who": 1 if label == "a" else 2})
            barrier.wait()
        dirs[label] = run.dir

    threads = [threading.Thread(target=work, args=(label,)) for label in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _json(dirs["a"] / "metrics.json") == {"who": 1.0}
    assert _json(dirs["b"] / "metrics.json") == {"who": 2.0}


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="local, wandb, mlflow, tensorboard"):
        get_tracker("neptune")
    with pytest.raises(ValueError, match="unknown tracking backend 'neptune'"):
        get_tracker(["local", "neptune"])


def test_missing_backend_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REMOTE_BACKENDS, "fakeboard", Backend("fakeboard", (), "nowhere:Sink", "no_such_library_xyz",
                                                              "fakeboard"))
    with pytest.raises(BackendUnavailable, match=r"pip install 'insidellms\[fakeboard\]'"):
        get_tracker("fakeboard")


@pytest.mark.parametrize("backend, library, extra", [(b.name, b.library, b.extra) for b in BACKENDS.values() if b.library])
def test_real_backend_missing_names_the_extra(backend: str, library: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(library) is not None:
        pytest.skip(f"{library} is installed here")
    with pytest.raises(ImportError, match=rf"pip install 'insidellms\[{extra}\]'"):
        get_tracker(backend)


def test_the_table_of_backends_matches_the_package_extras_and_the_sinks() -> None:
    import importlib
    import tomllib

    from insideLLMs.tracking.sink import Sink

    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for backend in BACKENDS.values():
        if backend.sink is None:
            continue
        assert any(req.startswith(backend.library) for req in extras[backend.extra]), backend
        module, _, name = backend.sink.partition(":")
        sink = getattr(importlib.import_module(module), name)
        assert issubclass(sink, Sink) and sink.name == backend.name


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        get_tracker("local", colour="red")


def test_artifacts_objects_paths_and_folders(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        where: Path

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "records.jsonl").write_text('{"a": 1}\n')
    (src / "sub" / "notes.txt").write_text("token=abcdef123456\nok\n")
    tracker = get_tracker("local", output_dir=str(tmp_path / "logs"))
    with tracker.start_run() as run:
        tracker.log_artifact("point", Point(1, Path("/x")))
        tracker.log_artifact("records", src / "records.jsonl")
        tracker.log_artifact("summary.json", {"n": 2})
        tracker.log_artifact("bundle", src)
        tracker.log_table("examples", [{"example_id": "a", "scores": {"ok": True}}, {"example_id": "b", "scores": {"ok": False}}])
        with pytest.raises(ValueError):
            tracker.log_artifact("../escape", {"x": 1})
        with pytest.raises(FileNotFoundError):
            tracker.log_artifact("missing", tmp_path / "nope.txt")
    art = run.dir / "artifacts"
    assert _json(art / "point.json") == {"x": 1, "where": "/x"}
    assert (art / "records.jsonl").read_text() == '{"a": 1}\n'
    assert _json(art / "summary.json") == {"n": 2}
    assert (art / "bundle" / "sub" / "notes.txt").read_text() == "token=[REDACTED]\nok\n"
    rows = [json.loads(line) for line in (art / "examples.jsonl").read_text().splitlines()]
    assert rows == [{"example_id": "a", "scores.ok": True}, {"example_id": "b", "scores.ok": False}]
    view = load_run(run.dir)
    assert {a["path"] for a in view.state.artifacts.values()} == {
        "artifacts/point.json", "artifacts/records.jsonl", "artifacts/summary.json", "artifacts/bundle/records.jsonl",
        "artifacts/bundle/sub/notes.txt", "artifacts/examples.jsonl",
    }
    assert view.state.artifacts["artifacts/examples.jsonl"]["kind"] == "table"


def test_metric_values_are_checked(tmp_path: Path) -> None:
    messages: list[str] = []
    tracker = get_tracker("local", output_dir=str(tmp_path), echo=messages.append)
    with tracker.start_run() as run:
        with pytest.raises(TypeError, match="'label' must be a number"):
            tracker.log_metrics({"label": "high"})
        tracker.log_metrics({"loss": float("nan"), "ok": True, "n": 3})
        tracker.log_metrics({"loss": float("nan")})
    assert _json(run.dir / "metrics.json") == {"ok": 1.0, "n": 3.0}
    assert messages == ["! tracking: metric 'loss' is nan; skipped"]


def test_secrets_never_reach_the_run_folder(tmp_path: Path) -> None:
    secret = "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0"
    cfg = tmp_path / "config.resolved.yaml"
    cfg.write_text(f"model:\n  args:\n    api_key: {secret}\nheaders:\n  Authorization: Bearer tok-{secret[-8:]}XYZ\n")
    tracker = get_tracker("local", output_dir=str(tmp_path / "logs"), tags={"token": secret})
    with tracker.start_run(name="s", params={"api_key": secret, "url": "https://u:hunter2pw@h/x"}):
        tracker.log_artifact("config", cfg)
        tracker.log_artifact("obj", {"nested": [{"password": "hunter2pw"}], "note": f"key {secret}"})
        tracker.set_tags({"auth_token": "hunter2pw"})
    for path in (tmp_path / "logs").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert secret not in text and "hunter2pw" not in text and f"tok-{secret[-8:]}" not in text, path


def test_disabled_tracker_refuses_to_start(tmp_path: Path) -> None:
    tracker = get_tracker("local", output_dir=str(tmp_path), enabled=False)
    assert isinstance(tracker, Tracker)
    with pytest.raises(RuntimeError, match="disabled"):
        tracker.start_run()
