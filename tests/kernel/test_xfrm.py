"""The xfrm netlink client against the guest's kernel (xfrm_user, esp4, gcm)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from odpctl.crypto.esp import esp_unavailable_reason
from odpctl.crypto.xfrm import GCM_KEY_LEN, Mark, Policy, SecurityAssociation, Selector, Xfrm
from odpctl.errors import AlreadyExistsError, KernelRefusedError, NotFoundError
from odpctl.netlink.netns import netns as inside

LOCAL, REMOTE = "192.168.88.1", "192.168.88.2"
REQID = 0x6F64F001
KEYS = (bytes(range(GCM_KEY_LEN)), bytes(range(100, 100 + GCM_KEY_LEN)))


def _xfrm(ns: str) -> Xfrm:
    with inside(ns):
        return Xfrm()


def test_the_guest_has_esp(netns: Callable[[], str]) -> None:
    with inside(netns()):
        assert esp_unavailable_reason() is None


def test_spi_allocation_states_and_policies(netns: Callable[[], str]) -> None:
    with _xfrm(netns()) as xfrm:
        spi = xfrm.alloc_spi(REMOTE, LOCAL, REQID)
        assert spi >= 0x100
        other = xfrm.alloc_spi(REMOTE, LOCAL, REQID + 1)
        assert other != spi
        inbound = SecurityAssociation(REMOTE, LOCAL, spi, REQID, key=KEYS[0])
        xfrm.add_sa(inbound, update=True)
        outbound = SecurityAssociation(LOCAL, REMOTE, 0xC0DE0001, REQID, key=KEYS[1])
        xfrm.add_sa(outbound)
        with pytest.raises(AlreadyExistsError):
            xfrm.add_sa(outbound)  # exclusive
        assert xfrm.get_sa(LOCAL, spi) == inbound
        states = {(s.dst, s.spi): s for s in xfrm.states()}
        assert states[(REMOTE, 0xC0DE0001)] == outbound
        assert states[(LOCAL, other)].key == b""  # still larval

        policy = Policy(
            Selector(dst=REMOTE, dst_prefix=32, proto=17, dport=6784),
            LOCAL,
            REMOTE,
            REQID,
            Mark(0x6F640000, 0xFFFF0000),
        )
        xfrm.add_policy(policy)
        xfrm.add_policy(Policy(policy.selector, LOCAL, REMOTE, REQID + 1, policy.mark))
        (stored,) = list(xfrm.policies())
        assert stored.reqid == REQID + 1  # replaced, not added
        xfrm.delete_policy(policy)
        assert list(xfrm.policies()) == []
        with pytest.raises(NotFoundError):
            xfrm.delete_policy(policy)

        for dst, s in ((LOCAL, spi), (REMOTE, 0xC0DE0001), (LOCAL, other)):
            xfrm.delete_sa(dst, s)
        assert list(xfrm.states()) == []
        with pytest.raises(NotFoundError):
            xfrm.delete_sa(LOCAL, spi)


def test_an_unknown_algorithm_is_refused_with_a_hint(netns: Callable[[], str]) -> None:
    with _xfrm(netns()) as xfrm:
        sa = SecurityAssociation(
            LOCAL, REMOTE, 0x1000, REQID, key=KEYS[0], algorithm="rfc4106(gcm(nosuchcipher))"
        )
        with pytest.raises(KernelRefusedError) as refused:
            xfrm.add_sa(sa)
        assert refused.value.hint is not None and "modprobe" in refused.value.hint
        assert list(xfrm.states()) == []
