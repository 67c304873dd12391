"""The command tree as plain data, for the man page and completion generators.

Both generators read the app through this module only, so that a command
or option added to the app shows up in both, and the staleness tests notice
when the checked-in files were not regenerated.

What a positional argument completes to comes from its metavar words:
DP datapath names, PORT port names, IFACE network devices, FLOW flow key
fields, FILE files; ``[X]`` is optional and ``X...`` repeats.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from typer import _click as click
from typer.core import TyperGroup

# Metavar word -> what to complete.
ARG_KINDS = {"DP": "dp", "PORT": "port", "IFACE": "iface", "FLOW": "flow", "FILE": "file"}
# Option metavar -> what its value completes to.
OPTION_KINDS = {"NETNS": "netns", "FILE": "file", "PATH": "file", "MATCH": "flow"}


@dataclass
class OptionSpec:
    names: list[str]  # e.g. ["--statistics", "-s"], long first
    negations: list[str]  # e.g. ["--no-names"]
    takes_value: bool
    metavar: str  # "" for a flag
    choices: list[str]
    kind: str  # what the value completes to: netns, file, flow, choice, "" (anything)
    help: str
    default: str  # as help shows it, "" for none


@dataclass
class ArgSpec:
    metavar: str  # as the usage line shows it: "[DP] FLOW ACTIONS"
    help: str
    choices: list[str]
    words: list[tuple[str, bool, bool]]  # per metavar word: (kind, optional, repeats)


@dataclass
class CommandSpec:
    path: tuple[str, ...]  # () for odpctl itself, ("flow", "dump")
    help: str  # the whole help text, paragraphs separated by blank lines
    short_help: str
    usage: str  # the usage line after "Usage: "
    options: list[OptionSpec] = field(default_factory=list)
    args: list[ArgSpec] = field(default_factory=list)
    subcommands: list[CommandSpec] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(("odpctl", *self.path))

    def walk(self) -> list[CommandSpec]:
        """This command and every command under it, depth first."""
        out = [self]
        for sub in self.subcommands:
            out += sub.walk()
        return out

    def positional_kinds(self) -> list[list[str]]:
        """What the i-th positional word may be, for every position the
        arguments can reach; the last entry repeats if an argument does."""
        words = [w for arg in self.args for w in arg.words]
        variants = [words, [w for w in words if not w[1]]]
        depth = max(len(v) for v in variants)
        kinds: list[list[str]] = []
        for i in range(depth):
            here: list[str] = []
            for v in variants:
                if i < len(v) and v[i][0] not in here:
                    here.append(v[i][0])
            kinds.append(here)
        return kinds

    @property
    def repeats(self) -> bool:
        return any(w[2] for arg in self.args for w in arg.words)


def _text(value: Any) -> str:
    return inspect.cleandoc(value) if isinstance(value, str) else ""


def _first_sentence(text: str) -> str:
    """The summary line of a help text: up to its first full stop."""
    para = " ".join(text.split("\n\n")[0].split())
    head, dot, _ = para.partition(". ")
    return head + "." if dot else para


def _choices(param: click.Parameter) -> list[str]:
    desc = getattr(param, "type_descriptor", None)
    if desc is None or not desc.is_choice:
        return []
    return [c.value if isinstance(c, Enum) else str(c) for c in desc.choices or ()]


def _default(param: click.Parameter, _ctx: click.Context) -> str:
    if getattr(param, "is_flag", False) or not getattr(param, "show_default", True):
        return ""
    default = param.default
    if default is None or default == () or callable(default):
        return ""
    return default.value if isinstance(default, Enum) else str(default)


def _option(param: click.Parameter, ctx: click.Context) -> OptionSpec:
    names = sorted(param.opts, key=lambda n: (not n.startswith("--"), n))
    is_flag = bool(getattr(param, "is_flag", False))
    choices = _choices(param)
    metavar = param.metavar or ""
    if not is_flag and not metavar:
        metavar = "|".join(choices) if choices else param.name.upper() if param.name else "VALUE"
    kind = "choice" if choices else OPTION_KINDS.get(metavar, "")
    if getattr(getattr(param, "type_descriptor", None), "is_path", False) and not kind:
        kind = "file"
    return OptionSpec(
        names=names,
        negations=list(getattr(param, "secondary_opts", [])),
        takes_value=not is_flag,
        metavar="" if is_flag else metavar,
        choices=choices,
        kind=kind,
        help=_text(getattr(param, "help", "")),
        default=_default(param, ctx),
    )


def _argument(param: click.Parameter) -> ArgSpec:
    choices = _choices(param)
    metavar = param.metavar or (param.name or "ARG").upper()
    words = []
    for word in metavar.split():
        optional = word.startswith("[")
        repeats = word.endswith("...")
        bare = word.strip("[].")
        kind = "choice" if choices else ARG_KINDS.get(bare, "")
        words.append((kind, optional, repeats))
    return ArgSpec(metavar, _text(getattr(param, "help", "")), choices, words)


def build(
    cmd: click.Command, path: tuple[str, ...] = (), parent: click.Context | None = None
) -> CommandSpec:
    """The spec of ``cmd`` (from `odpctl.cli.command`) and all below it."""
    # A context like the one a run makes: settings such as -h come from the root.
    ctx = click.Context(
        cmd, info_name=path[-1] if path else "odpctl", parent=parent, **cmd.context_settings
    )
    pieces = cmd.collect_usage_pieces(ctx)
    spec = CommandSpec(
        path=path,
        help=_text(cmd.help),
        short_help=_first_sentence(_text(cmd.help)),
        usage=" ".join((ctx.command_path, *pieces)),
    )
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            spec.args.append(_argument(param))
        else:
            spec.options.append(_option(param, ctx))
    if isinstance(cmd, TyperGroup):
        # Through the group's interface: the top level loads its groups lazily.
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                spec.subcommands.append(build(sub, (*path, name), ctx))
    return spec
