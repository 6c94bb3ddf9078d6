"""The ``tracking:`` block of a config file. Not part of the run_id: where a run is tracked never changes it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

BackendName = Literal["local", "wandb", "mlflow", "tensorboard"]
KNOWN_BACKENDS = ("local", "wandb", "mlflow", "tensorboard")


class TrackingConfig(BaseModel):
    """Where a run is tracked. ``backend`` is one name or a list (fan-out); the journal is always kept
    under ``output_dir``, whatever the backends."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    backend: str | list[str] = "local"  # local | wandb | mlflow | tensorboard | "package.module:SinkClass"
    project: str | None = None  # wandb
    entity: str | None = None  # wandb
    mode: Literal["online", "offline"] | None = None  # wandb; default: WANDB_MODE or online
    tags: list[str] | dict[str, str] = Field(default_factory=list)
    run_name: str | None = None
    output_dir: str = "./tracking_logs"  # local backend, and the journal of every backend
    tracking_uri: str | None = None  # mlflow
    experiment_name: str | None = None  # mlflow
    log_dir: str = "./tb_logs"  # tensorboard
    flush_timeout_s: float = Field(default=5.0, ge=0)  # the longest the end of a run waits for remote backends

    @field_validator("backend")
    @classmethod
    def _known_backends(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names:
            raise ValueError("give at least one backend")
        for name in names:
            if name not in KNOWN_BACKENDS and ":" not in name:
                raise ValueError(
                    f"unknown tracking backend {name!r}; choose from: {', '.join(KNOWN_BACKENDS)}"
                )
        return value

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
