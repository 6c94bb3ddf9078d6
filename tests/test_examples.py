"""Every config shipped in examples/ validates as written (no key or server needed to validate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_config_validates(config: Path) -> None:
    result = run_cli("validate", str(config), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ok —" in result.stdout
