"""From a validated config to the objects a run needs: models, probes with prompt sets, settings.

Every failure here is a user mistake in the config (an unknown type, a wrong argument, a
missing data file), reported as ``file:line: what is wrong``.
"""

from __future__ import annotations

import importlib.util
import inspect
from functools import partial
from pathlib import Path
from typing import Any, Callable

from insideLLMs.config import ConfigError, DatasetConfig, LoadedConfig, ModelConfig, SchemaError, line_of
from insideLLMs.datasets import DatasetError, PromptSet
from insideLLMs.models import MODELS, Model, PriceTable
from insideLLMs.probes import PROBES, Probe
from insideLLMs.registry import UnknownTypeError
from insideLLMs.run._engine import BudgetError, check_budget, run_prices
from insideLLMs.errors import UserError
from insideLLMs.run._engine import Executor
from insideLLMs.run._ray import INSTALL_HINT, RayExecutor
from insideLLMs.run._runner import Harness, RunSettings
from insideLLMs.stats import Reducer


def _constructor(registry: Any, type_name: str, args: dict[str, Any], loaded: LoadedConfig, keys: tuple[Any, ...]) -> Callable[[], Any]:
    """Builds what a config entry describes when called; its type and argument names are checked now."""
    where = f"{loaded.path}:{line_of(loaded, *keys)}"
    try:
        cls = registry.resolve(type_name)
    except UnknownTypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        inspect.signature(cls).bind(**args)
    except TypeError as exc:
        raise ConfigError(f"{where}: bad args for {registry.kind} type {type_name!r}: {exc}") from None

    def build() -> Any:
        try:
            return cls(**args)
        except SchemaError as exc:  # a mistake inside ``args``, at the line of its key
            loc = (*keys[:-1], "args", *exc.loc)
            where_in = ".".join(str(p) for p in loc)
            raise ConfigError(f"{loaded.path}:{line_of(loaded, *loc)}: {where_in}: {exc.message}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: bad args for {registry.kind} type {type_name!r}: {exc}") from None

    return build


def model_constructors(loaded: LoadedConfig) -> list[Callable[[], Model]]:
    """The config's models, their types and argument names checked; ``build_models`` builds them."""
    cfg = loaded.config
    key = "models" if cfg.models else "model"
    return [
        _constructor(MODELS, model_cfg.type, model_cfg.args, loaded, (key, i, "type") if cfg.models else (key, "type"))
        for i, model_cfg in enumerate(cfg.model_list)
    ]


def build_models(loaded: LoadedConfig, constructors: list[Callable[[], Model]]) -> list[Model]:
    models = [build() for build in constructors]
    ids = [m.model_id for m in models]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        key = "models" if loaded.config.models else "model"
        raise ConfigError(f"{loaded.path}:{line_of(loaded, key)}: two models are named {dup!r}; give each a distinct model_name")
    return models


def load_dataset(dataset: DatasetConfig, base_dir: Path) -> PromptSet:
    """Load a prompt set; relative paths are relative to the config file's folder. An empty one is a mistake."""
    prompt_set = _load(dataset, base_dir)
    if not len(prompt_set):
        what = "'items' holds no examples" if dataset.format == "inline" else "the file holds no examples"
        raise DatasetError(f"{dataset.path or dataset.name or 'inline'}: {what}")
    return prompt_set


def _load(dataset: DatasetConfig, base_dir: Path) -> PromptSet:
    if dataset.format == "inline":
        return PromptSet.from_list(dataset.items or [], name=dataset.name or "inline", id_field=dataset.id_field,
                                   fields=dataset.fields)
    if dataset.format == "hf":
        assert dataset.name
        return PromptSet.from_hf(
            dataset.name, split=dataset.split, subset=dataset.subset, fields=dataset.fields,
            id_field=dataset.id_field, limit=dataset.limit, revision=dataset.revision, base_dir=base_dir,
        )
    assert dataset.path
    if dataset.format == "csv":
        return PromptSet.from_csv(dataset.path, fields=dataset.fields, id_field=dataset.id_field, name=dataset.name,
                                  base_dir=base_dir)
    return PromptSet.from_jsonl(dataset.path, id_field=dataset.id_field, name=dataset.name, base_dir=base_dir,
                                fields=dataset.fields)


def build_probes(loaded: LoadedConfig, max_examples: int | None = None) -> list[tuple[Probe, PromptSet]]:
    cfg = loaded.config
    key = "probes" if cfg.probes else "probe"
    out = []
    for i, probe_cfg in enumerate(cfg.probe_list):
        keys: tuple[Any, ...] = (key, i) if cfg.probes else (key,)
        args = _with_judge(probe_cfg.args, cfg.judge)
        probe: Probe = _constructor(PROBES, probe_cfg.type, args, loaded, (*keys, "type"))()
        if any(other.name == probe.name for other, _ in out):  # records are matched by (model, probe, example)
            hint = "give each a distinct 'name' in its args" if probe_cfg.type == "prompt" else "list each probe once"
            raise ConfigError(f"{loaded.path}:{line_of(loaded, *keys)}: two probes are named {probe.name!r}; {hint}")
        dataset = probe_cfg.dataset or cfg.dataset
        dkeys = (*keys, "dataset") if probe_cfg.dataset else ("dataset",)
        try:
            if dataset is not None:
                prompt_set = load_dataset(dataset, loaded.base_dir)
            else:
                prompt_set = probe.load_default_dataset()
        except LookupError as exc:
            raise ConfigError(f"{loaded.path}:{line_of(loaded, *keys)}: {exc}") from None
        except DatasetError as exc:
            raise ConfigError(f"{exc} (dataset at {loaded.path}:{line_of(loaded, *dkeys)})") from None
        try:
            probe.prepare(loaded.base_dir, (dataset.fields if dataset is not None else None) or {})
        except DatasetError as exc:
            raise ConfigError(f"{exc} (probe args at {loaded.path}:{line_of(loaded, *keys, 'args')})") from None
        prompt_set = prompt_set.head(max_examples)
        locate = partial(_row_location, loaded, dataset, dkeys, prompt_set)
        _check_fields(probe, prompt_set, locate)
        if dataset is not None and dataset.cluster is not None:
            prompt_set = prompt_set.clustered_by(dataset.cluster, locate)
        out.append((probe, prompt_set))
    return out


def _with_judge(args: dict[str, Any], judge: ModelConfig | None) -> dict[str, Any]:
    """Probe args with the top-level ``judge:`` model given to every judge scorer that names none."""
    scorers = args.get("scorers")
    if judge is None or not isinstance(scorers, list):
        return args
    default = {"type": judge.type, "args": dict(judge.args)}
    entries = [
        {**entry, "model": default}
        if isinstance(entry, dict) and entry.get("type") in ("judge", "pairwise") and "model" not in entry and "models" not in entry
        else entry
        for entry in scorers
    ]
    return {**args, "scorers": entries}


def self_grading(harness: Harness) -> list[str]:
    """One line per judge that grades the very model it judges (same spec): its grades flatter that model."""
    lines = []
    for cell in harness.cells:
        for judge in cell.probe.judge_models:
            if judge.spec == cell.model.spec:
                lines.append(f"probe {cell.probe.name}: the judge is the model under test ({cell.model.model_id}); "
                             "self-grading tends to flatter it: use another judge model")
    return list(dict.fromkeys(lines))


def _check_fields(probe: Probe, prompt_set: PromptSet, locate: Callable[[int], str]) -> None:
    """Every example has the fields the probe needs, or one line names the first that does not
    (``locate`` says where that row is written): a run must not spend requests on rows it cannot score."""
    for index, example in enumerate(prompt_set):
        problem = probe.row_problem(example.data)
        if problem is not None:
            raise DatasetError(f"{locate(index)}: {problem}")


def _row_location(
    loaded: LoadedConfig, dataset: DatasetConfig | None, keys: tuple[Any, ...], prompt_set: PromptSet, index: int
) -> str:
    """Where a user finds a row: its file and line, the config line of an inline item, or its Hugging Face row."""
    if dataset is not None and dataset.format == "inline":
        return f"{loaded.path}:{line_of(loaded, *keys, 'items', index)}"
    if dataset is not None and dataset.format == "hf":
        return f"{prompt_set.source} row {index}"
    assert prompt_set.lines is not None  # the JSONL and CSV loaders record them
    if dataset is None:  # the probe's bundled prompt set
        return f"{prompt_set.source}:{prompt_set.lines[index]}"
    path = Path(dataset.path or "")
    return f"{path if path.is_absolute() else loaded.base_dir / path}:{prompt_set.lines[index]}"


def _check_reducer(loaded: LoadedConfig, epochs: int) -> None:
    """``runner.reducer`` names reducers that exist (pass@K with K at most the epochs), or one line at its key."""
    reducer = loaded.config.runner.reducer
    entries = reducer.items() if isinstance(reducer, dict) else [(None, reducer)] if reducer is not None else []
    for metric, name in entries:
        try:
            Reducer.parse(name, epochs)
        except ValueError as exc:
            keys = ("runner", "reducer") if metric is None else ("runner", "reducer", metric)
            where = "runner.reducer" + (f".{metric}" if metric is not None else "")
            raise ConfigError(f"{loaded.path}:{line_of(loaded, *keys)}: {where}: {exc}") from None


def build_harness(
    loaded: LoadedConfig,
    *,
    max_examples: int | None = None,
    concurrency: int | None = None,
    epochs: int | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    **settings: Any,
) -> Harness:
    """The whole run a config describes; ``settings`` are further ``RunSettings`` fields (run_dir, resume, ...).

    ``executor`` and ``ray_address`` override ``runner.executor`` (the CLI's ``--executor`` and ``--ray-address``).
    """
    cfg = loaded.config
    epochs = epochs or cfg.runner.epochs
    _check_reducer(loaded, epochs)
    run_executor = _executor(loaded, executor, ray_address)
    models_checked = model_constructors(loaded)  # config mistakes are reported in file order
    probes = build_probes(loaded, max_examples or cfg.runner.max_examples)  # every row checked before a model is built
    models = build_models(loaded, models_checked)
    run_settings = RunSettings(
        concurrency=concurrency or cfg.runner.concurrency,
        max_retries=cfg.runner.max_retries,
        timeout_s=cfg.runner.timeout_s,
        generation=cfg.generation.as_params(),
        name=cfg.name,
        config=loaded.resolved,
        cache_dir=Path(cfg.runner.cache_dir) if cfg.runner.cache_dir else None,
        prices=PriceTable.load({name: {"input": p.input, "output": p.output} for name, p in (cfg.pricing or {}).items()}),
        max_cost_usd=settings.pop("max_cost_usd", cfg.runner.max_cost_usd),
        epochs=epochs,
        reducer=cfg.runner.reducer,
        executor=run_executor,
        **settings,
    )
    harness = Harness(models, probes, settings=run_settings)
    if cfg.runner.max_cost_usd is not None:  # the config's budget (--max-cost is checked where it is given)
        try:
            check_budget(run_prices(harness.cells, run_settings.prices or PriceTable.load()), run_settings.max_cost_usd)
        except BudgetError as exc:
            where = f"{loaded.path}:{line_of(loaded, 'runner', 'max_cost_usd')}: runner.max_cost_usd"
            raise ConfigError(f"{where}: {exc}") from None
    return harness


def _executor(loaded: LoadedConfig, override: str | None, ray_address: str | None) -> Executor | None:
    """The config's ``runner.executor`` with the command line's overrides: None runs examples in this process."""
    config = loaded.config.runner.executor
    kind = override or ("ray" if ray_address else config.type)
    if kind == "local":
        if ray_address:
            raise UserError("--ray-address applies to the ray executor: drop it or pass --executor ray")
        return None
    if importlib.util.find_spec("ray") is None:
        where = "--executor ray" if override else f"{loaded.path}:{line_of(loaded, 'runner', 'executor', 'type')}: runner.executor"
        raise ConfigError(f"{where}: the ray executor needs the ray package: {INSTALL_HINT}")
    return RayExecutor(address=ray_address or config.address, workers=config.workers)
