"""Write-a-Python-function tasks, checked by running bundled unit tests in a subprocess.

Example fields: ``prompt``, ``entry_point`` (the function name, for readers), ``tests`` (a list of
``assert`` statements), optional ``setup`` (code run before the tests, e.g. imports).
The reply's code is taken from its ```python fences (else the whole reply), written to a
temporary directory with a small harness, and run with ``python -I`` under a timeout; the
process group is killed when time runs out. Each test runs on its own, so a reply that
passes 3 of 4 scores ``tests_passed = 0.75``. The example passes when every test passes.

Model-written code runs on this machine: ``-I`` keeps it away from your site-packages, it
gets a bare environment (no API keys; HOME is its temp dir), an empty temp dir as its working
directory and an address-space limit, but it is not a sandbox: run untrusted models inside a
container. At most one solution per CPU runs at a time, so a busy machine does not turn slow
solutions into timeouts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from insideLLMs.datasets import Example
from insideLLMs.models.base import Completion, Message
from insideLLMs.probes.base import Probe, Verdict

CODE_INSTRUCTION = "Reply with the complete Python function in a single ```python code block."

#: limits concurrent solution runs (the runner may score many examples at once)
_RUN_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))

_FENCE_RE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)

# Runs inside the child. Each test's outcome is appended to results.jsonl as it finishes, so a
# timeout or a hard exit (os._exit) in the solution still leaves the finished tests counted.
_HARNESS = r"""
import json, sys
try:
    import resource
    limit = int(sys.argv[1]) * 1024 * 1024
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except (ImportError, ValueError, OSError):
    pass
spec = json.load(open("spec.json", encoding="utf-8"))
out = open("results.jsonl", "a", encoding="utf-8")
def report(**row):
    out.write(json.dumps(row) + "\n")
    out.flush()
namespace = {"__name__": "solution"}
try:
    exec(compile(spec["setup"] + "\n" + open("solution.py", encoding="utf-8").read(), "solution.py", "exec"), namespace)
except BaseException as exc:
    report(load_error=f"{type(exc).__name__}: {exc}")
    raise SystemExit(0)
for index, test in enumerate(spec["tests"]):
    try:
        exec(compile(test, f"test_{index}", "exec"), dict(namespace))
        report(test=index, ok=True)
    except BaseException as exc:
        report(test=index, ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
report(done=True)
"""


@dataclass(frozen=True, slots=True)
class SolutionRun:
    """What running one solution against its tests gave."""

    passed: int
    total: int
    timed_out: bool
    load_error: str | None = None


def extract_code(text: str) -> str | None:
    """The Python code in a reply: its ```python blocks (else any fenced block, else the whole reply if it parses)."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE_RE.findall(text)]
    python = [body for lang, body in blocks if lang in ("python", "py", "python3")]
    chosen = python or [body for lang, body in blocks if not lang]
    if chosen:
        code = "\n\n".join(b.strip("\n") for b in chosen)
        return code if code.strip() else None
    stripped = text.strip()
    if not stripped:
        return None
    try:
        compile(stripped, "reply", "exec")
    except (SyntaxError, ValueError):
        return None
    return stripped


def run_tests(
    code: str, tests: list[str], *, setup: str = "", timeout_s: float = 10.0, memory_mb: int = 1024
) -> SolutionRun:
    """Run ``code`` and then each of ``tests`` in a fresh isolated interpreter; kill it after ``timeout_s``."""
    with tempfile.TemporaryDirectory(prefix="insidellms-code-") as tmp:
        workdir = Path(tmp)
        (workdir / "solution.py").write_text(code, encoding="utf-8")
        (workdir / "spec.json").write_text(json.dumps({"tests": tests, "setup": setup}), encoding="utf-8")
        (workdir / "harness.py").write_text(_HARNESS, encoding="utf-8")
        with _RUN_SLOTS:
            proc = subprocess.Popen(
                [sys.executable, "-I", "harness.py", str(memory_mb)],
                cwd=workdir,
                env=_bare_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
        return _read_results(workdir / "results.jsonl", len(tests), timed_out)


def _bare_env(workdir: Path) -> dict[str, str]:
    """What the solution sees of the environment: no credentials, HOME and TMPDIR in its temp dir."""
    env = {"HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8", "PATH": os.environ.get("PATH", "")}
    if "SYSTEMROOT" in os.environ:  # Windows cannot start Python without it
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child and anything it started (it leads its own session)."""
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif proc.poll() is None:
        proc.kill()
    proc.wait()


def _read_results(path: Path, total: int, timed_out: bool) -> SolutionRun:
    passed, load_error = 0, None
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("ok") is True:
                passed += 1
            elif "load_error" in row:
                load_error = str(row["load_error"])
    return SolutionRun(passed=min(passed, total), total=total, timed_out=timed_out, load_error=load_error)


class CodeProbe(Probe):
    name: ClassVar[str] = "code"
    version: ClassVar[str] = "1"
    default_dataset: ClassVar[str | None] = "code.jsonl"
    required_fields: ClassVar[tuple[str, ...]] = ("prompt", "tests")
    blocking_score: ClassVar[bool] = True

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 1024, instruction: bool = True) -> None:
        """``timeout_s`` bounds each solution's test run; ``memory_mb`` caps its address space (0: no cap)."""
        super().__init__(timeout_s=timeout_s, memory_mb=memory_mb, instruction=instruction)

    def build(self, example: Example) -> list[Message]:
        prompt = str(example.data["prompt"])
        if self.params["instruction"]:
            prompt = f"{prompt}\n\n{CODE_INSTRUCTION}"
        return [{"role": "user", "content": prompt}]

    def score(self, example: Example, completion: Completion) -> Verdict:
        tests = example.data.get("tests")
        if not isinstance(tests, list) or not tests:
            raise ValueError(f"example {example.id!r} has no 'tests' list of assert statements")
        code = extract_code(completion.text)
        if code is None:
            return Verdict(scores={"extracted": False, "tests_passed": 0.0, "timed_out": False}, passed=False)
        result = run_tests(
            code,
            [str(t) for t in tests],
            setup=str(example.data.get("setup") or ""),
            timeout_s=float(self.params["timeout_s"]),
            memory_mb=int(self.params["memory_mb"]),
        )
        fraction = result.passed / result.total
        return Verdict(
            scores={"extracted": True, "tests_passed": round(fraction, 4), "timed_out": result.timed_out},
            passed=result.passed == result.total and not result.timed_out,
        )
