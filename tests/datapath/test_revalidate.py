"""The router's revalidation against a real datapath (userspace here, the kernel's in the
guest): idle flows go, live ones stay, stale ones go, in batched passes read lazily.

It lives with the datapath tests for their fixtures, which give every test both datapaths.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from odpctl.mesh.names import PeerName
from odpctl.netlink.netns import netns as in_netns
from odpctl.odp.actions import Action
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.keys import Eth
from odpctl.odp.uapi import KeyAttr, VportType
from odpctl.odp.vport import Vport
from odpctl.overlay.flows import local_flow, tunnel_to, vni
from odpctl.overlay.revalidate import Revalidator
from odpctl.overlay.sweeper import BUSY_PAUSE, Pacer, Stopped, Sweeper
from odpctl.overlay.view import MeshView

from .conftest import Host

A, B = PeerName(0xA), PeerName(0xB)
DST = bytes.fromhex("02aa00000001")
ETHERTYPE = 0x88B6  # local experimental: nothing else in the namespace sends it
HostFactory = Callable[[str], tuple[Host, str]]


def _view(hop_ip: str) -> MeshView:
    short = {A: 1, B: 2}
    return MeshView(
        ourself=A,
        our_short_id=1,
        short_ids=short,
        next_hops={B: B},
        neighbour_ips={B: hop_ip},
        by_short_id={v: k for k, v in short.items()},
    )


def _src(i: int) -> bytes:
    return bytes([0x02, 0xBB, 0, 0, i >> 8, i & 255])


def _flow(port: int, i: int, actions: list[Action]) -> Flow:
    return local_flow(port, Eth(_src(i), DST), ETHERTYPE, actions)


def _sources(dpif: Dpif, dp: str) -> set[bytes]:
    keys = (f.key.get(KeyAttr.ETHERNET) for f in dpif.dump_flows(dp))
    return {eth.src for eth in keys if isinstance(eth, Eth)}


def test_idle_flows_go_live_ones_stay_stale_ones_go(dpif: Dpif, host: HostFactory) -> None:
    dp = "dprv"
    dpif.create_datapath(dp)
    h, port_if = host("10.9.0.1/24")
    port = dpif.add_vport(dp, Vport(port_if)).port_no or 0
    vx = dpif.add_vport(dp, Vport("vxlan_sys_6799", VportType.VXLAN, dst_port=6799)).port_no or 0
    live, once, idle = range(0, 40), range(40, 60), range(60, 100)
    towards_b = tunnel_to(vni(1, 2), "192.168.0.2", vx)
    flows = [_flow(port, i, []) for i in (*live, *once, *idle)]
    flows.append(_flow(port, 500, towards_b))  # stale once B's next hop moves
    assert not any(dpif.add_flows(dp, flows))
    with in_netns(h.ns):
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sender:
        sender.bind((h.ifname, 0))

        def send(sources: range) -> None:
            for i in sources:
                sender.send(DST + _src(i) + ETHERTYPE.to_bytes(2, "big") + bytes(46))

        revalidator = Revalidator(idle=1.0)
        send(once)
        first = revalidator.revalidate(dpif, dp, _view("192.168.0.2"), frozenset(), False)
        assert (first.flows, first.stale, first.idle) == (101, 0, 0)
        # B is now reached through another address: the tunnel flow is stale.
        moved = _view("192.168.0.9")
        deadline = time.monotonic() + 1.6
        while time.monotonic() < deadline:
            send(live)
            time.sleep(0.1)
        second = revalidator.revalidate(dpif, dp, moved, frozenset(), False)
    assert (second.flows, second.stale, second.idle) == (101, 1, 60)
    assert _sources(dpif, dp) == {_src(i) for i in live}
    assert (revalidator.deleted_stale, revalidator.deleted_idle) == (1, 60)


def test_the_sweeper_runs_requested_passes_on_its_own_connection(
    dpif: Dpif, host: HostFactory
) -> None:
    dp = "dprs"
    dpif.create_datapath(dp)
    _, port_if = host("10.9.1.1/24")
    port = dpif.add_vport(dp, Vport(port_if)).port_no or 0
    assert not any(dpif.add_flows(dp, [_flow(port, i, []) for i in range(300)]))
    # No packet: idle since the first pass saw them, gone at the next one.
    revalidator = Revalidator(idle=0.05)
    sweeper = Sweeper(revalidator, Dpif(dpif.endpoint), dp, lambda: 0, interval=1.0)
    sweeper.start()
    try:
        for passes in (1, 2):
            sweeper.request(_view("192.168.0.2"), frozenset(), False)
            deadline = time.monotonic() + 10
            while revalidator.passes < passes and time.monotonic() < deadline:
                time.sleep(0.1)
            assert revalidator.deleted_idle == (0 if passes == 1 else 300)
    finally:
        sweeper.stop()
    assert not sweeper.alive
    assert revalidator.passes == 2
    assert not list(dpif.dump_flows(dp))


def test_a_pass_gives_way_while_misses_come_in(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    rounds = [0]
    pacer = Pacer(lambda: rounds[0], per_slice=0.0)
    pacer()
    rounds[0] += 1  # a miss handler handled a round
    pacer()
    pacer()
    assert slept[0] < BUSY_PAUSE and slept[1] >= BUSY_PAUSE and slept[2] < BUSY_PAUSE


def test_a_stopping_sweeper_abandons_the_pass_under_way() -> None:
    stop = threading.Event()
    pacer = Pacer(lambda: 0, per_slice=0.0, stop=stop)
    pacer()  # not stopping: carries on
    stop.set()
    with pytest.raises(Stopped):
        pacer()
