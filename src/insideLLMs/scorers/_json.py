"""The answer is JSON, and (with ``schema``) valid against a JSON Schema, checked by ``jsonschema``.

The answer may be fenced as models often write it (a ```json block); anything else around the JSON
makes it invalid. ``json.parsed`` says whether it parsed at all, apart from whether it fits the schema.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from insideLLMs.config import SchemaError
from insideLLMs.scorers.base import Answer, Score, Scorer

_FENCED = re.compile(r"^\s*```[\w-]*[^\S\n]*\n(.*?)\n?```\s*$", re.DOTALL)


def parse_json(text: str) -> tuple[bool, Any]:
    """(parsed, value) of an answer that should be JSON, fenced or not."""
    fenced = _FENCED.match(text)
    try:
        return True, json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return False, None


class JsonScorer(Scorer):
    """Valid JSON; with ``schema``, also valid against that JSON Schema (its ``$schema`` draft, else 2020-12)."""

    name: ClassVar[str] = "json"
    needs_target: ClassVar[bool] = False

    def __init__(self, schema: dict[str, Any] | bool | None = None) -> None:
        self._validator = None
        if schema is not None:
            if not isinstance(schema, (dict, bool)):
                raise SchemaError(("schema",), f"expected a JSON Schema (a mapping), got {schema!r}")
            import jsonschema  # only when a schema is used: it is not light to import

            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                where = "/".join(str(p) for p in exc.path) or "the top level"
                raise SchemaError(("schema",), f"not a valid JSON Schema: {exc.message} (at {where})") from None
            self._validator = cls(schema)
        super().__init__(**({"schema": schema} if schema is not None else {}))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its schema and checked again where it is loaded (a Ray worker): a jsonschema validator is
        not picklable."""
        return (type(self), (self.params.get("schema"),))

    def score(self, answer: Answer) -> Score:
        parsed, value = parse_json(answer.text)
        valid = parsed and (self._validator is None or self._validator.is_valid(value))
        return Score(valid, valid, {"parsed": parsed})
