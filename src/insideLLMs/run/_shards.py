"""The stable split of a run's examples into shards: which examples shard ``I`` of ``N`` holds.

An example's shard is a function of its key alone (the probe's name and the example's id, hashed with
sha256), never of its position or of what else the run holds: the same example lands in the same shard
whatever the other examples, the order of the prompt set or the machine. Every model of a grid runs
the example in the same shard. ``insidellms run --shard`` and the Ray executor split the same way.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from insideLLMs.errors import UserError

__all__ = ["POSITION", "Shard", "ShardError", "shard_key", "shard_of"]

#: the key each timings.jsonl line of a partial run holds: its record's 0-based position in the whole run
POSITION = "position"

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(UserError):
    """A bad ``--shard`` value, or shards that cannot be merged into one run (the message says why)."""


def shard_key(probe: str, example_id: str) -> bytes:
    """What decides an example's shard: its probe's name and its id (the model is left out on purpose)."""
    return f"{probe}\x1f{example_id}".encode("utf-8")


def shard_of(key: bytes, count: int) -> int:
    """The 0-based shard of ``count`` that holds ``key``: the first 8 bytes of its sha256, modulo ``count``."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardError(f"--shard {self}: N must be at least 1")
        if not 0 <= self.index < self.count:
            raise ShardError(f"--shard {self}: I must be 0 to {self.count - 1} (shards are numbered from 0)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"I/N"`` (as in ``--shard 2/8``); anything else is a ``ShardError`` saying what is expected."""
        match = _SPEC.fullmatch(text)
        if match is None:
            raise ShardError(f"--shard {text}: expected I/N, the 0-based shard I of N shards (e.g. --shard 0/4)")
        return cls(int(match[1]), int(match[2]))

    def holds(self, probe: str, example_id: str) -> bool:
        return shard_of(shard_key(probe, example_id), self.count) == self.index
