"""Probes: ``get_probe(type, **args)`` builds one by name."""

from __future__ import annotations

from typing import Any

from insideLLMs.probes.base import Probe, Verdict
from insideLLMs.registry import Registry

PROBES = Registry(
    kind="probe",
    base=Probe,
    builtins={
        "logic": "insideLLMs.probes.logic:LogicProbe",
        "factuality": "insideLLMs.probes.factuality:FactualityProbe",
        "bias": "insideLLMs.probes.bias:BiasProbe",
        "instruction_following": "insideLLMs.probes.instruction_following:InstructionFollowingProbe",
        "jailbreak": "insideLLMs.probes.jailbreak:JailbreakProbe",
        "code": "insideLLMs.probes.code:CodeProbe",
        "prompt": "insideLLMs.probes.prompt:PromptProbe",
    },
    entry_point_group="insidellms.probes",
)


def get_probe(type: str, **args: Any) -> Probe:
    """Build a probe by type name (a built-in, a plugin entry point, or ``pkg.mod:Class``)."""
    return PROBES.resolve(type)(**args)


__all__ = ["PROBES", "Probe", "Verdict", "get_probe"]
