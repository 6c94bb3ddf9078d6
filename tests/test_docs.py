"""Every code block of every docs/**/*.md page is executed, so the docs cannot drift from the code.

Conventions for doc authors (one test per page; its blocks run in document order, in one fresh
temporary working directory, sharing files and one Python namespace):

- ```python   executed as written. The namespace starts with ``runner`` (a ``ProbeRunner`` of the
              dummy model on the logic probe) and ``prompt_set`` (5 examples of its bundled set).
              Runs left open by a page are ended when the page is done.
- ```yaml     a full config (has ``model:`` or ``models:``) runs through ``insidellms run`` (or
              ``harness`` for ``models:``/``probes:`` lists) as is; a fragment (e.g. only
              ``tracking:``) is merged into a dummy-model config on the logic probe and run.
              If tracking is on, the run must be tracked, and every remote backend must end up
              with every event (after ``insidellms tracking sync`` if the end-of-run flush was short).
- ```console  lines starting with ``$ `` are commands; the other lines are sample output, not checked.
- ```bash / ```sh / ```shell   every non-comment line is a command.
  Commands: ``insidellms …`` is run and must exit 0. ``pip install …`` is checked, not run: each
  ``insidellms[extra]`` must be a real extra, other names installed distributions. ``wandb …``,
  ``mlflow …`` and ``tensorboard …`` are checked to be real commands of those tools (``<tool>
  <subcommand> --help`` exits 0 and lists every ``--option`` used). Anything else fails the test.
- ```text (and any other language) is not executed, unless a ``file`` directive writes it out.
- ``<!-- docs-test: file NAME -->`` on the line before a block writes the block to NAME instead
  of running it (for configs that later commands use); ``<!-- docs-test: skip REASON -->`` skips it.
- ``http://localhost:5000`` (the MLflow default) is pointed at a real ``mlflow server`` started by
  the ``mlflow_server`` fixture; W&B runs offline (``WANDB_MODE=offline``, files in the tmp dir);
  HOME and tool config dirs are tmp dirs. A page that needs a backend library that is not
  installed is skipped with that reason.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from insideLLMs.config import BACKENDS
from support.mlflow_server import SESSION_SERVERS

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
BIN = Path(sys.executable).parent
MLFLOW_DEFAULT_URIS = ("http://localhost:5000", "http://127.0.0.1:5000")
RUN_LANGS = {"python", "yaml", "yml", "console", "bash", "sh", "shell"}
CHECKED_TOOLS = {"wandb": "wandb", "mlflow": "mlflow", "tensorboard": "tensorboard"}
BACKEND_LIBRARIES = {b.name: b.library for b in BACKENDS.values() if b.library}
BASE_CONFIG: dict[str, Any] = {
    "model": {"type": "dummy", "args": {"model_name": "dummy-echo"}},
    "probe": {"type": "logic"},
    "generation": {"temperature": 0, "max_tokens": 64},
}
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    directive: tuple[str, str] | None = None


def parse_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        d = _DIRECTIVE.search(prev)
        body = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        blocks.append(Block(lang, "\n".join(body) + "\n", i + 1, (d.group(1), d.group(2)) if d else None))
        i = j + 1
    return blocks


def _needs(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {name for name in BACKEND_LIBRARIES if re.search(rf"\b{name}\b", text)}


def _params() -> list[Any]:
    out = []
    for path in DOCS:
        if not any(b.lang in RUN_LANGS for b in parse_blocks(path)):
            continue
        marks = [pytest.mark.slow] if _needs(path) else []
        if any(uri in path.read_text(encoding="utf-8") for uri in MLFLOW_DEFAULT_URIS):  # the mlflow_server fixture's
            marks.append(pytest.mark.xdist_group(SESSION_SERVERS[0]))
        out.append(pytest.param(path, id=str(path.relative_to(ROOT / "docs")), marks=marks))
    return out


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class Page:
    """Runs one page's blocks in order in ``cwd``."""

    def __init__(self, path: Path, cwd: Path, request: pytest.FixtureRequest) -> None:
        self.path = path
        self.cwd = cwd
        self.request = request
        self.namespace: dict[str, Any] = {}
        self.mlflow_url: str | None = None
        self.tracking_dirs: set[Path] = set()
        self.count = 0

    def where(self, block: Block) -> str:
        return f"{self.path.relative_to(ROOT)}:{block.line}"

    # -- substitutions -----------------------------------------------------------------------

    def substitute(self, text: str) -> str:
        if any(uri in text for uri in MLFLOW_DEFAULT_URIS):
            if self.mlflow_url is None:
                self.mlflow_url = self.request.getfixturevalue("mlflow_server").url
            for uri in MLFLOW_DEFAULT_URIS:
                text = text.replace(uri, self.mlflow_url)
        return text

    # -- runners -----------------------------------------------------------------------------

    def run_block(self, block: Block) -> None:
        if block.directive and block.directive[0] == "skip":
            return
        if block.directive and block.directive[0] == "file":
            target = self.cwd / block.directive[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.substitute(block.code), encoding="utf-8")
            return
        if block.lang == "python":
            self.run_python(block)
        elif block.lang in ("yaml", "yml"):
            self.run_yaml(block)
        elif block.lang == "console":
            for line in block.code.splitlines():
                if line.startswith("$ "):
                    self.run_command(line[2:].strip(), block)
        elif block.lang in ("bash", "sh", "shell"):
            for line in block.code.splitlines():
                stripped = line.split(" #")[0].strip()
                if stripped and not stripped.startswith("#"):
                    self.run_command(stripped, block)

    def run_python(self, block: Block) -> None:
        if not self.namespace:
            self.namespace.update(_python_namespace())
        code = compile(self.substitute(block.code), self.where(block), "exec")
        exec(code, self.namespace)  # noqa: S102 - running our own documentation

    def run_yaml(self, block: Block) -> None:
        data = yaml.safe_load(self.substitute(block.code))
        assert isinstance(data, dict), f"{self.where(block)}: a YAML block must be a mapping"
        full = "model" in data or "models" in data
        config = data if full else _deep_merge(BASE_CONFIG, data)
        self.count += 1
        config_path = self.cwd / f"docs_block_{self.count}.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        command = "harness" if ("models" in config or "probes" in config) else "run"
        tracking = config.get("tracking") or {}
        out_dir = self.cwd / (tracking.get("output_dir") or "tracking_logs")
        before = set(out_dir.glob("run_*")) if out_dir.is_dir() else set()
        proc = self.sh(f"insidellms {command} {config_path.name} --run-dir runs/docs_block_{self.count}", block)
        if tracking and tracking.get("enabled", True):
            assert "tracking is off" not in proc.stderr, f"{self.where(block)}: {proc.stderr}"
            new = set(out_dir.glob("run_*")) - before
            assert len(new) == 1, f"{self.where(block)}: expected one tracked run in {out_dir}, got {new}\n{proc.stderr}"
            self.tracking_dirs.add(out_dir)
            from insideLLMs.tracking.store import load_run

            assert load_run(new.pop()).status == "finished"

    def run_command(self, command: str, block: Block) -> None:
        command = self.substitute(command)
        words = shlex.split(command)
        env_prefix = 0
        while env_prefix < len(words) and re.match(r"^[A-Z_][A-Z0-9_]*=", words[env_prefix]):
            env_prefix += 1
        tool = words[env_prefix] if env_prefix < len(words) else ""
        if tool == "insidellms":
            self.sh(command, block)
        elif tool == "pip" and words[env_prefix + 1:env_prefix + 2] == ["install"]:
            _check_pip_install(words[env_prefix + 2:], self.where(block))
        elif tool in CHECKED_TOOLS:
            _check_tool_command(words[env_prefix:], self.where(block))
        else:
            pytest.fail(f"{self.where(block)}: don't know how to check `{command}` (see tests/test_docs.py)")

    def sh(self, command: str, block: Block) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(command, shell=True, cwd=self.cwd, env=env, capture_output=True, text=True,
                              timeout=600, executable="/bin/bash")
        assert proc.returncode == 0, (
            f"{self.where(block)}: `{command}` exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
        return proc

    # -- end of page -------------------------------------------------------------------------

    def close_runs(self) -> None:
        from insideLLMs.tracking import Tracker

        for value in list(self.namespace.values()):
            if isinstance(value, Tracker):
                while value.active_run is not None:
                    value.end_run()

    def finish(self) -> None:
        self.close_runs()
        if (self.cwd / "tracking_logs").is_dir():
            self.tracking_dirs.add(self.cwd / "tracking_logs")
        from insideLLMs.tracking.delivery import delivery_status, sync

        for out_dir in self.tracking_dirs:
            sync(out_dir)  # whatever the end-of-run flush did not deliver in time
            for run in delivery_status(out_dir):
                assert run.error is None, run.error
                for sink in run.sinks:
                    assert sink.pending == 0, (
                        f"{self.path.name}: {run.key} ({run.name}) → {sink.sink}: {sink.pending} events "
                        f"not delivered: {sink.last_error}"
                    )


def _python_namespace() -> dict[str, Any]:
    from insideLLMs.models import get_model
    from insideLLMs.probes import get_probe
    from insideLLMs.run import ProbeRunner

    probe = get_probe("logic")
    prompt_set = probe.load_default_dataset().head(5)
    runner = ProbeRunner(get_model("dummy", model_name="dummy-echo"), probe)
    return {"__name__": "__docs__", "runner": runner, "prompt_set": prompt_set}


def _check_pip_install(args: list[str], where: str) -> None:
    from packaging.requirements import Requirement

    reqs = [a for a in args if not a.startswith("-")]
    assert reqs, f"{where}: `pip install` with nothing to install"
    for arg in reqs:
        req = Requirement(arg)
        try:
            meta = importlib.metadata.metadata(req.name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{where}: `pip install {arg}`: {req.name} is not a distribution installed here")
        if req.extras:
            extras = set(meta.get_all("Provides-Extra") or [])
            if req.name == "insidellms":  # this checkout's extras (the installed metadata may predate them)
                import tomllib

                extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
            missing = req.extras - extras
            assert not missing, f"{where}: {req.name} has no extra(s) {sorted(missing)}; it has {sorted(extras)}"


def _check_tool_command(words: list[str], where: str) -> None:
    tool = words[0]
    exe = BIN / tool
    if not exe.exists():
        pytest.skip(f"{tool} is not installed (pip install 'insidellms[{tool}]')")
    sub = [w for w in words[1:2] if not w.startswith("-")] if tool != "tensorboard" else []
    proc = subprocess.run([str(exe), *sub, "--help"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert proc.returncode == 0, f"{where}: `{' '.join([tool, *sub])} --help` exited {proc.returncode}: {proc.stderr}"
    help_text = proc.stdout + proc.stderr
    for word in words[1:]:
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert flag in help_text, f"{where}: `{tool} {' '.join(sub)}` has no option {flag}"


@pytest.fixture
def docs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working dir; HOME, W&B and MLflow client settings in tmp; W&B offline."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    for d in (home, work, tmp_path / "wandb"):
        d.mkdir()
    env = {
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
        "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_CONFIG_DIR": str(home / ".config" / "wandb"),
        "WANDB_CACHE_DIR": str(home / ".cache" / "wandb"), "WANDB_DATA_DIR": str(home / "wandb-data"),
        "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "NO_COLOR": "1", "COLUMNS": "160",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(work)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("path", _params())
def test_doc_page(path: Path, docs_env: Path, request: pytest.FixtureRequest) -> None:
    for backend in _needs(path):
        if importlib.util.find_spec(BACKEND_LIBRARIES[backend]) is None:
            pytest.skip(f"{path.name} uses {backend}, which is not installed (pip install 'insidellms[{backend}]')")
        if importlib.util.find_spec(f"insideLLMs.tracking.backends.{backend}") is None:
            pytest.skip(f"{path.name} uses {backend}, whose sink module insideLLMs.tracking.backends.{backend} is not in this build")
    page = Page(path, docs_env, request)
    try:
        for block in parse_blocks(path):
            if block.lang in RUN_LANGS or (block.directive and block.directive[0] == "file"):
                page.run_block(block)
    except BaseException:
        page.close_runs()
        raise
    page.finish()


def test_docs_are_found() -> None:
    assert any(p.name == "experiment-tracking.md" for p in DOCS)


def test_block_parser(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "# t\n\n<!-- docs-test: file eval.yaml -->\n```yaml\na: 1\n```\n\n"
        "- item\n\n  ```python\n  x = 1\n  ```\n\n```text\nnot run\n```\n"
    )
    blocks = parse_blocks(page)
    assert [(b.lang, b.code, b.directive) for b in blocks] == [
        ("yaml", "a: 1\n", ("file", "eval.yaml")), ("python", "x = 1\n", None), ("text", "not run\n", None),
    ]
