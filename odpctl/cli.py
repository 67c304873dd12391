"""The ``odpctl`` command: global options, the command groups, error reporting.

Every expected failure is an `OdpError` or a usage error; it is reported here
as one line on stderr (a caret line under malformed flow text) and a
documented exit code (`odpctl.errors`), never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from typer import _click as click
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

from odpctl import __version__
from odpctl.commands import names
from odpctl.commands.coercion import plain_values_first
from odpctl.commands.session import RUNNER, Session
from odpctl.errors import EXIT_FAILURE, EXIT_USAGE, OdpError, ParseError

PROG = "odpctl"


@dataclass(frozen=True)
class _Lazy:
    """A command whose module is imported only when it is run or documented."""

    module: str
    attr: str  # a typer.Typer (a command group) or a function (one command)
    hidden: bool = False


# In the order `odpctl --help` lists them.  Importing every group for every
# run was most of a command's start-up (the ODP codec, rich, the overlay lab).
_COMMANDS = {
    "shell": _Lazy("odpctl.commands.shell", "shell"),
    "demo": _Lazy("odpctl.commands.demo", "demo"),
    "doctor": _Lazy("odpctl.commands.doctor", "doctor"),
    names.COMMAND: _Lazy("odpctl.commands.names", "names", hidden=True),
    "dp": _Lazy("odpctl.commands.dp", "app"),
    "vport": _Lazy("odpctl.commands.vport", "app"),
    "flow": _Lazy("odpctl.commands.flow", "app"),
    "watch": _Lazy("odpctl.commands.watch", "app"),
    "router": _Lazy("odpctl.commands.router", "app"),
    "peer": _Lazy("odpctl.commands.peer", "app"),
    "ipam": _Lazy("odpctl.commands.ipam", "app"),
    "dns": _Lazy("odpctl.commands.dns", "app"),
    "docker-plugin": _Lazy("odpctl.commands.docker", "docker_plugin"),
}


class _LazyGroup(TyperGroup):
    """The top-level group: each subcommand built from its module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*_COMMANDS, *super().list_commands(ctx)]))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in _COMMANDS and args[0] not in self.commands:
            # A typo: typer suggests the nearest of the commands it holds, so hold them all.
            for name in _COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            self.add_command(_load(cmd_name, _COMMANDS[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)


def _load(name: str, lazy: _Lazy) -> click.Command:
    target = getattr(importlib.import_module(lazy.module), lazy.attr)
    # Built as app.add_typer / app.command would build them, with the root's settings.
    cmd: click.Command
    if isinstance(target, typer.Typer):
        cmd = typer.main.get_group_from_info(
            TyperInfo(target, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=app.suggest_commands,
            rich_markup_mode=app.rich_markup_mode,
        )
    else:
        cmd = typer.main.get_command_from_info(
            CommandInfo(name=name, callback=target, hidden=lazy.hidden),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
    _plain_argument_names(cmd)
    plain_values_first(cmd)
    return cmd


app = typer.Typer(
    cls=_LazyGroup,
    name=PROG,
    help="Inspect and drive the Open vSwitch datapath (kernel or userspace): datapaths, "
    "ports and flows, as ovs-dpctl does, for people and for scripts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    netns: Annotated[
        str | None,
        typer.Option(
            "--netns",
            "-n",
            metavar="NETNS",
            show_default=False,
            help="Run inside this network namespace (as `ip netns` names it).",
        ),
    ] = None,
    datapath: Annotated[
        str | None,
        typer.Option(
            "--datapath",
            metavar="WHERE",
            envvar="ODPCTL_DATAPATH",
            show_default=False,
            help="Which datapath to talk to: auto (default: the kernel's if the module is "
            "there, else the userspace one), kernel, userspace or unix:PATH.",
        ),
    ] = None,
    version: Annotated[  # noqa: ARG001 - typer names the option after it; its callback acts
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    session = Session(netns=netns, datapath=datapath)
    ctx.obj = session
    ctx.meta[RUNNER] = run  # the shell runs its lines as we do
    ctx.call_on_close(session.close)


def report(exc: OdpError) -> None:
    """One line on stderr; for text that did not parse, the text and a caret."""
    print(f"{PROG}: error: {exc}", file=sys.stderr)
    if isinstance(exc, ParseError) and exc.text and exc.column:
        print(f"  {exc.caret().replace(chr(10), chr(10) + '  ')}", file=sys.stderr)


def _usage_line(exc: click_exceptions.UsageError) -> str:
    message = exc.format_message().rstrip(".")
    message = message[:1].lower() + message[1:]
    where = exc.ctx.command_path if exc.ctx is not None else PROG
    return f"{PROG}: error: {message} (see `{where} --help`)"


def command() -> click.Command:
    """The click command tree, as run and as documented (completions, man pages)."""
    cmd = typer.main.get_command(app)
    _plain_argument_names(cmd)
    plain_values_first(cmd)
    return cmd


def _plain_argument_names(cmd: click.Command) -> None:
    """Show each argument as its metavar says, in usage lines and help alike.

    Typer writes a required argument as ``{DP}``, an optional one as
    ``[DP] <str>``, and adds ``...`` to variadic ones, which mangles the
    ``[DP] FLOW ACTIONS`` that ovs-dpctl users know.  Our metavars already say
    what is optional and what repeats.
    """
    for param in cmd.params:
        metavar = param.metavar
        if param.param_type_name == "argument" and metavar is not None:
            # Instance attributes shadow typer's methods for this parameter only.
            vars(param).update(
                _usage_display_name=lambda m=metavar: m,
                _rich_display_name=lambda m=metavar: m,
                display_type_rich=lambda ctx: None,  # noqa: ARG005 - typer passes ctx=
            )
    for sub in getattr(cmd, "commands", {}).values():
        _plain_argument_names(sub)


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line; its exit status."""
    try:
        rv = command().main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name=PROG,
            standalone_mode=False,
        )
    except OdpError as exc:
        report(exc)
        return exc.exit_code
    except click_exceptions.NoArgsIsHelpError as exc:
        # Typer's rich help printed itself already while the error was made.
        if exc.message:
            print(exc.message, file=sys.stderr)
        return EXIT_USAGE
    except click_exceptions.UsageError as exc:
        print(_usage_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except click_exceptions.ClickException as exc:
        print(f"{PROG}: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        return 130
    except BrokenPipeError:
        # `odpctl flow dump | head`: the reader left.  End quietly with 1, as
        # click does when it catches this itself; point stdout at /dev/null
        # so that the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except SystemExit as exc:  # click ends some failures (a closed pipe) itself
        return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())
