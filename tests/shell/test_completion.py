"""Completion in the shell: the words offered at each place of a line."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from odpctl.cli import command
from odpctl.commands.cmdtree import build
from odpctl.errors import ParseError
from odpctl.odp.text import actionparse
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.shell.completer import ShellCompleter
from odpctl.shell.flowtext import ACTION_NAMES, action_candidates, action_words, key_candidates

ROOT = build(command())


class FakeNames:
    def __init__(self, current: str | None = None) -> None:
        self.current = current
        self.asked: list[str | None] = []

    def datapaths(self) -> list[str]:
        return ["dp0", "dp1"]

    def ports(self, dp: str | None) -> list[str]:
        self.asked.append(dp)
        return [f"{dp}-a", f"{dp}-b"] if dp else []

    def port_numbers(self, dp: str | None) -> list[str]:
        return ["1", "2"] if dp else []

    def interfaces(self) -> list[str]:
        return ["eth0", "lo", "veth9"]


def complete(text: str, current: str | None = None) -> list[str]:
    completer = ShellCompleter(ROOT, FakeNames(current))
    doc = Document(text, len(text))
    return [c.text for c in completer.get_completions(doc, CompleteEvent())]


def applied(text: str, current: str | None = None) -> list[str]:
    """The line after taking each completion."""
    completer = ShellCompleter(ROOT, FakeNames(current))
    doc = Document(text, len(text))
    return [
        text[: len(text) + c.start_position] + c.text
        for c in completer.get_completions(doc, CompleteEvent())
    ]


def test_commands_and_builtins_at_the_start() -> None:
    words = complete("")
    assert {"dp", "vport", "flow", "watch", "use", "help", "exit"} <= set(words)
    assert complete("w") == ["watch"]
    assert complete("odpctl fl") == ["flow"]  # the prefix is allowed


def test_subcommands() -> None:
    assert complete("watch ") == ["flows", "stats", "vports", "upcalls"]
    assert complete("flow d") == ["dump", "del"]
    assert complete("--netns x flow du") == ["dump"]


def test_options_not_given_yet() -> None:
    words = complete("watch flows --")
    assert {"--sort", "--filter", "--interval", "--json", "--names", "--no-names"} <= set(words)
    assert "--sort" not in complete("watch flows --sort pps --")
    assert complete("watch flows --so") == ["--sort"]


def test_option_values() -> None:
    assert complete("watch flows --sort ") == [
        s.value for s in __import__("odpctl.watch.frames", fromlist=["FlowSort"]).FlowSort
    ]
    assert complete("watch upcalls --source r") == ["router"]
    assert "in_port(" in complete("flow dump --filter ")
    assert complete("flow dump --filter 'in_port(1),eth(s") == ["src="]


def test_datapath_and_port_names() -> None:
    assert complete("use ") == ["dp0", "dp1"]
    assert complete("watch flows d") == ["dp0", "dp1"]
    assert complete("vport del ") == ["dp0", "dp1"]
    # A port of the datapath the line names, else of the current one.
    assert complete("vport del dp1 ") == ["dp1-a", "dp1-b"]
    assert complete("vport add dp0 v") == ["veth9"]


def test_flow_text() -> None:
    assert "eth_type(" in complete("flow add in_port(1),eth_t")
    assert applied("flow add 'in_port(1),eth(src=02:00:00:00:00:01,d") == [
        "flow add 'in_port(1),eth(src=02:00:00:00:00:01,dst="
    ]
    assert complete("flow add in_port(", current="dp0") == ["dp0-a", "dp0-b", "1", "2"]
    assert complete("flow add in_port(1),eth(src=02:") == []  # a value: nothing to offer


def test_actions() -> None:
    assert complete("flow add dp0 in_port(1) s") == ["sample(", "set("]
    assert complete("flow add in_port(1) 2,pop_") == [
        "pop_eth",
        "pop_mpls(",
        "pop_nsh(",
        "pop_vlan",
    ]
    assert complete("flow add in_port(1) set(tunnel(tun") == ["tun_id="]
    # The first word says whether the datapath was given, so which word this is.
    assert complete("flow add dp0 in_port(1),eth(s") == ["src="]
    assert complete("flow add in_port(1) eth(s") == []  # actions: no eth action
    assert complete("flow add dp0 in_port(1) s") == ["sample(", "set("]
    assert "dp0-a" in complete("flow add in_port(1) ", current="dp0")


def test_help_and_nothing_after_use() -> None:
    assert complete("help wa") == ["watch"]
    assert complete("use dp0 ") == []


# --- flow text on its own ----------------------------------------------------------------------


def test_action_names_are_the_parsers() -> None:
    # The parser keeps its table private; the list here must not drift from it.
    assert set(ACTION_NAMES) == set(actionparse._ACTION_PARSERS)


def test_every_action_offered_parses() -> None:
    for word in action_words():
        if word.endswith("("):
            with pytest.raises(ParseError):  # needs its arguments...
                parse_actions(word.rstrip("("))
        else:
            parse_actions(word)  # ... or is whole


@pytest.mark.parametrize(
    ("text", "piece", "first"),
    [
        ("", "", "arp("),
        ("in_port(1),ipv", "ipv", "ipv4("),
        ("ipv4(src=10.0.0.1,", "", "src="),
        ("encap(", "", "arp("),
        ("tunnel(tun_id=1,t", "t", "tun_id="),
    ],
)
def test_key_candidates(text: str, piece: str, first: str) -> None:
    got_piece, found = key_candidates(text)
    assert got_piece == piece and found[0].text == first


def test_every_field_offered_parses() -> None:
    _, attrs = key_candidates("")
    for attr in attrs:
        _, fields = key_candidates(attr.text)
        for field in (f for f in fields if f.text.endswith("=")):
            # a 0 may be a bad value for the field, never an unknown field
            reason = _parse_error(f"{attr.text}{field.text}0)")
            assert reason is None or "unknown field" not in reason, (attr, field)


def _parse_error(text: str) -> str | None:
    try:
        parse_key(text)
    except ParseError as exc:
        return exc.reason
    return None


def test_action_candidates_in_nested_lists() -> None:
    assert [c.text for c in action_candidates("clone(pu")[1]][:2] == ["push_eth(", "push_mpls("]
    assert action_candidates("ct(zone=")[1] == []
    assert [c.text for c in action_candidates("set(eth(s")[1]] == ["src="]
