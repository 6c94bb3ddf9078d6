"""Prompt sets: examples with stable ids and a content hash, from JSONL, CSV, a list or a Hugging Face dataset."""

from __future__ import annotations

from insideLLMs.datasets._prompt_set import DatasetError, Example, PromptSet

__all__ = [
    "DatasetError",
    "Example",
    "PromptSet",
]
