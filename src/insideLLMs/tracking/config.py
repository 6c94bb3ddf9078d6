"""The ``tracking:`` block of a config file. Not part of the run_id: where a run is tracked never changes it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from insideLLMs.schema import Settings, field_error, validate

BackendName = Literal["local", "wandb", "mlflow", "tensorboard"]
KNOWN_BACKENDS = ("local", "wandb", "mlflow", "tensorboard")


class TrackingConfig(Settings):
    """Where a run is tracked. ``backend`` is one name or a list (fan-out); the journal is always kept
    under ``output_dir``, whatever the backends."""

    enabled: bool = True
    backend: str | list[str] = "local"  # local | wandb | mlflow | tensorboard | "package.module:SinkClass"
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
            if name not in KNOWN_BACKENDS and ":" not in name:
                raise field_error("backend", f"unknown tracking backend {name!r}; choose from: {', '.join(KNOWN_BACKENDS)}")

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
