"""Flow text as typed: UFIDs, port names, filters, durations, orders, bulk lines."""

from __future__ import annotations

import pytest

from odpctl.commands.bulk import FlowLine, Op, read_lines
from odpctl.commands.filters import (
    SortOrder,
    parse_duration,
    parse_filter,
    sort_flows,
    used_within,
)
from odpctl.commands.flowtext import is_ufid_only, parse_flow, parse_flow_actions
from odpctl.errors import ParseError, UsageError
from odpctl.odp.actions import Output
from odpctl.odp.uapi import KeyAttr
from odpctl.present.odptext import match_text

from .samples import NOW, UFID, UFID_TEXT, flow, flows

PORTS = {"va": 5, "vx0": 1}


def test_ufid_then_comma_then_key() -> None:
    # OVS writes a comma after the UFID; the key parser alone would stop there.
    ufid, key, mask = parse_flow(f"ufid:{UFID_TEXT},in_port(1),eth()")
    assert ufid == UFID
    assert key[KeyAttr.IN_PORT] == 1 and mask[KeyAttr.IN_PORT] == 0xFFFFFFFF
    assert is_ufid_only(f"ufid:{UFID_TEXT}")
    assert not is_ufid_only(f"ufid:{UFID_TEXT},in_port(1)")


def test_in_port_by_name() -> None:
    _ufid, key, _mask = parse_flow("in_port(va),eth()", PORTS)
    assert key[KeyAttr.IN_PORT] == 5
    assert parse_flow_actions("vx0,va", PORTS) == [Output(1), Output(5)]


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("in_port(nosuch),eth()", 9),  # the unknown name
        (f"ufid:{UFID_TEXT},in_port(va),eth(src=1)", 63),  # after a name, past a UFID
        ("in_port(va),eth(src=zz)", 21),
        ("in_port(1),eth(src=zz)", 20),
    ],
)
def test_errors_point_at_what_was_typed(text: str, column: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_flow(text, PORTS)
    assert info.value.text == text
    assert info.value.column == column


# --- filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("in_port=5", [0, 2]),
        ("in_port=5,eth_type=0x0800", [0, 2]),
        ("in_port(5),eth_type(0x0800),tcp()", [2]),
        ("tcp", [2]),
        ("tcp.dst=80", [2]),
        ("tcp.dst=81", []),
        ("ipv4.src=10.0.0.0/8", [0]),
        ("ipv4.src=10.0.0.1", [0]),
        ("eth.src=00:01:02:03:04:05", [1]),
        ("in_port=va", [0, 2]),
        ("eth_type=0x0806", [1]),
        ("eth", [0, 1, 2]),
    ],
)
def test_filter(text: str, selected: list[int]) -> None:
    f = parse_filter(text, PORTS)
    assert [i for i, fl in enumerate(flows()) if f.matches(fl)] == selected


@pytest.mark.parametrize(
    ("text", "column"),
    [("in_port=2,ipv4.bogus=1", 11), ("in_port=2 eth", 11), ("ipv4.src", 9), ("in_port=zz", 1)],
)
def test_filter_errors_point_into_it(text: str, column: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_filter(text, PORTS)
    assert (info.value.text, info.value.column) == (text, column)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5), ("1d", 86400.0)],
)
def test_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(UsageError, match="500ms, 5s"):
        parse_duration("soon")


def test_used_within() -> None:
    recent = used_within(1.0, NOW)
    assert [recent(f) for f in flows()] == [False, False, True]
    assert [used_within(2.0, NOW)(f) for f in flows()] == [True, False, True]


def test_sort_orders_are_stable() -> None:
    f = flows()
    extra = flow("in_port(1),eth(),eth_type(0x86dd),ipv6(frag=no)", "2", packets=12)

    def order(o: SortOrder, reverse: bool = False) -> list[str]:
        return [match_text(x)[:20] for x in sort_flows([*f, extra], o, match_text, reverse=reverse)]

    assert order(SortOrder.key) == [
        "in_port(1),eth(),eth",
        "in_port(1),eth(src=0",
        "in_port(5),eth(),eth",
        "in_port(5),eth(),eth",
    ]
    # Busiest first; the tie at 12 packets goes by match text.
    assert order(SortOrder.packets)[:3] == [
        "in_port(5),eth(),eth",
        "in_port(1),eth(),eth",
        "in_port(5),eth(),eth",
    ]
    assert order(SortOrder.used)[0] == match_text(f[2])[:20]
    assert order(SortOrder.none) == [match_text(x)[:20] for x in [*f, extra]]
    assert order(SortOrder.key, reverse=True) == order(SortOrder.key)[::-1]


# --- bulk files ---------------------------------------------------------------------


def test_bulk_lines_as_ovs_dpctl_reads_them() -> None:
    text = [
        "# a comment\n",
        "\n",
        "in_port(1),eth() 2\n",
        "add in_port(2),eth() 1,2   # trailing comment\n",
        "modify in_port(1),eth() 3\n",
        "d in_port(2),eth()\n",
        "delete in_port(2),eth() 3\n",
        "modify in_port(1),eth()\n",
        "additional in_port(1),eth() 2\n",
    ]
    got = list(read_lines(text, Op.add))
    assert got[:4] == [
        FlowLine(3, Op.add, "in_port(1),eth()", "2"),
        FlowLine(4, Op.add, "in_port(2),eth()", "1,2"),
        FlowLine(5, Op.modify, "in_port(1),eth()", "3"),
        FlowLine(6, Op.delete, "in_port(2),eth()", None),
    ]
    assert got[4] == (7, "a delete line takes a flow and no actions")
    assert got[5] == (8, "an modify line needs actions after the flow")
    # Not a command word: the line's flow is "additional", which will not parse.
    assert got[6] == FlowLine(9, Op.add, "additional", "in_port(1),eth() 2")


def test_bulk_default_command() -> None:
    assert list(read_lines(["in_port(1),eth()\n"], Op.delete)) == [
        FlowLine(1, Op.delete, "in_port(1),eth()", None)
    ]
