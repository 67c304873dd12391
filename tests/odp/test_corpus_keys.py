"""Open vSwitch's own key corpus (tests/odp.at), through text → binary → text.

The files under tests/data/odp-at/ are copied from the shared corpus (see its
README.md).  Each line is parsed, its key and mask encoded to the kernel's
binary form and decoded again, then formatted; the result must be the line:

- odp-at-keys-exact-in.txt: exact keys, printed as ``odp_flow_key_format``
  does.  (OVS's expected output, -exact-out, adds fields its own test program
  invents when it converts through ``struct flow``; through the binary form
  alone the input comes back.)
- odp-at-keys-exact-out.txt: those outputs are exact keys too, and must also
  round-trip (minus the ``ODP_FIT_TOO_LITTLE:`` verdict prefix).
- odp-at-keys-wildcard.txt: masked keys, printed as ``ovs-dpctl dump-flows``.
- odp-at-actions.txt: every ``set(...)`` inside a valid action list holds one
  key attribute; it must read and print back through `parse_key_attr` and
  `format_key_attr`, as ``set`` (no mask) or ``set_masked`` the way OVS
  decides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from odpctl.odp.keys import FlowKey, decode_key, encode_key
from odpctl.odp.text.keys import format_key, format_key_attr, parse_key, parse_key_attr
from odpctl.odp.text.scanner import Scanner

DATA = Path(__file__).resolve().parent.parent / "data" / "odp-at"


def _lines(name: str) -> list[str]:
    out = []
    for line in (DATA / name).read_text().splitlines():
        if line and not line.startswith("#"):
            out.append(line.removeprefix("ODP_FIT_TOO_LITTLE: "))
    return out


EXACT_IN = _lines("odp-at-keys-exact-in.txt")
EXACT_OUT = _lines("odp-at-keys-exact-out.txt")
WILDCARD = _lines("odp-at-keys-wildcard.txt")


def _binary(key: FlowKey) -> FlowKey:
    return decode_key(encode_key(key))


def test_corpus_sizes() -> None:
    # Guards against a corpus file silently losing its lines.
    assert len(EXACT_IN) == 268
    assert len(EXACT_OUT) == 268
    assert len(WILDCARD) == 177


@pytest.mark.parametrize("line", EXACT_IN)
def test_exact_in(line: str) -> None:
    key, _ = parse_key(line)
    assert format_key(_binary(key)) == line


@pytest.mark.parametrize("line", EXACT_OUT)
def test_exact_out(line: str) -> None:
    key, _ = parse_key(line)
    assert format_key(_binary(key)) == line


@pytest.mark.parametrize("line", WILDCARD)
def test_wildcard(line: str) -> None:
    key, mask = parse_key(line)
    assert format_key(_binary(key), _binary(mask)) == line


def test_wildcard_key_and_mask_survive_binary() -> None:
    for line in WILDCARD:
        key, mask = parse_key(line)
        assert _binary(key) == key
        assert _binary(mask) == mask


def _set_actions() -> list[tuple[str, int]]:
    out = []
    for line in _lines("odp-at-actions.txt"):
        pos = line.find("set(")
        while pos >= 0:
            out.append((line, pos + 4))
            pos = line.find("set(", pos + 4)
    return out


SETS = _set_actions()


def test_set_actions_found() -> None:
    assert len(SETS) == 43


@pytest.mark.parametrize(("line", "start"), SETS)
def test_set_action_attribute(line: str, start: int) -> None:
    sc = Scanner(line, start)
    kind, value, mask = parse_key_attr(sc)
    assert line[sc.pos] == ")"
    value = _binary(FlowKey({kind: value}))[kind]
    if mask is not None:
        mask = _binary(FlowKey({kind: mask}))[kind]
    assert format_key_attr(kind, value, mask) == line[start : sc.pos]
