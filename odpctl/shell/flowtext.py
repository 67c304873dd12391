"""Completing ODP flow text as it is typed: key attributes, their fields, actions.

Given the text of a flow (or actions) up to the cursor, the completer finds
the innermost ``name(`` still open and the piece being typed after the last
``,`` or ``(``; it offers what may stand there: attribute names at the top
(``eth(``), the fields of the attribute that is open (``src=``), port names
inside ``in_port(``; for actions, action names and ports, and key
attributes inside ``set(``.  Names come from the codec itself (the same list
the shell completion scripts use), so nothing is offered that `flow add`
would refuse.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from odpctl.errors import ParseError
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.vocabulary import flow_fields

# The actions of the ODP syntax.  tests/shell checks this against the parser.
ACTION_NAMES = (
    "add_mpls",
    "check_pkt_len",
    "clone",
    "ct",
    "ct_clear",
    "dec_ttl",
    "drop",
    "hash",
    "lb_output",
    "meter",
    "pop_eth",
    "pop_mpls",
    "pop_nsh",
    "pop_vlan",
    "psample",
    "push_eth",
    "push_mpls",
    "push_nsh",
    "push_vlan",
    "recirc",
    "sample",
    "set",
    "tnl_pop",
    "tnl_push",
    "trunc",
    "userspace",
)
# Actions whose parentheses hold more actions.
_NESTED_ACTIONS = frozenset(("clone",))
# Actions whose parentheses hold a key attribute: set(ipv4(...)).
_SET_ACTIONS = frozenset(("set",))


@dataclass(frozen=True, slots=True)
class Candidate:
    text: str  # what replaces the piece being typed
    meta: str = ""  # a word on what it is, for the menu


@functools.cache
def _fields() -> tuple[tuple[str, ...], dict[str, list[str]]]:
    attrs, fields = flow_fields()
    return tuple(attrs), fields


@functools.cache
def action_words() -> tuple[str, ...]:
    """Each action as it is typed: ``drop``, or ``set(`` when it needs arguments."""
    out = []
    for name in ACTION_NAMES:
        try:
            parse_actions(name)
            out.append(name)
        except ParseError:
            out.append(name + "(")
    return tuple(out)


def _context(text: str) -> tuple[list[str], str]:
    """The names of the parentheses still open, outermost first, and the piece typed."""
    stack: list[str] = []
    start = 0  # where the current piece began
    name_start = 0
    for i, c in enumerate(text):
        if c == "(":
            stack.append(text[name_start:i].strip())
            start = name_start = i + 1
        elif c == ")":
            if stack:
                stack.pop()
            start = name_start = i + 1
        elif c in ", \t":
            start = name_start = i + 1
        elif c == "=":
            start = i + 1  # a value: the name before = is not an attribute
    return stack, text[start:]


def _match(piece: str, words: Sequence[str], meta: str) -> list[Candidate]:
    return [Candidate(w, meta) for w in words if w.startswith(piece)]


def _port_values(piece: str, ports: Sequence[str]) -> list[Candidate]:
    return _match(piece, ports, "port")


def key_candidates(text: str, ports: Sequence[str] = ()) -> tuple[str, list[Candidate]]:
    """What may follow flow-key ``text``: (the piece to replace, candidates)."""
    stack, piece = _context(text)
    return piece, _key_here(stack, piece, ports)


def _key_here(stack: list[str], piece: str, ports: Sequence[str]) -> list[Candidate]:
    attrs, fields = _fields()
    if "=" in piece:
        return []
    if not stack or stack[-1] == "encap":
        return _match(piece, [a + "(" for a in attrs], "attribute")
    attr = stack[-1]
    if attr == "in_port":
        return _port_values(piece, ports)
    if attr in fields:
        return _match(piece, [f + "=" for f in fields[attr]], attr)
    return []


def action_candidates(text: str, ports: Sequence[str] = ()) -> tuple[str, list[Candidate]]:
    """What may follow actions ``text``: (the piece to replace, candidates)."""
    stack, piece = _context(text)
    # Inside set(...): a key attribute, then its fields, as in a flow key.
    for depth, name in enumerate(stack):
        if name in _SET_ACTIONS:
            return piece, _key_here(stack[depth + 1 :], piece, ports)
    if stack and stack[-1] not in _NESTED_ACTIONS:
        return piece, []
    if "=" in piece:
        return piece, []
    return piece, _match(piece, action_words(), "action") + _port_values(piece, ports)
