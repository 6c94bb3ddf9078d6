"""Loading rows from a Hugging Face dataset (the ``hf`` extra), offline-safe.

With ``HF_HUB_OFFLINE=1`` only the local cache is used. Online, the hub calls get short
timeouts, and an unreachable hub becomes one clear error instead of a hang. A local folder
(``save_to_disk`` output, or a folder of data files) works with no hub at all.
"""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from insideLLMs.datasets._prompt_set import DatasetError

_HUB_TIMEOUTS = {"HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "10"}


def load_hf_rows(
    dataset: str,
    *,
    split: str = "test",
    subset: str | None = None,
    limit: int | None = None,
    revision: str | None = None,
) -> list[dict[str, Any]]:
    for key, value in _HUB_TIMEOUTS.items():
        os.environ.setdefault(key, value)  # read by huggingface_hub at import time
    try:
        import datasets
    except ImportError:
        raise DatasetError(f"hf:{dataset}: Hugging Face datasets are not installed; pip install 'insidellms[hf]'") from None
    label = f"hf:{dataset}{'/' + subset if subset else ''}:{split}"
    datasets.disable_progress_bars()  # stderr holds one line per problem, never a progress bar
    try:
        local = Path(dataset)
        if local.is_dir() and (local / "dataset_dict.json").exists():  # save_to_disk of a DatasetDict
            # only the split asked for: datasets cannot read a split saved with no rows, even one not asked for
            splits = orjson.loads((local / "dataset_dict.json").read_bytes()).get("splits", [])
            if split not in splits:
                raise KeyError(f"no split {split!r}; the dataset has: {', '.join(splits)}")
            data = _load_saved(datasets, local / split)
        elif local.is_dir() and (local / "dataset_info.json").exists():  # save_to_disk of one Dataset
            data = _load_saved(datasets, local)
        else:
            data = datasets.load_dataset(dataset, subset, split=split, revision=revision)
    except (ConnectionError, TimeoutError, OSError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = (
            "it is not in the local cache (HF_HUB_OFFLINE=1)"
            if offline
            else "the hub could not be reached; set HF_HUB_OFFLINE=1 to use the local cache"
        )
        raise DatasetError(f"{label}: cannot load: {hint} ({type(exc).__name__})") from None
    except KeyError as exc:
        raise DatasetError(f"{label}: {exc.args[0] if exc.args else exc}") from None  # str() would quote it
    except ValueError as exc:
        raise DatasetError(f"{label}: {exc}") from None
    rows = [dict(row) for row in (data if limit is None else islice(data, limit))]
    if not rows:
        raise DatasetError(f"{label}: the dataset split holds no rows")
    return rows


def _load_saved(datasets: Any, folder: Path) -> Any:
    try:
        return datasets.load_from_disk(str(folder))
    except IndexError:  # how datasets fails on a split saved with no rows (it has no data file to read)
        return []
