"""What tokens cost: the shipped price table (``prices.yaml``), a config's ``pricing:`` overrides, and the
one formula from token counts to US dollars.

A price is USD per million input (prompt) and output (completion) tokens. A model is matched by its
configured name (``model_name``, the record's ``model.id``): the config's ``pricing:`` block first, then a
model that runs on this machine (dummy, llamacpp: free), then the table by name, by alias, and by the name
without a trailing date (``gpt-4o-2024-08-06`` -> ``gpt-4o``). No match is an unknown price, and an
unknown price gives an unknown cost, never 0.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

#: providers whose models run on this machine: their tokens cost nothing
LOCAL_PROVIDERS = ("dummy", "llamacpp")
PRICES_FILE = "prices.yaml"
_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_PER = 1_000_000
#: cost digits kept (1e-10 USD): float sums of token prices stay stable when written
COST_DIGITS = 10


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input and output tokens, and where the price came from (config, table, local)."""

    input: float
    output: float
    source: str = "table"

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "source": self.source}


def token_cost(price: Mapping[str, Any] | Price | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    """What ``prompt_tokens`` in and ``completion_tokens`` out cost at ``price`` (None: unknown)."""
    if price is None:
        return None
    if isinstance(price, Price):
        rate_in, rate_out = price.input, price.output
    else:
        rate_in, rate_out = price["input"], price["output"]
    return round((prompt_tokens * rate_in + completion_tokens * rate_out) / _PER, COST_DIGITS)


@dataclass(frozen=True)
class PriceTable:
    """The shipped table with a config's overrides on top; ``price_for`` finds one model's price."""

    date: str
    table: Mapping[str, Price]  # every name and alias of the shipped file
    overrides: Mapping[str, Price]
    file_sha256: str

    @classmethod
    def load(cls, overrides: Mapping[str, Mapping[str, float]] | None = None) -> "PriceTable":
        """The shipped table (``insideLLMs/models/prices.yaml``) with ``overrides`` (model name ->
        ``{input, output}``, as in a config's ``pricing:`` block)."""
        import yaml

        raw = (files("insideLLMs.models") / PRICES_FILE).read_bytes()
        data = yaml.safe_load(raw)
        table: dict[str, Price] = {}
        for name, entry in data["models"].items():
            price = Price(float(entry["input"]), float(entry["output"]))
            for alias in (name, *entry.get("aliases", ())):
                table[alias] = price
        mine = {name: Price(float(p["input"]), float(p["output"]), "config") for name, p in (overrides or {}).items()}
        return cls(str(data["date"]), table, mine, hashlib.sha256(raw).hexdigest())

    def price_for(self, name: str, provider: str | None = None) -> Price | None:
        """The price of the model named ``name`` (served by ``provider``), or None when unknown."""
        if name in self.overrides:
            return self.overrides[name]
        if provider in LOCAL_PROVIDERS:
            return Price(0.0, 0.0, "local")
        if name in self.table:
            return self.table[name]
        undated = _DATED.sub("", name)
        return self.table.get(undated)

    def prices(self, models: Iterable[tuple[str, str | None]]) -> dict[str, dict[str, Any] | None]:
        """``{model name: {input, output, source} or None}`` for the (name, provider) pairs given, sorted."""
        out: dict[str, dict[str, Any] | None] = {}
        for name, provider in models:
            price = self.price_for(name, provider)
            out[name] = price.to_dict() if price is not None else None
        return dict(sorted(out.items()))

    def describe(self) -> dict[str, Any]:
        """What a run records about the table: its date, the shipped file's hash, and the config's overrides."""
        return {
            "date": self.date,
            "table_sha256": self.file_sha256,
            "overrides": {name: {"input": p.input, "output": p.output} for name, p in sorted(self.overrides.items())},
        }


__all__ = ["COST_DIGITS", "LOCAL_PROVIDERS", "PRICES_FILE", "Price", "PriceTable", "token_cost"]
