"""Jinja2 templates over an example's fields, sandboxed and strict.

The sandbox (``ImmutableSandboxedEnvironment``) keeps a config from reaching into Python; ``StrictUndefined``
makes a field the example lacks an error instead of an empty string. A template that is one expression
(``"{{ options }}"``) also gives its value as it is, so a list field can be a list of targets or choices.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Mapping

from insideLLMs.config import SchemaError
from insideLLMs.errors import InsideLLMsError

_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{|\{%|\{#).)*)\}\}\s*$", re.DOTALL)
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


class RenderError(InsideLLMsError):
    """A template that does not render for one example: ``field`` is the missing field, if that is why."""

    def __init__(self, message: str, field: str | None = None, what: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.what = what


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class Template:
    """One template of a probe's args (``loc``: its key, for errors); compiled once, rendered per example."""

    def __init__(self, source: str, loc: tuple[str | int, ...]) -> None:
        from jinja2 import TemplateSyntaxError

        if not isinstance(source, str):
            raise SchemaError(loc, f"expected a template (text), got {source!r}")
        self.source, self.loc = source, loc
        env = _environment()
        try:
            self._template = env.from_string(source)
            one = _ONE_EXPRESSION.match(source)
            self._expression = env.compile_expression(one["expr"], undefined_to_none=False) if one else None
        except TemplateSyntaxError as exc:
            line = f" (line {exc.lineno} of the template)" if source.count("\n") else ""
            raise SchemaError(loc, f"template does not parse: {exc.message}{line}") from None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its source and compiled again where it is loaded (a Ray worker): compiled Jinja code is not
        picklable."""
        return (Template, (self.source, self.loc))

    @property
    def what(self) -> str:
        return ".".join(str(p) for p in self.loc)

    def render(self, data: Mapping[str, Any]) -> str:
        """The template's text for one example; ``RenderError`` when it does not render."""
        try:
            return self._template.render(data)
        except Exception as exc:
            raise _render_error(self.what, exc) from None

    def values(self, data: Mapping[str, Any]) -> list[str]:
        """The template's value as a list of strings: a one-expression template giving a list gives each
        item, any other template its text."""
        if self._expression is None:
            return [self.render(data)]
        from jinja2 import Undefined

        try:
            value = self._expression(**data)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
        except Exception as exc:
            raise _render_error(self.what, exc) from None
        if isinstance(value, (list, tuple)):
            return ["" if v is None else str(v) for v in value]
        return ["" if value is None else str(value)]


def _render_error(what: str, exc: Exception) -> RenderError:
    from jinja2 import UndefinedError

    if isinstance(exc, UndefinedError) and (name := _UNDEFINED_NAME.match(str(exc.message))):
        return RenderError(f"field {name[1]!r} missing ({what} uses it)", field=name[1], what=what)
    return RenderError(f"{what} does not render: {type(exc).__name__}: {exc}")
