"""The library's Dpif against the real openvswitch kernel module.

Each test works in a network namespace of its own, so that datapaths, ports
and flows of one test can never be seen by another (a datapath belongs to the
namespace it was created in).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator

import pytest

from odpctl.errors import AlreadyExistsError, KernelRefusedError, NotFoundError
from odpctl.odp.actions import Output
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.keys import Eth, FlowKey, Ipv4, Tunnel
from odpctl.odp.uapi import DpFeature, KeyAttr, VportType
from odpctl.odp.vport import Vport

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


@pytest.fixture
def ns(netns: Callable[[], str]) -> str:
    return netns()


@pytest.fixture
def dpif(ns: str) -> Iterator[Dpif]:
    with Dpif.open("kernel", netns=ns) as dpif:
        yield dpif


def eth_key(in_port: int, src: bytes = MAC_A, dst: bytes = MAC_B) -> FlowKey:
    return FlowKey({KeyAttr.IN_PORT: in_port, KeyAttr.ETHERNET: Eth(src, dst)})


def exact_eth_mask() -> FlowKey:
    return FlowKey({KeyAttr.IN_PORT: 0xFFFFFFFF, KeyAttr.ETHERNET: Eth(b"\xff" * 6, b"\xff" * 6)})


# --- datapaths -------------------------------------------------------------------


def test_datapath_create_get_list_delete(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpa")
    assert dp.name == "dpa"
    assert dp.ifindex > 0
    assert dpif.get_datapath("dpa").ifindex == dp.ifindex
    assert dpif.get_datapath(dp.ifindex).name == "dpa"
    assert [d.name for d in dpif.list_datapaths()] == ["dpa"]
    dpif.delete_datapath("dpa")
    assert dpif.list_datapaths() == []
    with pytest.raises(NotFoundError, match="no datapath dpa"):
        dpif.get_datapath("dpa")


def test_datapath_features_are_negotiated(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpf")
    # Linux 6.1 offers both: what we asked for is what we got back.
    assert DpFeature.UNALIGNED in dp.features
    assert DpFeature.VPORT_PIDS in dp.features
    assert DpFeature.DISPATCH_UPCALL_PER_CPU not in dp.features


def test_per_cpu_dispatch_set_and_read_back(dpif: Dpif) -> None:
    with dpif.open_upcall_channel() as channel:
        dp = dpif.create_datapath("dpc", per_cpu_pids=[channel.port_id])
        assert DpFeature.DISPATCH_UPCALL_PER_CPU in dp.features
        assert dpif.get_datapath("dpc").per_cpu_pids == (channel.port_id,)


def test_datapath_stats_start_at_zero(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dps")
    assert (dp.hit, dp.missed, dp.lost, dp.flows) == (0, 0, 0, 0)
    assert dp.masks == 0
    assert dp.masks_cache_size is not None


def test_duplicate_datapath_is_refused(dpif: Dpif) -> None:
    dpif.create_datapath("dpd")
    with pytest.raises(AlreadyExistsError) as info:
        dpif.create_datapath("dpd")
    assert info.value.errno == errno.EEXIST


# --- vports --------------------------------------------------------------------------


def test_vport_netdev_internal_and_listing(dpif: Dpif, ns: str, run: Callable[..., str]) -> None:
    dp = dpif.create_datapath("dpv")
    run("ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", netns=ns)
    port = dpif.add_vport(dp, Vport("va", VportType.NETDEV, port_no=7))
    assert (port.name, port.port_no, port.type) == ("va", 7, VportType.NETDEV)
    internal = dpif.add_vport(dp, Vport("int0", VportType.INTERNAL))
    assert internal.port_no not in (0, 7)
    names = {(v.port_no, v.name, v.type) for v in dpif.list_vports(dp)}
    assert names == {
        (0, "dpv", VportType.INTERNAL),
        (7, "va", VportType.NETDEV),
        (internal.port_no, "int0", VportType.INTERNAL),
    }
    assert dpif.get_vport(dp, 7).name == "va"
    assert dpif.get_vport(dp, "int0").port_no == internal.port_no
    dpif.delete_vport(dp, "va")
    with pytest.raises(NotFoundError):
        dpif.get_vport(dp, "va")


@pytest.mark.parametrize(
    ("kind", "dst_port"), [(VportType.VXLAN, 4789), (VportType.GENEVE, 6081), (VportType.GRE, None)]
)
def test_tunnel_vports_with_options(dpif: Dpif, kind: VportType, dst_port: int | None) -> None:
    dp = dpif.create_datapath("dpt")
    port = dpif.add_vport(dp, Vport(f"t{kind.name.lower()}", kind))
    assert port.type == kind
    assert port.dst_port == dst_port


def test_vxlan_vport_with_custom_port(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpx")
    port = dpif.add_vport(dp, Vport("vx6784", VportType.VXLAN, dst_port=6784))
    assert dpif.get_vport(dp, port.port_no or 0).dst_port == 6784


def test_vport_stats_and_upcall_pids(dpif: Dpif, ns: str, run: Callable[..., str]) -> None:
    dp = dpif.create_datapath("dpu")
    run("ip", "link", "add", "pa", "type", "veth", "peer", "name", "pb", netns=ns)
    with dpif.open_upcall_channel() as channel:
        port = dpif.add_vport(dp, Vport("pa", upcall_pids=(channel.port_id,)))
        assert port.upcall_pids == (channel.port_id,)
        assert port.stats is not None and port.stats.rx_packets == 0
        changed = dpif.set_vport(dp, "pa", upcall_pids=[0])
        assert changed.upcall_pids == (0,)
        assert dpif.get_vport(dp, "pa").upcall_pids == (0,)


def test_vport_events_on_create_and_delete(dpif: Dpif, ns: str, run: Callable[..., str]) -> None:
    dp = dpif.create_datapath("dpe")
    run("ip", "link", "add", "ea", "type", "veth", "peer", "name", "eb", netns=ns)
    with dpif.watch_vports() as events:
        dpif.add_vport(dp, Vport("ea"))
        new = events.receive(timeout=5)
        assert new is not None and (new.kind, new.vport.name) == ("new", "ea")
        dpif.delete_vport(dp, "ea")
        gone = events.receive(timeout=5)
        assert gone is not None and (gone.kind, gone.vport.name) == ("del", "ea")


# --- flows -----------------------------------------------------------------------------


def test_flow_add_get_dump_delete(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpl")
    flow = Flow(eth_key(1), exact_eth_mask(), [Output(2)])
    dpif.add_flow(dp, flow)
    got = dpif.get_flow(dp, flow.key)
    assert got.key[KeyAttr.ETHERNET] == Eth(MAC_A, MAC_B)
    assert got.actions == [Output(2)]
    dumped = list(dpif.dump_flows(dp))
    assert len(dumped) == 1 and dumped[0].actions == [Output(2)]
    deleted = dpif.delete_flow(dp, flow.key)
    assert deleted.packets == 0
    assert list(dpif.dump_flows(dp)) == []


def test_create_only_refuses_duplicate_and_overlapping(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpo")
    dpif.add_flow(dp, Flow(eth_key(1), exact_eth_mask(), [Output(2)]))
    with pytest.raises(AlreadyExistsError):
        dpif.add_flow(dp, Flow(eth_key(1), exact_eth_mask(), [Output(3)]))
    # Same packets, coarser mask: the kernel looks the new key up under the
    # existing masks and finds the first flow, so this overlaps.
    wider = FlowKey({KeyAttr.IN_PORT: 0xFFFFFFFF, KeyAttr.ETHERNET: Eth(b"\xff" * 6, bytes(6))})
    with pytest.raises(AlreadyExistsError):
        dpif.add_flow(dp, Flow(eth_key(1), wider, [Output(3)]))


def test_upsert_and_modify_replace_actions(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpm")
    key, mask = eth_key(1), exact_eth_mask()
    dpif.add_flow(dp, Flow(key, mask, [Output(2)]))
    dpif.add_flow(dp, Flow(key, mask, [Output(3)]), replace=True)
    assert dpif.get_flow(dp, key).actions == [Output(3)]
    dpif.modify_flow(dp, Flow(key, mask, [Output(4)]), clear_stats=True)
    assert dpif.get_flow(dp, key).actions == [Output(4)]


def test_flow_by_ufid(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpi")
    ufid = bytes(range(16))
    dpif.add_flow(dp, Flow(eth_key(1), exact_eth_mask(), [Output(2)], ufid=ufid))
    got = dpif.get_flow(dp, ufid=ufid)
    assert got.ufid == ufid
    assert got.key[KeyAttr.IN_PORT] == 1
    dpif.delete_flow(dp, ufid=ufid)
    with pytest.raises(NotFoundError):
        dpif.get_flow(dp, ufid=ufid)


def test_flush_and_batched_add(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpb")
    flows = [
        Flow(eth_key(1, src=i.to_bytes(6, "big")), exact_eth_mask(), [Output(2)])
        for i in range(1, 501)
    ]
    results = dpif.add_flows(dp, flows)
    assert results == [None] * 500
    again = dpif.add_flows(dp, [*flows[:3], Flow(eth_key(9), exact_eth_mask(), [Output(2)])])
    assert [type(r) for r in again] == [AlreadyExistsError] * 3 + [type(None)]
    assert dpif.get_datapath(dp).flows == 501
    dpif.flush_flows(dp)
    assert dpif.get_datapath(dp).flows == 0


def test_tunnel_match_without_ttl_is_refused_with_reason(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpr")
    dpif.add_vport(dp, Vport("vxr", VportType.VXLAN))
    key = FlowKey(
        {
            KeyAttr.TUNNEL: Tunnel(tun_id=42, ipv4_src=0x0A000001, ipv4_dst=0x0A000002),
            KeyAttr.IN_PORT: 1,
            KeyAttr.ETHERNET: Eth(MAC_A, MAC_B),
        }
    )
    with pytest.raises(KernelRefusedError) as info:
        dpif.add_flow(dp, Flow(key, None, [Output(2)]))
    assert info.value.errno == errno.EINVAL


def test_ipv4_flow_with_partial_mask_reads_back(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dp4")
    key = FlowKey(
        {
            KeyAttr.IN_PORT: 1,
            KeyAttr.ETHERNET: Eth(MAC_A, MAC_B),
            KeyAttr.ETHERTYPE: 0x0800,
            KeyAttr.IPV4: Ipv4(0x0A000001, 0x0A000002, 47, 0, 64, 0),
        }
    )
    mask = FlowKey(
        {
            KeyAttr.IN_PORT: 0xFFFFFFFF,
            KeyAttr.ETHERNET: Eth(bytes(6), bytes(6)),
            KeyAttr.ETHERTYPE: 0xFFFF,
            KeyAttr.IPV4: Ipv4(0xFFFFFF00, 0, 0, 0, 0, 0),
        }
    )
    dpif.add_flow(dp, Flow(key, mask, [Output(2)]))
    (flow,) = list(dpif.dump_flows(dp))
    assert flow.mask is not None
    assert flow.mask[KeyAttr.IPV4].src == 0xFFFFFF00
    assert flow.key[KeyAttr.IPV4].src == 0x0A000001


def test_one_dpif_shared_by_threads(dpif: Dpif) -> None:
    # A router's handler threads may share a Dpif: replies must never cross.
    import threading

    dp = dpif.create_datapath("dpth")
    errors: list[BaseException] = []

    def worker(port: int) -> None:
        try:
            for i in range(100):
                key = eth_key(port, src=(port << 16 | i).to_bytes(6, "big"))
                dpif.add_flow(dp, Flow(key, exact_eth_mask(), [Output(port)]))
                assert dpif.get_flow(dp, key).actions == [Output(port)]
                assert dpif.get_datapath(dp).name == "dpth"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert dpif.get_datapath(dp).flows == 300
