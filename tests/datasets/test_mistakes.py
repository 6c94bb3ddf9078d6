"""Prompt-set mistakes a user makes: each is one line naming the file and line, exit 1, nothing sent or written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.cli import run_cli

CASES = {
    "empty jsonl": ("jsonl", "d.jsonl", "", "error: d.jsonl: the file holds no examples (dataset at eval.yaml:3)"),
    "blank-line jsonl": ("jsonl", "d.jsonl", "\n\n  \n", "error: d.jsonl: the file holds no examples (dataset at eval.yaml:3)"),
    "header-only csv": ("csv", "d.csv", "id,prompt,answer\n", "error: d.csv: the file holds no examples (dataset at eval.yaml:3)"),
    "short csv row": ("csv", "d.csv", "id,prompt,answer\n1,What is 2+2?,4\n2,Why?\n",
                      "error: d.csv:3: 2 field(s) where the header has 3 (dataset at eval.yaml:3)"),
    "long csv row": ("csv", "d.csv", "id,prompt,answer\n1,What is 2+2?,4,5\n",
                     "error: d.csv:2: more fields than the header has (dataset at eval.yaml:3)"),
    "empty inline": ("inline", None, None, "error: inline: 'items' holds no examples (dataset at eval.yaml:3)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_prompt_set_mistake_is_one_line(tmp_path: Path, fake_llm_server: Any, case: str, command: str) -> None:
    fmt, name, content, expected = CASES[case]
    dataset = f"{{format: {fmt}, path: {name}}}" if name else "{format: inline, items: []}"
    (tmp_path / "eval.yaml").write_text(
        f"model: {{type: openai, args: {{model_name: m, api_key: k, base_url: '{fake_llm_server.openai_base_url}'}}}}\n"
        f"probe: {{type: logic}}\ndataset: {dataset}\n", encoding="utf-8")
    if name:
        (tmp_path / name).write_text(content, encoding="utf-8")
    args = ["run", "eval.yaml", "--no-track", "--run-dir", "out"] if command == "run" else ["validate", "eval.yaml"]
    result = run_cli(*args, cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (1, expected)
    assert fake_llm_server.stats.requests == 0 and not (tmp_path / "out").exists()
