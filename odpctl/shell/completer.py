"""Completion as you type in ``odpctl shell``: commands, options, names, flow text.

What each position takes comes from the command tree (`cmdtree`): the same
data the bash, zsh and fish scripts are generated from, so the shell offers
exactly what the commands accept.  Datapath and port names come from a
`Names` source (the shell's, cached), flow keys and actions from
`odpctl.shell.flowtext`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from odpctl.commands.cmdtree import CommandSpec, OptionSpec
from odpctl.netlink.netns import NETNS_RUN_DIR

from .flowtext import Candidate, action_candidates, key_candidates
from .words import Parsed, Word, argument_words, parse, split

# The shell's own commands, with what each says in the menu.
BUILTINS = {
    "use": "pick the current datapath",
    "help": "help on a command",
    "exit": "leave the shell",
    "quit": "leave the shell",
}


class Names(Protocol):
    """Live names for completion; each answers [] when the datapath cannot be asked."""

    def datapaths(self) -> list[str]: ...

    def ports(self, dp: str | None) -> list[str]: ...

    def port_numbers(self, dp: str | None) -> list[str]: ...

    def interfaces(self) -> list[str]: ...

    @property
    def current(self) -> str | None: ...


class ShellCompleter(Completer):
    def __init__(self, root: CommandSpec, names: Names) -> None:
        self.root = root
        self.names = names
        self._paths = PathCompleter(expanduser=True)

    def get_completions(
        self, document: Document, _complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        sp = split(document.text_before_cursor)
        words = sp.words[1:] if sp.words[:1] == ["odpctl"] else sp.words
        current = sp.current
        if not words:
            yield from _words(current, self._top_level())
            return
        if words[0] in BUILTINS:
            yield from self._builtin(words, current)
            return
        parsed = parse(self.root, words)
        if parsed.pending is not None:
            yield from self._option_value(parsed, parsed.pending, current)
        elif current.startswith("-"):
            yield from _words(current, _options(parsed.spec, parsed.options))
        elif parsed.spec.subcommands and not parsed.positionals:
            yield from _words(current, _subcommands(parsed.spec))
        else:
            yield from self._positional(parsed, current)

    def _top_level(self) -> list[tuple[str, str]]:
        return _subcommands(self.root) + list(BUILTINS.items())

    def _builtin(self, words: list[str], current: str) -> Iterator[Completion]:
        if len(words) != 1:
            return
        if words[0] == "use":
            yield from _words(current, [(dp, "datapath") for dp in self.names.datapaths()])
        elif words[0] == "help":
            yield from _words(current, _subcommands(self.root))

    def _dp(self, parsed: Parsed) -> str | None:
        """The datapath the line is about: its DP word if it has one, else the current one."""
        words = argument_words(parsed.spec)
        if words and words[0].name == "DP" and parsed.positionals:
            dps = self.names.datapaths()
            if parsed.positionals[0] in dps:
                return parsed.positionals[0]
        return self.names.current

    def _option_value(self, parsed: Parsed, opt: OptionSpec, current: str) -> Iterator[Completion]:
        if opt.choices:
            yield from _words(current, [(c, opt.names[0]) for c in opt.choices])
        elif opt.kind == "netns":
            yield from _words(current, [(n, "netns") for n in _netns_names()])
        elif opt.kind == "file":
            yield from self._files(current)
        elif opt.kind == "flow":
            yield from self._flow(current, parsed, key_candidates)

    def _positional(self, parsed: Parsed, current: str) -> Iterator[Completion]:
        index = len(parsed.positionals)
        words = argument_words(parsed.spec)
        variants = [words, [w for w in words if not w.optional]]
        if index and words and words[0].optional and words[0].name == "DP":
            # The first word tells whether the line gave the optional datapath.
            given = parsed.positionals[0] in self.names.datapaths()
            variants = [variants[0] if given else variants[1]]
        seen: set[str] = set()
        for word in _words_at(variants, index):
            if word.name in seen:
                continue
            seen.add(word.name)
            yield from self._argument(word, parsed, current)

    def _argument(self, word: Word, parsed: Parsed, current: str) -> Iterator[Completion]:
        name = word.name
        if "|" in name:
            yield from _words(current, [(c, "") for c in name.split("|")])
        elif name == "DP":
            yield from _words(current, [(dp, "datapath") for dp in self.names.datapaths()])
        elif name == "PORT":
            yield from _words(current, [(p, "port") for p in self.names.ports(self._dp(parsed))])
        elif name == "IFACE":
            yield from _words(current, [(i, "interface") for i in self.names.interfaces()])
        elif name == "FILE":
            yield from self._files(current)
        elif name == "FLOW":
            yield from self._flow(current, parsed, key_candidates)
        elif name == "ACTIONS":
            yield from self._flow(current, parsed, action_candidates)

    def _flow(self, current: str, parsed: Parsed, candidates: _Candidates) -> Iterator[Completion]:
        dp = self._dp(parsed)
        ports = [*self.names.ports(dp), *self.names.port_numbers(dp)]
        piece, found = candidates(current, ports)
        for c in found:
            yield Completion(c.text, start_position=-len(piece), display_meta=c.meta)

    def _files(self, current: str) -> Iterator[Completion]:
        yield from self._paths.get_completions(Document(current), CompleteEvent())


class _Candidates(Protocol):
    def __call__(self, text: str, ports: Sequence[str] = ...) -> tuple[str, list[Candidate]]: ...


def _words(current: str, choices: Iterable[tuple[str, str]]) -> Iterator[Completion]:
    for text, meta in choices:
        if text.startswith(current):
            yield Completion(text, start_position=-len(current), display_meta=meta)


def _subcommands(spec: CommandSpec) -> list[tuple[str, str]]:
    return [(s.path[-1], s.short_help) for s in spec.subcommands]


def _options(spec: CommandSpec, given: list[str]) -> list[tuple[str, str]]:
    """Options not given yet, long names and negations, with their help's first clause."""
    out = []
    for opt in spec.options:
        if any(n in given for n in (*opt.names, *opt.negations)):
            continue
        meta = opt.help.split(". ")[0].rstrip(".")
        out += [(n, meta) for n in (*opt.names, *opt.negations) if n.startswith("--")]
    return out


def _words_at(variants: list[list[Word]], index: int) -> list[Word]:
    """What the ``index``-th positional word may be in each variant of the arguments."""
    out = []
    for variant in variants:
        if index < len(variant):
            out.append(variant[index])
        elif variant and variant[-1].repeats:
            out.append(variant[-1])
    return out


def _netns_names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except OSError:
        return []
