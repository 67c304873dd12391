"""Flow text as operators type it: an optional ``ufid:``, a key, port names.

``ovs-dpctl add-flow`` reads ``ufid:UUID,in_port(eth0),eth(),...``: a UFID
to install the flow under and port *names* where a number goes.  The text
codec reads numbers only, so names are swapped for numbers first; errors
still point at the column the operator typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from odpctl.errors import ParseError
from odpctl.odp.actions import Action
from odpctl.odp.keys import FlowKey
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.present.odptext import split_ufid

# Port name -> number, for the datapath the flow is meant for.
PortLookup = Mapping[str, int]

# in_port(NAME): what the text codec cannot read (it wants a number).
_IN_PORT_NAME = re.compile(r"(?<![\w])in_port\(([A-Za-z_][\w.:-]*)\)")


def _with_port_numbers(text: str, lookup: PortLookup | None) -> tuple[str, int, int]:
    """``text`` with ``in_port(NAME)`` made ``in_port(N)``.

    Returns the new text, where the change ends in it, and how many
    characters shorter it got, so that errors further on can be mapped back.
    """
    m = _IN_PORT_NAME.search(text)
    if m is None or lookup is None:
        return text, len(text), 0
    port = lookup.get(m[1])
    if port is None:
        raise ParseError(f"no port named '{m[1]}' in the datapath", text, m.start(1) + 1)
    number = str(port)
    new = text[: m.start(1)] + number + text[m.end(1) :]
    return new, m.start(1) + len(number), len(m[1]) - len(number)


def _remap(exc: ParseError, original: str, after: int, shift: int, offset: int) -> ParseError:
    column = exc.column + shift if exc.column > after else exc.column
    return ParseError(exc.reason, original, column + offset)


def parse_match(
    text: str, lookup: PortLookup | None = None, *, original: str | None = None, offset: int = 0
) -> tuple[FlowKey, FlowKey]:
    """A key and mask from ODP text that may name its in_port.

    ``text`` may be the tail of ``original`` from ``offset`` on: errors point
    into ``original``.
    """
    try:
        new, after, shift = _with_port_numbers(text, lookup)
    except ParseError as exc:
        raise _remap(exc, original or text, len(text), 0, offset) from None
    try:
        return parse_key(new)
    except ParseError as exc:
        raise _remap(exc, original or text, after, shift, offset) from None


def parse_flow(
    text: str, lookup: PortLookup | None = None
) -> tuple[bytes | None, FlowKey, FlowKey]:
    """``[ufid:UUID,]KEY`` -> (ufid, key, mask)."""
    ufid, rest = split_ufid(text)
    # The key parser would skip a UFID too, but not the comma OVS puts after it.
    return (ufid, *parse_match(rest, lookup, original=text, offset=len(text) - len(rest)))


def is_ufid_only(text: str) -> bool:
    """``ufid:UUID`` and nothing else: a flow named by its UFID alone."""
    ufid, rest = split_ufid(text)
    return ufid is not None and not rest.strip()


def parse_flow_actions(text: str, lookup: PortLookup | None = None) -> list[Action]:
    """Actions, where an output may name its port."""
    return parse_actions(text, lookup)
