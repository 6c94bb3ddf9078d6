"""Kill rate per module from the last ``mutmut run`` (``make mutate`` prints it; docs/testing.md keeps the table).

A mutant listed under "Equivalent mutants" in docs/testing.md cannot change behaviour; it is counted apart, not as
a survivor, but only while it still changes the line the table gives (mutant numbers move when a function changes).
Timeouts count as killed: the mutant made a test hang, which a user would see.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED_CODES = {1, 3, -24, 24, 152, 255, 36}  # failed test, pytest internal error, timeouts
SURVIVED_CODES = {0, 5, 33}  # all tests passed, or no test reached the mutant


def equivalent_mutants(doc: Path) -> dict[str, str]:
    """Each listed mutant's name and the changed line the table gives for it."""
    text = doc.read_text(encoding="utf-8")
    section = text.split("## Equivalent mutants", 1)[1].split("\n## ", 1)[0] if "## Equivalent mutants" in text else ""
    rows = re.findall(r"^\| `(insideLLMs\.[^`]+__mutmut_\d+)` \| `(.*?)` \|", section, re.M)
    return {name: line.replace("\\|", "|") for name, line in rows}


def still_changes(name: str, line: str) -> bool:
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], capture_output=True, text=True, cwd=ROOT)
    return any(out[1:].strip() == line for out in shown.stdout.splitlines() if out.startswith("+ "))


def main(argv: list[str]) -> int:
    """The table and the survivors; with ``--survivors``, only the survivors' names (to run them again after new
    tests: mutmut keeps a result until the mutated function itself changes)."""
    listed = equivalent_mutants(ROOT / "docs" / "testing.md")
    metas = sorted((ROOT / "mutants" / "src").rglob("*.py.meta"))
    if not metas:
        print("no mutation results: run `make mutate` first", file=sys.stderr)
        return 1
    rows = []
    survivors: list[str] = []
    stale: list[str] = []
    for meta in metas:
        codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        if not codes:
            continue
        count: Counter[str] = Counter()
        for name, code in codes.items():
            if name in listed and code in SURVIVED_CODES and still_changes(name, listed[name]):
                count["equivalent"] += 1
            elif code in KILLED_CODES:
                count["killed"] += 1
            elif code in SURVIVED_CODES:
                count["survived"] += 1
                survivors.append(name)
                if name in listed:
                    stale.append(name)
            else:
                count["unchecked"] += 1
        judged = count["killed"] + count["survived"]
        rate = f"{100 * count['killed'] / judged:.0f} %" if judged else "-"
        module = str(meta.relative_to(ROOT / "mutants" / "src")).removesuffix(".meta")
        rows.append((module, len(codes), count["killed"], count["survived"], count["equivalent"], count["unchecked"],
                     rate))
    if "--survivors" in argv:
        print("\n".join(survivors))
        return 0
    header = ("module", "mutants", "killed", "survived", "equivalent", "not run", "kill rate")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    if stale:
        print(f"\n{len(stale)} listed as equivalent in docs/testing.md no longer change the line given there:")
        for name in stale:
            print(f"  {name}")
    if survivors:
        print(f"\n{len(survivors)} survivors (`mutmut show NAME` shows one):")
        for name in survivors:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
