"""Command lines as the shell reads them: words, and where each command's parts are.

`split` is shlex's POSIX splitting made tolerant of a line being typed: an
open quote is no error, and the word under the cursor is kept apart, so
completion knows what is being typed.  `Parsed` walks the words down the
command tree (`odpctl.commands.cmdtree`) to the command they name and sorts
the rest into options and positional words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from odpctl.commands.cmdtree import CommandSpec, OptionSpec


@dataclass(frozen=True, slots=True)
class Split:
    words: list[str]  # complete words before the one being typed
    current: str  # the word being typed (quotes removed), maybe ""
    quote: str  # the quote left open in it, "" if none


def split(text: str) -> Split:
    """Words as a POSIX shell would pass them, the last one possibly unfinished."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    in_word = False
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] in '"\\$`':
                i += 1
                word.append(text[i])
            else:
                word.append(c)
        elif c in "'\"":
            quote, in_word = c, True
        elif c == "\\" and i + 1 < len(text):
            i += 1
            word.append(text[i])
            in_word = True
        elif c.isspace():
            if in_word:
                words.append("".join(word))
            word, in_word = [], False
        else:
            word.append(c)
            in_word = True
        i += 1
    return Split(words, "".join(word), quote)


def option_named(spec: CommandSpec, name: str) -> OptionSpec | None:
    """The option ``name`` (``--sort``, ``-r``, ``--no-names``) of ``spec``."""
    for opt in spec.options:
        if name in opt.names or name in opt.negations:
            return opt
    return None


@dataclass
class Parsed:
    """Words walked down the command tree.

    ``spec`` is the deepest command the words name; ``path_end`` the index
    of the first word after its name; ``options`` the options given (by the
    name used) and ``positionals`` the other words, both after the name.
    ``pending`` is the option whose value the next word is, if any.
    """

    spec: CommandSpec
    path_end: int
    options: list[str] = field(default_factory=list)
    positionals: list[str] = field(default_factory=list)
    pending: OptionSpec | None = None


def parse(root: CommandSpec, words: list[str]) -> Parsed:
    spec = root
    i = 0
    pending: OptionSpec | None = None
    # Global options come before the command path and may take values.
    while i < len(words):
        word = words[i]
        if pending is not None:
            pending = None
        elif word.startswith("-") and spec is root:
            name = word.split("=", 1)[0]
            opt = option_named(root, name)
            if opt is not None and opt.takes_value and "=" not in word:
                pending = opt
        else:
            sub = next((s for s in spec.subcommands if s.path[-1] == word), None)
            if sub is None:
                break
            spec = sub
        i += 1
    parsed = Parsed(spec, i)
    if pending is not None:
        parsed.pending = pending
        return parsed
    rest_only = False
    for word in words[i:]:
        if parsed.pending is not None:
            parsed.pending = None
        elif word == "--" and not rest_only:
            rest_only = True
        elif word.startswith("-") and len(word) > 1 and not rest_only and not _is_number(word):
            name = word.split("=", 1)[0]
            parsed.options.append(name)
            opt = option_named(spec, name)
            if opt is not None and opt.takes_value and "=" not in word:
                parsed.pending = opt
        else:
            parsed.positionals.append(word)
    return parsed


def _is_number(word: str) -> bool:
    return word[1:].replace(".", "", 1).isdigit()


@dataclass(frozen=True, slots=True)
class Word:
    """One word of an argument's metavar: ``[DP]`` is Word("DP", optional=True)."""

    name: str
    optional: bool
    repeats: bool


def argument_words(spec: CommandSpec) -> list[Word]:
    return [
        Word(w.strip("[]."), w.startswith("["), w.endswith("..."))
        for arg in spec.args
        for w in arg.metavar.split()
    ]


# Command groups whose commands are about datapaths themselves: the current
# datapath is never slipped into them (`dp del` must name what it deletes).
_NO_CURRENT_DP = frozenset(("dp",))


def with_datapath(root: CommandSpec, argv: list[str], dp: str | None) -> list[str]:
    """``argv`` with datapath ``dp`` put in where the line leaves out a leading DP.

    A command whose arguments start with a datapath (``[DP] FLOW ACTIONS``,
    ``DP IFACE``) and that got exactly the words after it gets ``dp`` in
    front of them; a line that names its datapath, or a command that shows
    every datapath when given none (``dp show``), is left as it is.
    """
    if dp is None:
        return argv
    parsed = parse(root, argv)
    spec = parsed.spec
    words = argument_words(spec)
    if not spec.path or spec.path[0] in _NO_CURRENT_DP or spec.subcommands:
        return argv
    if not words or words[0].name != "DP" or words[0].repeats:
        return argv
    wanted = sum(1 for w in words[1:] if not w.optional)
    if "--file" in parsed.options:
        wanted = 0  # the flows come from the file: only [DP] is on the line
    if len(parsed.positionals) != wanted:
        return argv
    return [*argv[: parsed.path_end], dp, *argv[parsed.path_end :]]
