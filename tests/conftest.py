"""Shared test set-up. Fixture modules live in tests/support/ (one per area) and load as plugins."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

pytest_plugins = sorted(
    f"support.{p.stem}" for p in (_HERE / "support").glob("*.py") if not p.stem.startswith("_")
)
