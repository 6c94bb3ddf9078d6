"""The TensorBoard sink: journal events -> event files under ``log_dir/<run>/`` (tensorboardX, no torch).

Scalars carry their steps and wall times (an evaluation's per-example series, ``example/…``, form a
section of their own in the Scalars tab); at run end the params and the run-level metrics (those
logged without a step) are written as hparams (so runs compare in the HParams tab), plus text summaries: a params table and the first
failing examples of the per-example table. Event files cannot be un-written, so the sink keeps the
highest sequence number it wrote in its state and appends only later events.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

from insideLLMs.jsonl import iter_objects
from insideLLMs.tracking.sink import Event, Sink, SinkContext, SinkError

DEFAULT_LOG_DIR = "./tb_logs"
MAX_FAILING_EXAMPLES = 20
MAX_TEXT_CELL = 400
MAX_HPARAM_LENGTH = 250
_UNSAFE = re.compile(r"[^\w.\-]+")


def _cell(value: Any, limit: int = MAX_TEXT_CELL) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[tuple[str, Any]], header: tuple[str, str] = ("name", "value")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines)


def is_failing(row: dict[str, Any]) -> bool:
    return row.get("passed") is False or row.get("status") not in (None, "success")


def failing_examples_text(rows: list[dict[str, Any]], limit: int) -> str:
    """Input, output and expected answer of the first ``limit`` failing rows, as markdown."""
    failing = [r for r in rows if is_failing(r)]
    if not failing:
        return f"No failing examples among {len(rows):,}."
    parts = [f"**{len(failing):,} of {len(rows):,} examples failed**" +
             (f" (first {limit} shown)" if len(failing) > limit else "")]
    for row in failing[:limit]:
        title = " / ".join(str(row[k]) for k in ("model", "model.id", "probe", "probe.id", "example_id") if row.get(k))
        fields = [(k, v) for k, v in row.items()
                  if k.startswith(("input", "output", "expected", "error")) or k in ("status", "passed")
                  or "expected" in k or k.endswith(("answer", "target", "reference"))]
        parts.append(f"### {title or 'example'}\n\n" + markdown_table(fields, ("field", "value")))
    return "\n\n".join(parts)


class TensorBoardSink(Sink):
    """Options: ``log_dir`` (``./tb_logs``), ``run_name``, ``max_failing_examples`` (20)."""

    name = "tensorboard"

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise SinkError("the tensorboard backend needs tensorboardX: pip install 'insidellms[tensorboard]'",
                            retryable=False) from None
        self.log_dir = Path(ctx.options.get("log_dir") or DEFAULT_LOG_DIR).expanduser().resolve()
        self.max_failing = int(ctx.options.get("max_failing_examples") or MAX_FAILING_EXAMPLES)
        self._writer: Any = None

    def _run_folder(self, data: dict[str, Any] | None) -> Path:
        state = self.ctx.state
        if not state.get("folder"):
            key = str((data or {}).get("run_key") or self.ctx.run_dir.name)
            name = str(self.ctx.options.get("run_name") or (data or {}).get("name") or key)
            folder = key if name == key else f"{_UNSAFE.sub('_', name).strip('_')[:80]}-{key}"
            state["folder"] = folder
        return self.log_dir / state["folder"]

    def _open(self, first_seq: int, data: dict[str, Any] | None = None) -> Any:
        if self._writer is None:
            from tensorboardX import SummaryWriter

            folder = self._run_folder(data)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"tensorboard: cannot write {folder}: {exc}", retryable=False) from None
            # tensorboardX names files by the second and truncates an existing one: two sessions in
            # the same second (a retry, a quick sync) need distinct, ordered names
            suffix = f".s{first_seq:010d}.{os.getpid()}"
            self._writer = SummaryWriter(logdir=str(folder), flush_secs=3600, max_queue=100_000,
                                         filename_suffix=suffix)
        return self._writer

    def deliver(self, events: Sequence[Event]) -> None:
        new = self.undelivered(events)  # never write a point twice
        try:
            if new:
                self._deliver(new)
        except OSError as exc:  # a full or vanished log_dir: worth another try later
            raise SinkError(f"tensorboard: {exc}", retryable=True) from exc

    def _deliver(self, events: list[Event]) -> None:
        state = self.ctx.state
        start = next((e.data for e in events if e.kind == "run_start"), None)
        writer = self._open(events[0].seq, start)
        counters: dict[str, int] = state.setdefault("counters", {})
        params: dict[str, Any] = state.setdefault("params", {})
        tags: dict[str, str] = state.setdefault("tags", {})
        last: dict[str, float] = state.setdefault("last", {})  # each metric's latest value
        run_level: dict[str, float] = state.setdefault("run_level", {})  # those logged without a step
        for event in events:
            data = event.data
            if event.kind == "metrics":
                step = data.get("step")
                for key, value in (data.get("metrics") or {}).items():
                    if value is None or isinstance(value, str):
                        continue
                    at = counters.get(key, 0) if step is None else int(step)  # unstepped: after the last step
                    counters[key] = max(counters.get(key, 0), at + 1)
                    writer.add_scalar(key, float(value), global_step=at, walltime=event.ts)
                    last[key] = float(value)
                    if step is None:
                        run_level[key] = float(value)
                    else:
                        run_level.pop(key, None)
            elif event.kind == "params":
                for key, value in (data.get("params") or {}).items():
                    params[key] = value if not isinstance(value, str) else value[:1000]
            elif event.kind in ("run_start", "tags"):
                tags.update(data.get("tags") or {})
            elif event.kind == "table":
                self._failing_examples(writer, data, event.ts)
            elif event.kind == "run_end":
                self._end(writer, str(data.get("status")), event.ts)
            state["seq"] = event.seq
        writer.flush()

    def _failing_examples(self, writer: Any, data: dict[str, Any], ts: float) -> None:
        path = self.ctx.run_dir / str(data.get("path", ""))
        if not path.is_file():
            return
        rows = [row for _, row in iter_objects(path, ValueError)]
        name = str(data.get("name") or "records")
        writer.add_text(f"{name}/failing_examples", failing_examples_text(rows, self.max_failing),
                        global_step=0, walltime=ts)

    def _end(self, writer: Any, status: str, ts: float) -> None:
        from tensorboardX.proto.api_pb2 import Status
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.summary import hparams

        state = self.ctx.state
        params, tags = state["params"], state["tags"]
        metrics = state.get("run_level") or state["last"]  # a run of series only: their latest values
        rows = [(k, params[k]) for k in sorted(params)] + [(f"tag: {k}", v) for k, v in sorted(tags.items())]
        writer.add_text("params", markdown_table(rows), global_step=0, walltime=ts)
        hp = {k: (v if isinstance(v, (int, float, bool)) else str(v)[:MAX_HPARAM_LENGTH])
              for k, v in params.items() if v is not None}
        exp, ssi, _ = hparams(hp, dict(metrics))
        sei_status = {"finished": "STATUS_SUCCESS", "failed": "STATUS_FAILURE", "interrupted": "STATUS_ABORTED",
                      "killed": "STATUS_ABORTED"}
        content = HParamsPluginData(
            session_end_info=SessionEndInfo(status=Status.Value(sei_status.get(status, "STATUS_UNKNOWN")),
                                            end_time_secs=ts),
            version=0,
        )
        sei = Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content.SerializeToString())))])
        for summary in (exp, ssi, sei):
            writer.file_writer.add_summary(summary, walltime=ts)
        state["status"] = status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
