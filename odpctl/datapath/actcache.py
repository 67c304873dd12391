"""Checked and compiled actions, remembered by their encoding.

A router installs thousands of flows whose actions are byte for byte alike
(output to a port; set(tunnel(...)) and output to the tunnel port), and
executes each miss's packet with the very actions of its flow put: checking
and compiling them once per encoding rather than once per request takes the
dearest part of a flow put off the miss path.  What the checks read of the
key (its EtherType, IP protocol and fragment type) is part of what is
remembered; a refusal is not remembered, it is raised each time.  Compiled
steps keep no state of their own, so flows can share them.
"""

from __future__ import annotations

from odpctl.datapath.execute import Program, compile_actions
from odpctl.datapath.layout import Key
from odpctl.datapath.validate import validate_actions
from odpctl.odp.actions import Action

_MAX = 4096
_known: dict[tuple[bytes, int, int, int], tuple[list[Action], Program]] = {}


def checked_actions(data: bytes, key: Key) -> tuple[list[Action], Program]:
    """``validate_actions(data, key)`` and its compiled program; RequestError if refused."""
    index = (data, key.eth_type, key.ip_proto, key.ip_frag)
    known = _known.get(index)
    if known is None:
        actions = validate_actions(data, key)
        if len(_known) >= _MAX:
            _known.clear()
        known = _known[index] = (actions, compile_actions(actions))
    # A list of the caller's own: a flow's actions are its to replace.
    return list(known[0]), known[1]
