"""The public surface, pinned: what users import must not move or vanish when the code inside is reorganised.

A change here is a change to what users can import: add names freely, remove or rename only with a
deprecation path.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import insideLLMs
from insideLLMs.errors import InsideLLMsError

PUBLIC: dict[str, set[str]] = {
    "insideLLMs": {
        "Completion", "Example", "Harness", "Model", "Probe", "ProbeRunner", "PromptSet", "Record", "RunAborted",
        "RunReader", "RunSettings", "Verdict", "__version__", "get_model", "get_probe", "load_config",
    },
    "insideLLMs.errors": {
        "EXIT_EXAMPLE_ERRORS", "EXIT_GATE_FAILED", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "EXIT_USER_ERROR",
        "InsideLLMsError", "Terminated", "UserError",
    },
    "insideLLMs.datasets": {"DatasetError", "Example", "PromptSet"},
    "insideLLMs.models": {
        "AuthenticationFailed", "Completion", "ConnectionFailed", "MODELS", "Message", "Model", "ModelError",
        "ModelNotAvailable", "ModelTimeout", "Price", "PriceTable", "RateLimitError", "TransientError", "Usage",
        "get_model", "token_cost",
    },
    "insideLLMs.probes": {"PROBES", "Probe", "Verdict", "get_probe"},
    "insideLLMs.scorers": {
        "Answer", "NamedScorer", "SCORERS", "Score", "ScoreContext", "ScoreValue", "Scorer", "build_scorer",
        "build_scorers", "get_scorer",
    },
    "insideLLMs.run": {"BudgetError", "BudgetReached", "Executor", "FatalModelError", "Harness", "ProbeRunner", "RayExecutor",
                      "RayExecutorError", "RunAborted", "RunOutcome", "RunSettings", "Shard", "ShardError",
                      "build_harness", "merge_shards", "self_grading", "shard_key", "shard_of"},
    "insideLLMs.rundir": {
        "Agreement", "CONFIG", "INCOMPLETE", "LabelsError", "MANIFEST", "RECORDS", "RECORD_FIELDS", "REPORT", "RUN_FILES", "Record", "RunDirError",
        "RunReader", "RunWriter", "SUMMARY", "SummaryBuilder", "TIMINGS", "Timing", "atomic_path", "read_jsonl",
        "record_key", "summarize", "summary_settings", "write_atomic", "judge_agreement", "judge_votes", "record_cost",
    },
    "insideLLMs.report": {"ReportData", "rebuild_summary", "render_report", "write_report"},
    "insideLLMs.diff": {
        "CLASSES", "Change", "Coverage", "DiffInputError", "DiffResult", "GateResult", "GroupStats", "GroupVerdict",
        "McNemarResult", "PAIRED_CI_TEST", "PASS_RATE",
        "accept_candidate", "binomial_upper_tail", "diff_runs", "evaluate_gate", "mcnemar_drop", "render_diff_report",
        "render_json", "render_text", "run_records_path", "write_diff_report",
    },
    "insideLLMs.tracking": {
        "BACKENDS", "BackendUnavailable", "Event", "Pending", "REDACTED", "Sink", "SinkContext", "SinkError", "Tracker",
        "TrackingConfig", "TrackingRun", "get_tracker", "redact", "tracker_from_config",
    },
    "insideLLMs.secrets": {
        "REDACTED", "dumps_redacted", "is_secret_key", "may_hold_secret", "redact", "redact_jsonl_line", "redact_text",
        "redact_text_file_content",
    },
    "insideLLMs.canonical": {
        "RUN_ID_HEX_CHARS", "SCHEMA_VERSION", "compute_run_id", "dumps", "dumps_bytes", "dumps_pretty", "hash_obj",
        "loads", "sha256_hex",
    },
    "insideLLMs.registry": {"Registry", "UnknownTypeError"},
    "insideLLMs.config": {
        "BACKENDS", "Backend", "Config", "ConfigError", "DatasetConfig", "GenerationConfig", "LoadedConfig",
        "ExecutorConfig", "ModelConfig", "PriceConfig", "ProbeConfig", "RunnerConfig", "SchemaError", "Settings", "TrackingConfig",
        "field_error",
        "line_of", "load_config", "parse_config", "redact_config", "validate",
    },
    "insideLLMs.events": {"ExampleFinished", "RunFinished", "RunListener", "RunStarted", "RunStatus"},
    "insideLLMs.stats": {
        "CONFIDENCE", "ClusterSums", "DEFAULT_REDUCER", "Interval", "PairedDifference", "PairedSums", "REDUCERS",
        "Reducer", "cohen_kappa", "holm_adjust", "mean_interval",
        "mean_interval_from_sums", "minimum_detectable_effect", "paired_difference", "paired_difference_from_moments",
        "pass_at_k", "percentile", "probability_below", "proportion_interval", "sample_size_for",
        "within_variance",
    },
    "insideLLMs.jsonl": {"iter_lines", "iter_objects", "json_problem", "open_binary", "parse_object"},
    "insideLLMs.backoff": {"backoff_s"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_each_package_exports_exactly_its_pinned_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    missing = [name for name in mod.__all__ if getattr(mod, name, None) is None]
    assert missing == []


def test_what_the_guides_import_still_imports() -> None:
    from insideLLMs import Harness, ProbeRunner, PromptSet, get_model, get_probe  # noqa: F401
    from insideLLMs.models.base import Completion, Model  # noqa: F401  (custom model classes subclass these)
    from insideLLMs.probes.base import Probe, Verdict  # noqa: F401  (custom probe classes subclass these)
    from insideLLMs.tracking import Event, Sink, SinkContext, SinkError, get_tracker  # noqa: F401  (custom sinks)

    assert get_model("dummy").provider == "dummy"


def test_plugin_entry_point_groups() -> None:
    from insideLLMs.models import MODELS
    from insideLLMs.probes import PROBES

    assert (MODELS.entry_point_group, PROBES.entry_point_group) == ("insidellms.models", "insidellms.probes")


def _all_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(insideLLMs.__path__, "insideLLMs."))


def test_every_error_class_derives_from_the_one_base() -> None:
    """One family: a caller (and the CLI) catches ``InsideLLMsError`` and has them all."""
    outside = []
    bridges = {
        "insideLLMs.cli._errors.ErrorExit",  # how the CLI hands our errors to click: a click exception
        "insideLLMs.errors.Terminated",  # SIGTERM as a KeyboardInterrupt: a way to stop, not an error
    }
    for name in _all_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name
                    and not attr.startswith("_") and not issubclass(value, InsideLLMsError)
                    and f"{name}.{attr}" not in bridges):
                outside.append(f"{name}.{attr}")
    assert outside == []
