"""How long to wait before trying again: exponential backoff with jitter, the one curve insideLLMs uses.

Model calls (``run``) wait with it between attempts; the delivery of tracked events to remote
backends and the start of its process (``tracking``) wait with it in loops of their own.
"""

from __future__ import annotations

import random


def backoff_s(failures: int, first_s: float, max_s: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: a random time between half and
    all of ``min(max_s, first_s * 2 ** (failures - 1))``. It grows fast, and the jitter keeps
    clients that failed together (a server restart) from all retrying at the same moment."""
    cap = min(max_s, first_s * 2 ** min(max(failures, 1) - 1, 62))
    return random.uniform(cap / 2, cap)


__all__ = ["backoff_s"]
