"""Loaded by every Python child a test starts under mutmut (tests/support/mutation_testing.py puts this folder on
PYTHONPATH): while mutmut maps tests to functions, record which mutated functions this process reached."""

import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats" and os.environ.get("INSIDELLMS_MUTMUT_HITS"):
    import atexit

    import mutmut.mutation.trampoline as _trampoline

    _hits: set[str] = set()

    def _record(name: str, caller: str | None = None) -> None:
        _hits.add(name)

    def _write() -> None:
        if _hits:
            path = os.path.join(os.environ["INSIDELLMS_MUTMUT_HITS"], f"hits-{os.getpid()}.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(sorted(_hits)))

    _trampoline.record_trampoline_hit = _record
    atexit.register(_write)
