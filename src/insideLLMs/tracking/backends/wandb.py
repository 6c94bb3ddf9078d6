"""The Weights & Biases sink: journal events -> one W&B run (``wandb.init`` returns a Run; no module-level
``wandb.log``, no global active run).

The run id is derived from the local run key and kept in the sink state, so a later ``tracking
sync`` resumes the same run (``resume="allow"``). W&B needs increasing steps: the last step
delivered (and the keys logged at it) are kept in the state and anything at or before it is
skipped, which also makes redelivery harmless. Unstepped metrics are run-level values: they go in
the run summary; an evaluation's per-example series (``example/…``, a panel section of their own in
the workspace) are kept out of it, so the summary holds the run's results, not one example's. Artifacts become one ``run-files`` artifact at run end; the per-example table a
``wandb.Table``. Works offline (``mode: offline`` or ``WANDB_MODE=offline``) with no account.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

from insideLLMs.jsonl import iter_objects
from insideLLMs.tracking.sink import EXAMPLE_SERIES_PREFIX, Event, Sink, SinkContext, SinkError

_ARTIFACT_NAME = re.compile(r"[^\w.\-]+")
MAX_TAG_LENGTH = 64  # W&B's limit per tag


def run_id_for(run_key: str) -> str:
    """A stable W&B run id for a local run key (so every delivery of that run resumes one W&B run)."""
    return hashlib.sha256(run_key.encode("utf-8")).hexdigest()[:16]


def tag_list(tags: dict[str, Any]) -> list[str]:
    """``{"v1": "", "env": "ci"}`` -> ``["v1", "env:ci"]`` (W&B tags are plain strings)."""
    return [(k if v in ("", None) else f"{k}:{v}")[:MAX_TAG_LENGTH] for k, v in tags.items()]


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value)


class WandbSink(Sink):
    """Options: ``project`` (default ``insidellms``), ``entity``, ``mode`` (online/offline/disabled;
    default ``WANDB_MODE`` or online), ``run_name``, ``dir`` (default ``WANDB_DIR`` or the local run folder)."""

    name = "wandb"

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        _keep_out_of_home(ctx.run_dir)
        try:
            import wandb  # noqa: F401  (slow: imported on the delivery thread, not by the evaluation)
        except ImportError:
            raise SinkError("the wandb backend needs wandb: pip install 'insidellms[wandb]'", retryable=False) from None
        self._run: Any = None

    # -- the W&B run -------------------------------------------------------------------------

    def _open(self, start: dict[str, Any] | None) -> Any:
        if self._run is not None:
            return self._run
        import wandb

        state, options = self.ctx.state, self.ctx.options
        start = start or {}
        run_key = str(start.get("run_key") or state.get("run_key") or self.ctx.run_dir.name)
        state.setdefault("run_key", run_key)
        state.setdefault("run_id", run_id_for(run_key))
        mode = options.get("mode") or os.environ.get("WANDB_MODE") or "online"
        folder = options.get("dir") or os.environ.get("WANDB_DIR") or str(self.ctx.run_dir)
        _avoid_same_second(Path(folder), state["run_id"])
        settings = wandb.Settings(
            mode=mode, console="off", silent=True, quiet=True, show_info=False, show_warnings=False,
            x_disable_stats=True, disable_git=True, save_code=False, x_save_requirements=False,
            disable_job_creation=True, reinit="create_new", init_timeout=float(options.get("init_timeout_s") or 60),
        )
        try:
            self._run = wandb.init(
                project=options.get("project") or start.get("project") or "insidellms",
                entity=options.get("entity") or None,
                name=options.get("run_name") or start.get("name") or run_key,
                id=state["run_id"],
                resume="allow",
                dir=folder,
                tags=tag_list(start.get("tags") or {}) or None,
                settings=settings,
            )
            self._run.define_metric(f"{EXAMPLE_SERIES_PREFIX}*", summary="none")
        except Exception as exc:
            raise _sink_error(exc) from exc
        if mode == "online":
            state["url"] = getattr(self._run, "url", None)
        return self._run

    # -- delivery ----------------------------------------------------------------------------

    def deliver(self, events: Sequence[Event]) -> None:
        events = self.undelivered(events)
        if not events:
            return
        try:
            self._deliver(events)
        except SinkError:
            raise
        except Exception as exc:
            raise _sink_error(exc) from exc

    def _deliver(self, events: list[Event]) -> None:
        import wandb

        state = self.ctx.state
        start = next((e.data for e in events if e.kind == "run_start"), None)
        run = self._open(start)
        for event in events:
            data = event.data
            if event.kind == "metrics":
                self._metrics(run, data.get("metrics") or {}, data.get("step"))
            elif event.kind == "params":
                run.config.update(dict(data.get("params") or {}), allow_val_change=True)
            elif event.kind == "tags":
                new = tag_list(data.get("tags") or {})
                run.tags = tuple(dict.fromkeys([*(run.tags or ()), *new]))
            elif event.kind == "artifact":
                state.setdefault("artifacts", {})[str(data.get("path"))] = str(data.get("name"))
            elif event.kind == "table":
                self._table(run, wandb, data)
            elif event.kind == "run_end":
                self._end(run, wandb, str(data.get("status")))
            state["seq"] = event.seq

    def _metrics(self, run: Any, metrics: dict[str, Any], step: int | None) -> None:
        state = self.ctx.state
        values = {k: float(v) for k, v in metrics.items() if v is not None and not isinstance(v, str)}
        if step is None:
            run.summary.update(values)  # a final value: idempotent by nature
            return
        last = state.get("last_step")
        if last is not None and step < last:
            return
        if last is not None and step == last:
            logged = set(state.get("last_keys") or ())
            values = {k: v for k, v in values.items() if k not in logged}
            if not values:
                return
        else:
            state["last_keys"] = []
        run.log(values, step=int(step))
        state["last_step"] = int(step)
        state["last_keys"] = sorted(set(state["last_keys"]) | set(values))

    def _table(self, run: Any, wandb: Any, data: dict[str, Any]) -> None:
        path = self.ctx.run_dir / str(data.get("path", ""))
        if not path.is_file():
            return
        rows = [row for _, row in iter_objects(path, ValueError)]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        table = wandb.Table(columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in rows],
                            allow_mixed_types=True)
        last = self.ctx.state.get("last_step")
        step = 0 if last is None else int(last) + 1
        run.log({str(data.get("name") or "records"): table}, step=step)
        self.ctx.state["last_step"] = step
        self.ctx.state["last_keys"] = [str(data.get("name") or "records")]

    def _end(self, run: Any, wandb: Any, status: str) -> None:
        state = self.ctx.state
        files = state.get("artifacts") or {}
        if files:
            artifact = wandb.Artifact(_ARTIFACT_NAME.sub("-", f"run-files-{state['run_id']}"), type="run-files")
            for rel in sorted(files):
                local = self.ctx.run_dir / rel
                if local.is_file():
                    parts = Path(rel).parts
                    artifact.add_file(str(local), name="/".join(parts[1:] if parts[0] == "artifacts" else parts))
            run.log_artifact(artifact)
        run.finish(exit_code=0 if status == "finished" else 1)
        self._run = None
        state["status"] = status

    def close(self) -> None:
        """Release the run; it is resumed (same id) if more events arrive later."""
        if self._run is not None:
            run, self._run = self._run, None
            run.finish()


def _keep_out_of_home(run_dir: Path) -> None:
    """W&B keeps settings, a cache and staged artifact files under ~/.config, ~/.cache and ~/.local:
    unless the user chose those folders, put them under the run folder's ``sinks/wandb/``."""
    base = run_dir / "sinks" / "wandb"
    for name, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"),
                      ("WANDB_ARTIFACT_DIR", "artifacts")):
        if not os.environ.get(name):
            os.environ[name] = str(base / sub)


def _avoid_same_second(folder: Path, run_id: str) -> None:
    """W&B names a session folder ``[offline-]run-<local time to the second>-<id>`` and a second session
    of the same run in the same second would write into the first one's folder: wait for the next second."""
    for _ in range(3):
        now = time.time()
        stamp = datetime.datetime.fromtimestamp(now).strftime("%Y%m%d_%H%M%S")
        if not any((folder / d / f"{mode}-{stamp}-{run_id}").exists()
                   for d in ("wandb", ".wandb") for mode in ("run", "offline-run")):
            return
        time.sleep(1.0 - now % 1.0 + 0.01)


def _sink_error(exc: BaseException) -> SinkError:
    import wandb

    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    errors = getattr(wandb, "errors", None)
    fatal = tuple(t for t in (getattr(errors, "UsageError", None), getattr(errors, "AuthenticationError", None),
                              getattr(errors, "AuthorizationError", None)) if isinstance(t, type))
    if fatal and isinstance(exc, fatal):
        return SinkError(f"wandb: {text} (log in with `wandb login` or WANDB_API_KEY, or set mode: offline)",
                         retryable=False)
    return SinkError(f"wandb: {text}", retryable=True)
