"""Command-line values that are already what their parameter says, kept as they are.

Typer turns every parameter value into its annotated type through a pydantic
TypeAdapter, even a default of None or a plain string for a ``str``
parameter; the first one imports pydantic, 80 ms of a command's start-up,
more than the rest of `odpctl dp show` together.  `plain_values_first`
gives each parameter a coercion that keeps such values and hands anything
else (a number to parse, a choice to check, a path) to typer's own, which
then reports bad input exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, get_args, get_origin

from typer import _click as click
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import TyperOption, _TyperParameter

_NOT_PLAIN = object()


def _plain(annotation: Any, value: Any) -> Any:
    """``value`` as typer would make it, or _NOT_PLAIN when that takes typer."""
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        if issubclass(annotation, Enum) and isinstance(value, str):
            try:
                return annotation(value)  # exactly a member's value: what typer returns too
            except ValueError:
                return _NOT_PLAIN
    if (
        get_origin(annotation) is list
        and get_args(annotation) == (str,)
        and isinstance(value, list | tuple)
        and all(isinstance(v, str) for v in value)
    ):
        return list(value)
    return _NOT_PLAIN


@dataclass(frozen=True)
class _PlainFirst(RuntimeParam):
    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: click.Context) -> Any:
        plain = _plain(self.annotation, value)
        if plain is not _NOT_PLAIN:
            return plain
        # From now on this parameter coerces as typer does, pydantic and all.
        param._runtime_param = build_runtime_param(param.type_descriptor)
        return param._runtime_param.coerce(value, param=param, ctx=ctx)


def plain_values_first(cmd: click.Command) -> None:
    """Give ``cmd``'s parameters, and those of the commands below it, `_PlainFirst`."""
    for param in cmd.params:
        _plain_first(param)
    # The -h option is made per run (its names come from the context), unset.
    make_help_option = cmd.get_help_option

    def get_help_option(ctx: click.Context) -> TyperOption | None:
        option = make_help_option(ctx)
        if option is not None:
            _plain_first(option)
        return option

    vars(cmd)["get_help_option"] = get_help_option
    for sub in getattr(cmd, "commands", {}).values():
        plain_values_first(sub)


def _plain_first(param: click.Parameter) -> None:
    if not isinstance(param, _TyperParameter):
        return
    desc = param.type_descriptor
    # A file to open or a parser of its own: a string is not yet the value.
    if desc.file_annotation is None and desc.parameter_info.parser is None:
        param._runtime_param = _PlainFirst(desc.parameter_info, desc.annotation)
