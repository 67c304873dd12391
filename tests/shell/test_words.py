"""Reading command lines: words, the command they name, the current datapath."""

from __future__ import annotations

import pytest

from odpctl.cli import command
from odpctl.commands.cmdtree import build
from odpctl.shell.words import argument_words, parse, split, with_datapath

ROOT = build(command())


@pytest.mark.parametrize(
    ("text", "words", "current", "quote"),
    [
        ("", [], "", ""),
        ("flow dump ", ["flow", "dump"], "", ""),
        ("flow du", ["flow"], "du", ""),
        ("flow add 'in_port(1),eth(", ["flow", "add"], "in_port(1),eth(", "'"),
        ('flow add "a b" c', ["flow", "add", "a b"], "c", ""),
        (r"flow add a\ b", ["flow", "add"], "a b", ""),
        ('x "say \\"hi\\""', ["x"], 'say "hi"', ""),
        ("a  b\t", ["a", "b"], "", ""),
    ],
)
def test_split(text: str, words: list[str], current: str, quote: str) -> None:
    sp = split(text)
    assert (sp.words, sp.current, sp.quote) == (words, current, quote)


def test_parse_walks_to_the_command_and_sorts_the_rest() -> None:
    p = parse(ROOT, ["--netns", "x", "flow", "dump", "dp0", "--sort", "bytes", "-r"])
    assert p.spec.path == ("flow", "dump") and p.path_end == 4
    assert p.options == ["--sort", "-r"] and p.positionals == ["dp0"] and p.pending is None
    p = parse(ROOT, ["watch", "flows", "--sort"])
    assert p.pending is not None and p.pending.names[0] == "--sort"
    p = parse(ROOT, ["--netns"])
    assert p.pending is not None and p.pending.kind == "netns"
    p = parse(ROOT, ["flow", "get", "--", "-1"])
    assert p.positionals == ["-1"]
    p = parse(ROOT, ["watch", "flows", "--interval=2", "dp0"])
    assert p.positionals == ["dp0"] and p.pending is None


def test_argument_words() -> None:
    flow_add = next(c for c in ROOT.walk() if c.path == ("flow", "add"))
    assert [(w.name, w.optional, w.repeats) for w in argument_words(flow_add)] == [
        ("DP", True, False),
        ("FLOW", False, False),
        ("ACTIONS", False, False),
    ]
    dp_show = next(c for c in ROOT.walk() if c.path == ("dp", "show"))
    assert [(w.name, w.optional, w.repeats) for w in argument_words(dp_show)] == [
        ("DP", True, True)
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("flow dump", "flow dump CUR"),
        ("flow dump dp1", "flow dump dp1"),
        ("flow dump --sort bytes", "flow dump CUR --sort bytes"),
        ("flow add in_port(1) 2", "flow add CUR in_port(1) 2"),
        ("flow add dp1 in_port(1) 2", "flow add dp1 in_port(1) 2"),
        ("flow add --file x", "flow add CUR --file x"),
        ("flow get ufid:1", "flow get CUR ufid:1"),
        ("vport add veth0", "vport add CUR veth0"),
        ("vport add dp1 veth0", "vport add dp1 veth0"),
        ("vport list -s", "vport list CUR -s"),
        ("watch flows -i 2", "watch flows CUR -i 2"),
        ("--netns x watch upcalls", "--netns x watch upcalls CUR"),
        ("dp show", "dp show"),  # every datapath, as documented
        ("dp del", "dp del"),  # never the current one by accident
        ("flow parse keys", "flow parse keys"),
        ("flow", "flow"),
        ("flow dump --help", "flow dump CUR --help"),
    ],
)
def test_the_current_datapath_goes_where_the_line_leaves_it_out(line: str, expected: str) -> None:
    assert " ".join(with_datapath(ROOT, line.split(), "CUR")) == expected
    assert with_datapath(ROOT, line.split(), None) == line.split()
