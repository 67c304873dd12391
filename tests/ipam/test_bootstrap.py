"""--ipalloc-init and --ipalloc-range as typed, and IPAM's decoder of a peer's bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.errors import UsageError
from odpctl.ipam.addr import Cidr
from odpctl.ipam.allocator import Allocator, IpamConfig
from odpctl.ipam.bootstrap import Bootstrap
from odpctl.mesh.names import PeerName
from odpctl.mesh.node import MeshConfig, MeshNode
from odpctl.mesh.wire import pack


def test_bootstrap_modes() -> None:
    assert Bootstrap.parse(None, 2) == Bootstrap("consensus", 3)
    assert Bootstrap.parse("consensus", 0) == Bootstrap("consensus", 1)
    assert Bootstrap.parse("consensus=5", 2) == Bootstrap("consensus", 5)
    seeded = Bootstrap.parse("seed=02:00:00:00:00:02,020000000001", 0)
    assert seeded.seeds == (PeerName(0x020000000001), PeerName(0x020000000002))
    assert str(seeded) == "seed=02:00:00:00:00:01,02:00:00:00:00:02"
    assert Bootstrap.parse("observer", 3).mode == "observer"


@pytest.mark.parametrize(
    "text", ["consensus=0", "consensus=x", "seed=", "seed=nothex", "observer=2", "paxos"]
)
def test_bad_bootstrap_is_one_clear_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--ipalloc-init"):
        Bootstrap.parse(text, 0)


@pytest.mark.parametrize("text", ["10.32.0.1/12", "10.32.0.0/31", "10.32.0.0", "nonsense"])
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        Cidr.parse(text)


@pytest.fixture(name="allocator", scope="module")
def allocator_fixture() -> Allocator:
    return Allocator(MeshNode(MeshConfig(listen_port=None)), IpamConfig())


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(
        lambda body: pack(body),
        st.dictionaries(
            st.sampled_from(["v", "range", "ring", "paxos", "n", "delta"]),
            st.recursive(
                st.none() | st.booleans() | st.integers(-1, 2**64 - 1) | st.text(max_size=3),
                lambda kids: (
                    st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=8), kids, max_size=4)
                ),
                max_leaves=20,
            ),
        ),
    )
)
def test_hostile_gossip_is_dropped_not_raised(allocator: Allocator, payload: bytes) -> None:
    allocator.on_gossip(PeerName(7), payload)
    allocator.on_gossip_unicast(PeerName(7), payload)
    assert not allocator.ring.made or allocator.ring.tokens[0] == allocator.cidr.start
