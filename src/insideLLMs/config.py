"""The config file: YAML -> validated ``Config`` (typed ``Settings`` records), with ``${ENV}`` references and clear errors.

Every path written in a config (a dataset, ``run_dir``, ``tracking.output_dir``/``log_dir``) is relative
to the config file's folder; defaults and command-line options are relative to the current directory.
Every error names the file and the line of the key.
Values that came from ``${ENV}`` are never written back: the resolved config keeps the reference.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import yaml

from insideLLMs.secrets import REDACTED, is_secret_key, redact
from insideLLMs.errors import UserError


# --- settings records: typed, validated from plain data, with readable errors ---
#
# Built on msgspec (light to import: every command loads settings at start-up). ``Settings``
# forbids unknown keys; ``validate`` turns msgspec's one error into a ``SchemaError`` carrying the key
# path (for the caller to turn into ``file:line``) and a message in our words.

T = TypeVar("T")

#: msgspec's "... - at `$.runner.concurrency`" suffix, and the parts of such a path
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_FIELD = re.compile(r"^@(?P<name>\w+): ")  # see field_error
_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
               "array": "a list", "object": "a mapping", "null": "nothing (null)", "date": "a date",
               "datetime": "a date and time"}


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every settings record: keyword construction, unknown keys are errors."""


class SchemaError(UserError):
    """Data that does not fit a settings record: ``loc`` is the key path, ``message`` what is wrong."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(f"{'.'.join(str(p) for p in loc) or 'config'}: {message}")
        self.loc = loc
        self.message = message


def field_error(name: str, message: str) -> ValueError:
    """For a record's ``__post_init__``: an error about one of its fields (so the line is that field's)."""
    return ValueError(f"@{name}: {message}")


def validate(data: Any, kind: type[T], *, strict: bool = True) -> T:
    """``data`` as a ``kind`` record, or ``SchemaError``. Strict: no str -> int coercion, unless told
    otherwise (values from ``${VAR}`` are text, and take the type their setting needs)."""
    try:
        return msgspec.convert(data, kind, strict=strict)
    except msgspec.ValidationError as exc:
        raise _schema_error(str(exc), data) from None


def _schema_error(text: str, data: Any) -> SchemaError:
    at = _AT.search(text)
    message = text[: at.start()] if at else text
    loc: list[str | int] = []
    for name, index in _PATH_PART.findall(at.group("path") if at else ""):
        if name:
            loc.append(name)
        elif index != "...":
            loc.append(int(index))
    if field := _FIELD.match(message):
        return SchemaError((*loc, field["name"]), message[field.end():])
    if unknown := _UNKNOWN.match(message):
        return SchemaError((*loc, unknown["name"]), f"unknown setting '{unknown['name']}'")
    if missing := _MISSING.match(message):
        return SchemaError((*loc, missing["name"]), "missing (required)")
    if message.startswith("Expected `"):
        message = _readable_types(message)
        value = _value_at(data, loc)
        if value is not _ABSENT and value is not None and not isinstance(value, (dict, list)):
            shown = repr(value)
            if isinstance(value, datetime.date):  # YAML reads an unquoted 2026-01-01 as a date
                shown = f"{value.isoformat()}; quote it to keep it as text"
            message += f" ({shown})" if ", got " in message else f", got {shown}"
    elif message.startswith("Invalid enum value "):
        message = f"invalid value {message[len('Invalid enum value '):]}"
    return SchemaError(tuple(loc), message)


def _readable_types(message: str) -> str:
    """"Expected `int`, got `str`" -> "expected an integer, got a string"."""

    def name(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split("|")]
        return " or ".join(_TYPE_NAMES.get(p, p) for p in parts)

    return "e" + re.sub(r"`([^`]+)`", name, message)[1:]


_ABSENT = object()


def _value_at(data: Any, loc: list[str | int]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _ABSENT
    return data


# --- the tracking: block (not part of the run_id: where a run is tracked never changes it) ---

class Backend(msgspec.Struct, frozen=True):
    """A tracking backend: the keys of the ``tracking:`` block it reads, and for a remote one its
    sink (``module:Class``, imported only in the delivery process), the library the sink needs and
    the pip extra that installs it, and a cheap "is the server there" check (``module:function``).

    The one table of backends is here, beside the block that names them, so config can check a
    backend name without importing tracking, and tracking, the CLI and the docs tests read it."""

    name: str
    options: tuple[str, ...]
    sink: str | None = None  # None: the local journal itself, no sink
    library: str | None = None
    extra: str | None = None
    preflight: str | None = None


_SINKS = "insideLLMs.tracking.backends"
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("local", ("output_dir",)),
    Backend("wandb", ("project", "entity", "mode", "run_name"), f"{_SINKS}.wandb:WandbSink", "wandb", "wandb"),
    Backend("mlflow", ("tracking_uri", "experiment_name", "run_name"), f"{_SINKS}.mlflow:MlflowSink", "mlflow", "mlflow",
            preflight="insideLLMs.tracking.delivery._preflight:mlflow"),
    Backend("tensorboard", ("log_dir", "run_name"), f"{_SINKS}.tensorboard:TensorBoardSink", "tensorboardX",
            "tensorboard"),
)}


#: URI schemes MLflow can track to besides http(s): its file store and SQLAlchemy databases (``dialect+driver``)
_STORE_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")


def tracking_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be an MLflow tracking URI, or None. Checked with the config, before any model call."""
    import urllib.parse

    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    usable = "give http(s)://host:port, a database URI (sqlite:///mlflow.db, postgresql://...) or a local folder"
    if scheme in ("http", "https"):
        return None if parts.hostname else f"{uri!r} names no host; {usable}"
    if scheme.split("+")[0] in _STORE_SCHEMES:
        return None
    if len(scheme) > 1:  # a one-letter scheme is a Windows drive: a local path
        return f"{uri!r}: unsupported scheme '{parts.scheme}'; {usable}"
    if not uri.strip() or any(c.isspace() for c in uri):
        return f"{uri!r} is not a URI or a folder path; {usable}"
    return None


class TrackingConfig(Settings):
    """Where a run is tracked. ``backend`` is one name or a list (fan-out); the journal is always kept
    under ``output_dir``, whatever the backends."""

    enabled: bool = True
    backend: str | list[str] = "local"  # names in BACKENDS, or a custom sink "package.module:SinkClass"
    project: str | None = None  # wandb
    entity: str | None = None  # wandb
    mode: Literal["online", "offline"] | None = None  # wandb; default: WANDB_MODE or online
    tags: list[str] | dict[str, str] = msgspec.field(default_factory=list)
    run_name: str | None = None
    output_dir: str = "./tracking_logs"  # local backend, and the journal of every backend
    tracking_uri: str | None = None  # mlflow
    experiment_name: str | None = None  # mlflow
    log_dir: str = "./tb_logs"  # tensorboard
    flush_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0  # the longest the end of a run waits for remote backends

    def __post_init__(self) -> None:
        names = [self.backend] if isinstance(self.backend, str) else self.backend
        if not names:
            raise field_error("backend", "give at least one backend")
        for name in names:
            if name not in BACKENDS and ":" not in name:
                raise field_error("backend", f"unknown tracking backend {name!r}; choose from: {', '.join(BACKENDS)}")
        if self.tracking_uri is not None and (problem := tracking_uri_problem(self.tracking_uri)):
            raise field_error("tracking_uri", problem)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "TrackingConfig":
        """Validated from plain data (a YAML block, keyword arguments); raises ``SchemaError``."""
        return validate(options, cls)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return cls.__struct_fields__

    def as_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)

    def replace(self, **changes: Any) -> "TrackingConfig":
        """A copy with ``changes`` applied (validated like the original)."""
        return validate(self.as_dict() | changes, type(self))

    @property
    def backends(self) -> list[str]:
        """The backends as a de-duplicated list, in the order given."""
        names = [self.backend] if isinstance(self.backend, str) else self.backend
        return list(dict.fromkeys(names))

    @property
    def tag_dict(self) -> dict[str, str]:
        """Tags as a dict; a bare tag ``v1`` is ``{"v1": ""}``."""
        if isinstance(self.tags, dict):
            return {str(k): str(v) for k, v in self.tags.items()}
        return {str(t): "" for t in self.tags}


class ConfigError(UserError):
    """A user mistake in a config file; ``str()`` is the one line to print."""


class ModelConfig(Settings):
    type: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)


class DatasetConfig(Settings):
    format: Literal["jsonl", "csv", "inline", "hf"] = "jsonl"
    path: str | None = None  # jsonl, csv
    items: list[Any] | None = None  # inline
    name: str | None = None  # hf dataset name; display name for others
    split: str = "test"  # hf
    subset: str | None = None  # hf
    revision: str | None = None  # hf
    fields: dict[str, str] | None = None  # every format: example field -> the column (key) it is read from
    columns: dict[str, str] | None = None  # the older name of ``fields`` (csv, hf)
    id_field: str = "id"
    cluster: str | None = None  # a field shared by related examples (passage, conversation): clustered error bars
    limit: int | None = None  # hf

    def __post_init__(self) -> None:
        if self.fields is not None and self.columns is not None:
            raise field_error("columns", "give 'fields' (example field -> column), not both 'fields' and 'columns'")
        if self.fields is None:
            self.fields = self.columns
        if self.format in ("jsonl", "csv") and not self.path:
            raise field_error("format", f"format {self.format} needs 'path'")
        if self.format == "inline" and self.items is None:
            raise field_error("format", "format inline needs 'items'")
        if self.format == "hf" and not self.name:
            raise field_error("format", "format hf needs 'name' (the dataset id)")


class ProbeConfig(Settings):
    type: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    dataset: DatasetConfig | None = None  # default: the config's dataset, else the probe's bundled set


class GenerationConfig(Settings):
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    def as_params(self) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


class ExecutorConfig(Settings):
    """Where a run's examples run: ``local`` (this process) or ``ray`` (actors on a Ray cluster; docs/guides/ray.md).

    How a run is executed is never part of its run_id: the run directory is the same bytes either way.
    """

    type: Literal["local", "ray"] = "local"
    address: str = "auto"  # ray: auto (the cluster on this machine, or RAY_ADDRESS), HOST:PORT, or local
    workers: Annotated[int, msgspec.Meta(ge=1)] | None = None  # ray: actors (default: one per cluster CPU)

    def __post_init__(self) -> None:
        if self.type == "local" and (self.address != "auto" or self.workers is not None):
            raise field_error("type", "address and workers apply to the ray executor: set type: ray")


class RunnerConfig(Settings):
    concurrency: Annotated[int, msgspec.Meta(ge=1)] = 16  # requests in flight at once, in total over every worker
    max_retries: Annotated[int, msgspec.Meta(ge=0)] = 4
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    max_examples: Annotated[int, msgspec.Meta(ge=1)] | None = None
    cache_dir: str | None = None  # reuse answers to identical requests across runs (relative to the current dir)
    #: stop the run once what it spent (models and judges, at the price table's prices) reaches this many USD
    max_cost_usd: Annotated[float, msgspec.Meta(gt=0)] | None = None
    epochs: Annotated[int, msgspec.Meta(ge=1)] = 1  # ask each example this many times (one record per epoch)
    #: how summary figures reduce an example's epochs: one reducer, or metric (pass_rate, a score) -> reducer;
    #: names are checked (with the number of epochs) by ``stats.Reducer`` when the run is assembled
    reducer: str | dict[str, str] | None = None
    executor: ExecutorConfig = msgspec.field(default_factory=ExecutorConfig)


class PriceConfig(Settings):
    """One model's price in a config's ``pricing:`` block: USD per million input and output tokens."""

    input: Annotated[float, msgspec.Meta(ge=0)]
    output: Annotated[float, msgspec.Meta(ge=0)]


class Config(Settings):
    name: str | None = None
    model: ModelConfig | None = None
    probe: ProbeConfig | None = None
    models: list[ModelConfig] | None = None
    probes: list[ProbeConfig] | None = None
    dataset: DatasetConfig | None = None
    generation: GenerationConfig = msgspec.field(default_factory=GenerationConfig)
    runner: RunnerConfig = msgspec.field(default_factory=RunnerConfig)
    tracking: TrackingConfig | None = None
    run_dir: str | None = None
    judge: ModelConfig | None = None  # the model of every judge scorer that names none of its own
    pricing: dict[str, PriceConfig] | None = None  # model name -> price; overrides or adds to the shipped table

    def __post_init__(self) -> None:
        if self.model and self.models:
            raise ValueError("give either 'model' or 'models', not both")
        if self.probe and self.probes:
            raise ValueError("give either 'probe' or 'probes', not both")
        if not (self.model or self.models):
            raise ValueError("missing 'model' (or 'models' for a harness)")
        if not (self.probe or self.probes):
            raise ValueError("missing 'probe' (or 'probes' for a harness)")

    @property
    def model_list(self) -> list[ModelConfig]:
        return self.models or [self.model]  # type: ignore[list-item]

    @property
    def probe_list(self) -> list[ProbeConfig]:
        return self.probes or [self.probe]  # type: ignore[list-item]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with where it came from and a redacted, resolved view for the run dir."""

    config: Config
    path: Path
    resolved: dict[str, Any]  # as validated, ${ENV} values put back as references, secrets redacted

    @property
    def base_dir(self) -> Path:
        return self.path.parent


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _line_index(node: yaml.Node, path: tuple[Any, ...] = (), out: dict[tuple[Any, ...], int] | None = None) -> dict[tuple[Any, ...], int]:
    """Map every key path in the YAML document to its 1-based line number."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            out[child] = key_node.start_mark.line + 1
            _line_index(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)
    return out


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    path = tuple(loc)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _substitute_env(value: Any, where: str, env: dict[str, str]) -> tuple[Any, Any]:
    """Return (value with ${VAR} substituted, value for the resolved file with references kept)."""
    if isinstance(value, str):
        if not _ENV_REF.search(value):
            return value, value

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if env.get(name) or (name in env and default is None):
                return env[name]
            if default is not None:  # as in the shell, ``:-`` also covers a variable set to ""
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set (export it, or write ${{{name}:-default}})")

        return _ENV_REF.sub(sub, value), value
    if isinstance(value, dict):
        pairs = {k: _substitute_env(v, where, env) for k, v in value.items()}
        return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
    if isinstance(value, list):
        pairs_l = [_substitute_env(v, where, env) for v in value]
        return [p[0] for p in pairs_l], [p[1] for p in pairs_l]
    return value, value


def redact_config(value: Any) -> Any:
    """The config as it may be written to disk: secrets redacted, ``${ENV}`` references kept as written (but for
    a credential written as a default, ``${KEY:-sk-...}``: a literal in the file like any other)."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v not in (None, "") and not _is_env_ref(v) else redact_config(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: f"${{{m[1]}:-{redact(m[2])}}}" if m[2] else m[0], redact(value))
    return redact(value)


def _is_env_ref(value: Any) -> bool:
    return isinstance(value, str) and bool(_ENV_REF.fullmatch(value))


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its values, from one parse (as ``yaml.safe_load``)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def parse_config(text: str, path: Path, env: dict[str, str] | None = None) -> LoadedConfig:
    """Validate config text; raise ``ConfigError`` with ``file:line: what is wrong``."""
    env = dict(os.environ) if env is None else env
    try:
        node, raw = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    if raw is None:
        raise ConfigError(f"{path}:1: the config file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: expected a mapping of settings at the top level")
    lines = _line_index(node) if node is not None else {}
    substituted, with_refs = {}, {}
    for key, value in raw.items():
        substituted[key], with_refs[key] = _substitute_env(value, f"{path}:{_line_for(lines, (key,))}", env)
    try:
        strict = substituted == with_refs
        _check_pricing(substituted.get("pricing"), strict)
        config = validate(substituted, Config, strict=strict)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.loc) or "config"
        raise ConfigError(f"{path}:{_line_for(lines, exc.loc)}: {where}: {exc.message}") from None
    _paths_from_config_folder(config, substituted, path.parent)
    resolved = redact_config(with_refs)
    return LoadedConfig(config=config, path=path, resolved=resolved)


def _check_pricing(block: Any, strict: bool) -> None:
    """Each ``pricing:`` entry on its own, so an error names the model (msgspec's path drops mapping keys)."""
    if not isinstance(block, dict):
        return
    for name, entry in block.items():
        try:
            validate(entry, PriceConfig, strict=strict)
        except SchemaError as exc:
            raise SchemaError(("pricing", name, *exc.loc),
                              exc.message + " (a price is USD per million tokens: {input: 0.15, output: 0.6})") from None


def _paths_from_config_folder(config: Config, written: dict[str, Any], folder: Path) -> None:
    """Output paths written in the config, made relative to its folder (datasets resolve there when loaded)."""

    def place(value: str) -> str:
        return value if Path(value).is_absolute() else (folder / value).as_posix()

    if "run_dir" in written and config.run_dir:
        config.run_dir = place(config.run_dir)
    block = written.get("tracking")
    if config.tracking is not None and isinstance(block, dict):
        for name in ("output_dir", "log_dir"):
            if name in block:
                setattr(config.tracking, name, place(getattr(config.tracking, name)))


def load_config(path: str | Path) -> LoadedConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_config(text, path)


def line_of(loaded: LoadedConfig, *keys: Any) -> int:
    """The line of a key path in the loaded file (for errors found after validation)."""
    node = yaml.compose(loaded.path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    return _line_for(_line_index(node), keys) if node is not None else 1


__all__ = [
    "BACKENDS",
    "Backend",
    "Config",
    "ConfigError",
    "DatasetConfig",
    "ExecutorConfig",
    "GenerationConfig",
    "LoadedConfig",
    "ModelConfig",
    "PriceConfig",
    "ProbeConfig",
    "RunnerConfig",
    "SchemaError",
    "Settings",
    "TrackingConfig",
    "field_error",
    "line_of",
    "load_config",
    "parse_config",
    "redact_config",
    "validate",
]
