"""`insidellms quicktest`: one prompt, one answer, no run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli


def test_quicktest_dummy_echoes(tmp_path: Path) -> None:
    result = run_cli("quicktest", "Hello there", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello there\n"
    assert "2 prompt + 2 completion tokens" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_quicktest_openai_against_a_server(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(answers={"Capital of France?": "Paris."})
    result = run_cli("quicktest", "Capital of France?", "--model", "openai", "--arg", "model_name=fake-gpt",
                     "--arg", f"base_url={fake_llm_server.openai_base_url}", "--system", "Be brief.", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Paris.\n"
    sent = fake_llm_server.stats.last_request
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.slow
def test_quicktest_bad_input(tmp_path: Path, closed_port_url: str) -> None:
    bad_arg = run_cli("quicktest", "hi", "--arg", "novalue", cwd=tmp_path)
    assert (bad_arg.returncode, bad_arg.stderr.strip()) == (1, "error: --arg 'novalue': expected KEY=VALUE")
    unknown = run_cli("quicktest", "hi", "--model", "gpt9", cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: unknown model type 'gpt9'")
    down = run_cli("quicktest", "hi", "--model", "openai", "--arg", "model_name=x", "--arg", f"base_url={closed_port_url}", cwd=tmp_path)
    assert down.returncode == 1 and "Traceback" not in down.stderr and down.stderr.startswith("error: openai:")
