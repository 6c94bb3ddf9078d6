"""The price table: what ships, how a model name finds its price, and the one formula from tokens to dollars."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from insideLLMs.models import Price, PriceTable, token_cost

SHIPPED = Path(__file__).resolve().parents[2] / "src" / "insideLLMs" / "models" / "prices.yaml"


def test_the_shipped_table_is_dated_cited_and_holds_the_common_models() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert "docs.anthropic.com/en/docs/about-claude/pricing" in header
    assert "platform.openai.com/docs/pricing" in header
    assert "A maintainer should check them" in header  # prices not confirmed against the provider say so
    data = yaml.safe_load(text)
    assert data["date"] == "2026-12-05" and f"Date: {data['date']}" in header
    table = PriceTable.load()
    assert table.date == data["date"]
    for name in (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "claude-sonnet-4",
        "claude-opus-4-1",
        "claude-3-5-haiku",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
    ):
        assert table.price_for(name) is not None, name
    for name, entry in data["models"].items():
        assert 0 < entry["input"] <= entry["output"], name  # output tokens never cost less than input


def test_the_table_hash_is_the_shipped_files() -> None:
    assert PriceTable.load().file_sha256 == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("gpt-4o-mini", (0.15, 0.60)),
        ("gpt-4o-mini-2024-07-18", (0.15, 0.60)),  # a dated snapshot: its family's price
        ("gpt-4o-2024-08-06", (2.50, 10.00)),
        ("gpt-4o-2024-05-13", (5.00, 15.00)),  # ... unless the snapshot is listed itself
        ("claude-sonnet-4-20250514", (3.00, 15.00)),  # Anthropic's dates have no dashes
        ("claude-sonnet-4-0", (3.00, 15.00)),  # an alias
        ("claude-3-5-haiku-latest", (0.80, 4.00)),
    ],
)
def test_a_model_name_finds_its_price(name: str, expected: tuple[float, float]) -> None:
    price = PriceTable.load().price_for(name, "openai")
    assert price is not None and (price.input, price.output) == expected and price.source == "table"


def test_unknown_models_have_no_price_and_local_models_are_free() -> None:
    table = PriceTable.load()
    assert table.price_for("llama3.2", "openai") is None
    assert table.price_for("gpt-4o-mini-fast") is None  # only a trailing date is dropped
    assert table.price_for("gpt-4o", "llamacpp") == Price(0.0, 0.0, "local")
    assert table.price_for("anything", "dummy") == Price(0.0, 0.0, "local")


def test_the_config_overrides_and_adds_prices_first() -> None:
    table = PriceTable.load(
        {
            "gpt-4o": {"input": 1.0, "output": 2.0},
            "my-model": {"input": 0, "output": 0.5},
            "dummy": {"input": 3, "output": 4},
        }
    )
    assert table.price_for("gpt-4o") == Price(1.0, 2.0, "config")
    assert table.price_for("gpt-4o-2024-08-06") == Price(2.5, 10.0, "table")  # an override is by exact name
    assert table.price_for("my-model", "openai") == Price(0.0, 0.5, "config")
    assert table.price_for("dummy", "dummy") == Price(3.0, 4.0, "config")  # before "local models are free"
    assert table.prices([("my-model", "openai"), ("nope", "openai")]) == {
        "my-model": {"input": 0.0, "output": 0.5, "source": "config"},
        "nope": None,
    }
    assert table.describe()["overrides"]["gpt-4o"] == {"input": 1.0, "output": 2.0}


def test_token_cost_is_usd_per_million_tokens() -> None:
    # 1,000 prompt tokens at $0.15/M + 500 completion tokens at $0.60/M = $0.00015 + $0.0003
    assert token_cost({"input": 0.15, "output": 0.6}, 1000, 500) == 0.00045
    assert token_cost(Price(3.0, 15.0), 2_000_000, 100_000) == 7.5  # $6 in + $1.50 out
    assert token_cost(None, 10, 10) is None  # an unknown price is an unknown cost, never 0
    assert token_cost(Price(0.0, 0.0, "local"), 10**6, 10**6) == 0.0
