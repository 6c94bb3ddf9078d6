"""How far a run's LLM judge agrees with human labels: calibrate a rubric before trusting it in CI.

Labels are JSON lines ``{"id": ..., "grade": "A"}`` (compared with the judge's grade) or
``{"id": ..., "passed": true}`` (compared with whether the judge passed the example). Examples the
judge could not grade (``judge_error``) are counted apart, never as a disagreement or an agreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from insideLLMs.jsonl import iter_objects
from insideLLMs.rundir._directory import RECORDS, RunDirError, RunReader
from insideLLMs.stats import cohen_kappa


class LabelsError(RunDirError):
    """A labels file that cannot be read or does not fit the run."""


@dataclass(frozen=True)
class Agreement:
    scorer: str
    by: str  # "grade" or "passed"
    labels: int  # lines in the labels file
    compared: int  # labelled examples the judge graded
    judge_errors: int  # labelled examples the judge could not grade
    unmatched: int  # labels whose example is not judged in the run
    accuracy: float | None
    kappa: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_labels(path: Path) -> tuple[str, dict[str, Any]]:
    labels: dict[str, Any] = {}
    by: str | None = None
    for lineno, row in iter_objects(path, LabelsError):
        where = f"{path}:{lineno}"
        if "id" not in row:
            raise LabelsError(f'{where}: a label needs "id" (the example id) and "grade" or "passed"')
        kind = "grade" if "grade" in row else "passed" if "passed" in row else None
        if kind is None:
            raise LabelsError(f'{where}: a label needs "grade" (the judge\'s scale) or "passed" (true/false)')
        if by is not None and kind != by:
            raise LabelsError(f'{where}: this label gives "{kind}" but the ones before give "{by}"; use one of them')
        by = kind
        value = row[kind]
        if kind == "passed" and not isinstance(value, bool):
            raise LabelsError(f'{where}: "passed" must be true or false, got {value!r}')
        if kind == "grade" and not isinstance(value, str):
            raise LabelsError(f'{where}: "grade" must be a grade name like "A", got {value!r}')
        key = str(row["id"])
        if key in labels:
            raise LabelsError(f"{where}: example {key!r} is labelled twice")
        labels[key] = value
    if by is None:
        raise LabelsError(f"{path}: holds no labels")
    return by, labels


def judge_agreement(
    run_dir: str | Path, labels_path: str | Path, *, scorer: str | None = None, model: str | None = None
) -> Agreement:
    """Accuracy and Cohen's kappa of the run's judge (``scorer``: its name, needed when the run has
    several) against human labels, over the examples both graded. ``model`` picks one graded model's
    records when the run holds several."""
    reader = RunReader(run_dir)
    labels_path = Path(labels_path)
    by, labels = _read_labels(labels_path)
    judged: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # example id -> (graded model, judge section)
    names: set[str] = set()
    for rec in reader.records():
        if model is not None and rec["model"]["id"] != model:
            continue
        section = rec.get("judge") or {}
        names.update(section)
        judged.setdefault(rec["example_id"], []).append((rec["model"]["id"], section))
    if not names:
        hint = f" for model {model!r}" if model is not None else ""
        raise LabelsError(f"{reader.run_dir / RECORDS}: no record{hint} has a judge verdict (is a judge scorer configured?)")
    if scorer is None:
        if len(names) > 1:
            raise LabelsError(f"{reader.run_dir}: several judge scorers ({', '.join(sorted(names))}); pass --scorer NAME")
        scorer = next(iter(names))
    elif scorer not in names:
        raise LabelsError(f"{reader.run_dir}: no judge scorer named {scorer!r} (there are: {', '.join(sorted(names))})")
    human: list[Any] = []
    machine: list[Any] = []
    errors = unmatched = 0
    for example_id, value in labels.items():
        found = [(graded, section[scorer]) for graded, section in judged.get(example_id, []) if scorer in section]
        if not found:
            unmatched += 1
            continue
        if len(found) > 1:
            models = ", ".join(graded for graded, _ in found)
            raise LabelsError(f"{reader.run_dir}: example {example_id!r} is judged for several models ({models}); "
                              "pass --model ID")
        verdict = found[0][1]
        if "grade" not in verdict:
            errors += 1
            continue
        human.append(value)
        machine.append(verdict["grade"] if by == "grade" else verdict["passed"])
    if not human and not errors:
        raise LabelsError(f"{labels_path}: no label matches an example judged in {reader.run_dir} "
                          "(labels are matched by example id)")
    accuracy = sum(h == m for h, m in zip(human, machine)) / len(human) if human else None
    return Agreement(scorer, by, len(labels), len(human), errors, unmatched, accuracy, cohen_kappa(human, machine))


__all__ = ["Agreement", "LabelsError", "judge_agreement"]
