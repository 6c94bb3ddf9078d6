"""Shared test set-up. Fixture modules live in tests/support/ (one per area) and load as plugins."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

# Hugging Face libraries read their settings from the environment once, at import: a test that sets them later
# changes nothing. Every test process (and the CLIs it starts) gets a throwaway cache instead of ~/.cache, and the
# hub is never asked (tests talk only to 127.0.0.1).
_HF_HOME = tempfile.mkdtemp(prefix="insidellms-tests-hf-")
os.environ.update(HF_HOME=_HF_HOME, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)

pytest_plugins = sorted(
    f"support.{p.stem}" for p in (_HERE / "support").glob("*.py") if not p.stem.startswith("_")
)
