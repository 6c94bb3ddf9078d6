"""Make a candidate run the new baseline in one step (``insidellms diff --accept``).

The baseline directory is usually checked into git, so only the deterministic files are copied:
the volatile timings.jsonl stays behind. The swap is atomic-ish: the new contents are copied to
a hidden sibling first, then two renames put it in place, so an interrupted accept never leaves
a half-written baseline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from insideLLMs.errors import UserError
from insideLLMs.rundir import INCOMPLETE, MANIFEST

#: files of a run directory that are never copied into a baseline
VOLATILE_FILES = frozenset({"timings.jsonl"})


def accept_candidate(baseline: Path, candidate: Path) -> list[str]:
    """Replace ``baseline``'s contents with ``candidate``'s deterministic files; return what was done."""
    baseline, candidate = Path(baseline), Path(candidate)
    if baseline.resolve() == candidate.resolve():
        raise UserError("baseline and candidate are the same directory")
    if (candidate / INCOMPLETE).exists() or not (candidate / MANIFEST).is_file():
        raise UserError(f"{candidate}: an incomplete run cannot become the baseline; finish it with --resume first")
    staging = baseline.with_name(f".{baseline.name}.accept-new")
    retired = baseline.with_name(f".{baseline.name}.accept-old")
    for leftover in (staging, retired):
        if leftover.exists():
            shutil.rmtree(leftover)
    staging.mkdir(parents=True)
    copied: list[str] = []
    for src in sorted(candidate.iterdir()):
        if src.name in VOLATILE_FILES:
            continue
        if src.is_dir():
            shutil.copytree(src, staging / src.name)
        else:
            shutil.copy2(src, staging / src.name)
        copied.append(src.name)
    actions: list[str] = []
    if baseline.exists():
        old = sorted(p.name for p in baseline.iterdir())
        baseline.rename(retired)
        staging.rename(baseline)
        shutil.rmtree(retired)
        removed = sorted(set(old) - set(copied))
        actions.append(f"replaced {baseline} with the deterministic files of {candidate}")
        if removed:
            actions.append(f"removed from the baseline: {', '.join(removed)}")
    else:
        staging.rename(baseline)
        actions.append(f"created {baseline} from the deterministic files of {candidate}")
    actions.append(f"copied: {', '.join(copied)}")
    skipped = sorted(n for n in VOLATILE_FILES if (candidate / n).exists())
    if skipped:
        actions.append(f"not copied (volatile): {', '.join(skipped)}")
    return actions
