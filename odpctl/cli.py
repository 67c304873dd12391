"""The ``odpctl`` command: global options, the command groups, error reporting.

Every expected failure is an `OdpError` or a usage error; it is reported here
as one line on stderr (a caret line under malformed flow text) and a
documented exit code (`odpctl.errors`), never a traceback.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from typer import _click as click
from typer._click import exceptions as click_exceptions

from odpctl.commands import demo, dp, flow, names, peer, router, shell, vport, watch
from odpctl.commands.session import Session
from odpctl.errors import EXIT_FAILURE, EXIT_USAGE, OdpError, ParseError

PROG = "odpctl"

app = typer.Typer(
    name=PROG,
    help="Inspect and drive the Open vSwitch datapath (kernel or userspace): datapaths, "
    "ports and flows, as ovs-dpctl does, for people and for scripts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(dp.app, name="dp")
app.add_typer(vport.app, name="vport")
app.add_typer(flow.app, name="flow")
app.add_typer(watch.app, name="watch")
app.add_typer(router.app, name="router")
app.add_typer(peer.app, name="peer")
app.command("shell")(shell.shell)
app.command("demo")(demo.demo)
app.command(names.COMMAND, hidden=True)(names.names)


def _version(value: bool) -> None:
    if value:
        try:
            version = importlib.metadata.version(PROG)
        except importlib.metadata.PackageNotFoundError:
            version = "(not installed)"
        print(f"{PROG} {version}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    netns: Annotated[
        str | None,
        typer.Option("--netns", "-n", metavar="NETNS", show_default=False,
                     help="Run inside this network namespace (as `ip netns` names it)."),
    ] = None,
    datapath: Annotated[
        str | None,
        typer.Option(
            "--datapath", metavar="WHERE", envvar="ODPCTL_DATAPATH", show_default=False,
            help="Which datapath to talk to: auto (default: the kernel's if the module is "
            "there, else the userspace one), kernel, userspace or unix:PATH.",
        ),
    ] = None,
    version: Annotated[  # noqa: ARG001 - typer names the option after it; its callback acts
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    session = Session(netns=netns, datapath=datapath)
    ctx.obj = session
    ctx.meta[shell.RUNNER] = run  # the shell runs its lines as we do
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
        rv = command().main(args=list(argv) if argv is not None else sys.argv[1:],
                            prog_name=PROG, standalone_mode=False)
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
