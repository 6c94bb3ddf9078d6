"""What a probe says it needs from every example (checked before a run sends anything)."""

from __future__ import annotations

from insideLLMs import Probe, Verdict
from insideLLMs.probes import get_probe


class _DefaultBuild(Probe):
    name = "default_build"

    def score(self, example, completion):  # noqa: ANN001, ANN201
        return Verdict()


class _OwnBuild(_DefaultBuild):
    name = "own_build"

    def build(self, example):  # noqa: ANN001, ANN201
        return [{"role": "user", "content": str(example.data["question"])}]


class _Declared(_OwnBuild):
    name = "declared"
    required_fields = ("question", "expected")


def test_required_fields_follow_what_build_reads() -> None:
    assert _DefaultBuild().missing_fields({"question": "q"}) == "field 'prompt'"
    assert _OwnBuild().missing_fields({}) is None  # its own build: nothing assumed
    assert _Declared().missing_fields({"question": "q"}) == "field 'expected'"
    assert _Declared().missing_fields({"question": "q", "expected": "e"}) is None


def test_built_in_probes_name_every_missing_field() -> None:
    assert get_probe("logic").missing_fields({"question": "q"}) == "fields 'prompt' and 'answer'"
    assert get_probe("factuality").missing_fields({"prompt": "p"}) == "field 'answer'"
    assert get_probe("code").missing_fields({"prompt": "p", "tests": []}) is None
    assert get_probe("bias").missing_fields({"template": "A {group}"}) == "fields 'prompt_a' and 'prompt_b' (or 'template' and 'groups')"
