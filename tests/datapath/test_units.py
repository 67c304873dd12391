"""The userspace datapath's parts, without sockets or namespaces.

Key parsing and encoding are checked against bytes the kernel datapath sent
(captured in the user-mode-linux test bed), extraction against the keys the
kernel put in upcalls of the same packets.
"""

from __future__ import annotations

import os
import random
import struct

import pytest

from odpctl.datapath import csum
from odpctl.datapath.actcache import checked_actions
from odpctl.datapath.classifier import DpFlow, FlowTable
from odpctl.datapath.errors import RequestError
from odpctl.datapath.execute import compile_actions, run
from odpctl.datapath.extract import extract, signature
from odpctl.datapath.keyencode import put_flat_key, put_key
from odpctl.datapath.keyparse import parse_key_only, parse_match, parse_metadata_key
from odpctl.datapath.layout import KEY_SIZE, META_SIZE, Key, port_meta, unpack
from odpctl.datapath.packet import (
    F_NEEDS_CSUM,
    GSO_TCPV4,
    VNET,
    ZERO_VNET,
    Packet,
    frames,
    offload_header,
)
from odpctl.datapath.validate import validate_actions
from odpctl.netlink.attrs import iter_attrs
from odpctl.odp.actions import encode_actions
from odpctl.odp.keys import encode_key
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import KeyAttr

# --- keys: parse and encode as the kernel does ------------------------------------


def _attrs(data: bytes, nested: bool = True) -> list[tuple[int, object]]:
    """Key attributes as (type, hex) pairs, ENCAP and TUNNEL opened up."""
    out: list[tuple[int, object]] = []
    for kind, payload in iter_attrs(data):
        if nested and kind == KeyAttr.ENCAP:
            out.append((kind, _attrs(payload)))
        elif nested and kind == KeyAttr.TUNNEL:
            out.append((kind, _attrs(payload, nested=False)))
        else:
            out.append((kind, payload.hex()))
    return out


def _dump(text: str) -> tuple[list[tuple[int, object]], list[tuple[int, object]]]:
    """KEY and MASK of a flow installed from ``text``, as the server dumps them."""
    key, mask = parse_key(text)
    m = parse_match(encode_key(key), encode_key(mask))
    k, masked, mk = unpack(m.key), unpack(m.masked_key()), unpack(m.mask)
    return _attrs(put_key(k, k, m.key_opts, False)), _attrs(put_key(masked, mk, m.mask_opts, True))


META = [(20, "00000000"), (19, "00000000"), (2, "00000000")]
AFTER_PORT = [(15, "00000000"), (22, "00000000"), (24, "00000000"), (25, "00" * 16)]


def test_masked_flow_reads_back_as_the_kernel_writes_it() -> None:
    key, mask = _dump("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.1.0.0/255.255.0.0)")
    assert key == [
        *META,
        (3, "01000000"),
        *AFTER_PORT,
        (4, "00" * 12),
        (6, "0800"),
        (7, "0a0100000000000000000000"),
    ]
    assert mask == [
        *META,
        (16, [(4, "00")]),
        (3, "ffffffff"),
        *AFTER_PORT,
        (4, "00" * 12),
        (6, "ffff"),
        (7, "ffff00000000000000000000"),
    ]


def test_flow_without_in_port_has_a_half_mask_in_port() -> None:
    key, mask = _dump("eth(),eth_type(0x0806),arp()")
    assert (3, "01000000") not in key and all(k != 3 for k, _ in key)
    assert (3, "0000ffff") in mask  # in_port wildcarded: the kernel's 0xffff0000


def test_vlan_and_tunnel_flows_read_back_as_the_kernel_writes_them() -> None:
    key, mask = _dump(
        "in_port(2),eth(),eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0800),ipv4())"
    )
    assert key[-3:] == [(6, "8100"), (5, "1005"), (1, [(6, "0800"), (7, "00" * 12)])]
    assert mask[-3:] == [(6, "ffff"), (5, "1fff"), (1, [(6, "ffff"), (7, "00" * 12)])]
    key, mask = _dump(
        "tunnel(tun_id=0x2a,src=192.168.99.2,dst=192.168.99.1,ttl=64/0,"
        "flags(+key)),in_port(7),eth(),eth_type(0x0800),ipv4()"
    )
    assert key[3] == (16, [(0, "000000000000002a"), (1, "c0a86302"), (2, "c0a86301"), (4, "40")])
    assert mask[3] == (16, [(0, "ff" * 8), (1, "ff" * 4), (2, "ff" * 4), (4, "00")])


def test_ipv6_keys_carry_extension_header_bits() -> None:
    key, _ = _dump(
        "in_port(2),eth(),eth_type(0x86dd),ipv6(src=fe80::1,proto=58),icmpv6(type=135),"
        "nd(target=fe80::2)"
    )
    kinds = [k for k, _ in key]
    assert kinds[-4:] == [8, 32, 12, 14]  # IPV6, IPV6_EXTHDRS, ICMPV6, ND


@pytest.mark.parametrize(
    "text",
    [
        "in_port(1),eth(),eth_type(0x0800)",  # IPv4 attribute missing
        "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp()",  # TCP flags missing
        "in_port(70000),eth()",  # port beyond DP_MAX_PORTS
        "eth_type(0x0800),ipv4()",  # no Ethernet header... a layer-3 flow
        "in_port(1),eth(),eth_type(0x0100)",  # an EtherType below 0x600
        "tunnel(tun_id=1,dst=1.2.3.4),in_port(1),eth()",  # a tunnel without TTL
    ],
)
def test_refused_keys(text: str) -> None:
    key, mask = parse_key(text)
    with pytest.raises(RequestError) as info:
        parse_match(encode_key(key), encode_key(mask))
    assert info.value.errno in (22, 95)


def test_exact_match_when_no_mask_is_given() -> None:
    key, _ = parse_key(
        "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),"
        "eth_type(0x0806),arp(sip=1.2.3.4)"
    )
    m = parse_match(encode_key(key), None)
    mk = unpack(m.mask)
    assert mk.in_port == 0xFFFF and mk.eth_type == 0xFFFF and mk.ipv4_src == 0xFFFFFFFF
    assert mk.eth_src == b"\xff" * 6 and mk.ip_proto == 0xFF
    assert mk.recirc_id == 0  # not in the key: stays wildcarded


def test_key_only_match_finds_nothing_it_should_not() -> None:
    key, _ = parse_key("in_port(1),eth(),eth_type(0x0806),arp()")
    m = parse_key_only(encode_key(key))
    assert m.mask == bytes(KEY_SIZE)


# --- extraction ----------------------------------------------------------------------


def tcp_frame(flags: int = 0x18, payload: bytes = b"hello") -> bytes:
    ip = struct.pack(
        "!BBHHHBBHII", 0x45, 0x10, 40 + len(payload), 9, 0x4000, 63, 6, 0, 0x0A000001, 0x0A000002
    )
    tcp = struct.pack("!HHIIBBHHH", 4000, 80, 1, 2, 0x50, flags, 100, 0, 0)
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp + payload


def test_arp_key_is_the_kernels() -> None:
    # The kernel's upcall key for this very frame (captured in the test bed).
    frame = bytes.fromhex(
        "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002"
    )
    k = unpack(port_meta(1) + extract(frame))
    got = put_key(k, k, b"", False)
    assert _attrs(got) == [
        *META,
        (3, "01000000"),
        *AFTER_PORT,
        (4, "020000000001ffffffffffff"),
        (6, "0806"),
        (13, "0a0000010a00000200010200000000010000000000000000"),
    ]


def test_tcp_key_fields() -> None:
    k = unpack(port_meta(3) + extract(tcp_frame()))
    assert (k.in_port, k.eth_type, k.ip_proto, k.ip_tos, k.ip_ttl, k.ip_frag) == (
        3,
        0x0800,
        6,
        0x10,
        63,
        0,
    )
    assert (k.ipv4_src, k.ipv4_dst, k.tp_src, k.tp_dst, k.tcp_flags) == (
        0x0A000001,
        0x0A000002,
        4000,
        80,
        0x18,
    )


def test_truncated_and_odd_frames_never_raise() -> None:
    rng = random.Random(3)
    base = tcp_frame()
    for _ in range(20000):
        data = bytearray(base[: rng.randrange(0, len(base) + 1)])
        for _ in range(rng.randrange(0, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        extract(bytes(data))
        signature(b"\0" * 10 + bytes(data))


def test_equal_signatures_mean_equal_keys() -> None:
    rng = random.Random(11)
    base = ZERO_VNET + tcp_frame()
    sig, key = signature(base), extract(base, 10)
    assert sig is not None
    same = 0
    for _ in range(30000):
        data = bytearray(base)
        data[rng.randrange(10, len(data))] = rng.randrange(256)
        if signature(bytes(data)) == sig:
            same += 1
            assert extract(bytes(data), 10) == key
    assert same > 1000  # what the signature leaves out does vary


# --- checksums, offloads, segmentation ----------------------------------------------------


def test_incremental_checksum_update_matches_a_recompute() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        data = bytearray(os.urandom(40))
        data[10:12] = b"\0\0"
        data[10:12] = struct.pack("!H", csum.checksum(data))
        at = rng.randrange(12, 38) & ~1
        old = bytes(data[at : at + 2])
        new = os.urandom(2)
        data[at : at + 2] = new
        data[10:12] = struct.pack("!H", csum.update(struct.unpack("!H", data[10:12])[0], old, new))
        assert csum.ones_sum(data) == 0xFFFF


def _tcp_checksum_ok(frame: bytes) -> bool:
    ihl = (frame[14] & 0x0F) * 4
    l4 = frame[14 + ihl :]
    pseudo = csum.pseudo(frame[26:30], frame[30:34], 6, len(l4))
    return csum.ones_sum(l4, pseudo) == 0xFFFF


def test_gso_super_packet_is_cut_into_valid_segments() -> None:
    payload = bytes(range(256)) * 40  # 10240 bytes
    frame = bytearray(tcp_frame(flags=0x19, payload=payload))  # FIN+PSH+ACK on the whole
    l4 = 34
    pseudo = csum.pseudo(bytes(frame[26:30]), bytes(frame[30:34]), 6, len(frame) - l4)
    struct.pack_into("!H", frame, l4 + 16, pseudo)  # a partial checksum, as TSO leaves it
    vnet = VNET.pack(F_NEEDS_CSUM, GSO_TCPV4, 54, 1448, l4, 16)
    segs = frames(vnet + bytes(frame))
    assert len(segs) == 8
    assert b"".join(s[54:] for s in segs) == payload
    for i, s in enumerate(segs):
        assert _tcp_checksum_ok(s)
        assert csum.ones_sum(s[14:34]) == 0xFFFF  # IP header checksum
        assert struct.unpack_from("!I", s, 38)[0] == 1 + i * 1448  # sequence numbers
        assert s[47] & 0x09 == (0x09 if i == 7 else 0)  # FIN and PSH on the last only


def test_partial_checksum_is_completed() -> None:
    frame = bytearray(tcp_frame())
    pseudo = csum.pseudo(bytes(frame[26:30]), bytes(frame[30:34]), 6, len(frame) - 34)
    struct.pack_into("!H", frame, 50, pseudo)
    (done,) = frames(VNET.pack(F_NEEDS_CSUM, 0, 0, 0, 34, 16) + bytes(frame))
    assert _tcp_checksum_ok(done)


def test_offload_header_recognises_a_partial_checksum_only() -> None:
    frame = bytearray(tcp_frame())
    pseudo = csum.pseudo(bytes(frame[26:30]), bytes(frame[30:34]), 6, len(frame) - 34)
    struct.pack_into("!H", frame, 50, pseudo)
    assert VNET.unpack(offload_header(bytes(frame)))[0] == F_NEEDS_CSUM
    (done,) = frames(offload_header(bytes(frame)) + bytes(frame))
    assert _tcp_checksum_ok(done)
    assert offload_header(done) in (ZERO_VNET, VNET.pack(F_NEEDS_CSUM, 0, 0, 0, 34, 16))
    # Completing a complete checksum is harmless either way.
    (again,) = frames(offload_header(done) + done)
    assert again == done


# --- the classifier -------------------------------------------------------------------------


def _flow(text: str) -> DpFlow:
    key, mask = parse_key(text)
    return DpFlow(parse_match(encode_key(key), encode_key(mask)), None)


def test_classifier_finds_the_megaflow_and_caches_it() -> None:
    table = FlowTable()
    wide = _flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0)")
    narrow = _flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2)")
    table.insert(narrow)
    table.insert(wide)
    assert table.n_masks == 2
    key = port_meta(1) + extract(tcp_frame())  # to 10.0.0.2
    assert table.lookup(key) is narrow
    assert table.lookup(key) is narrow and table.cache_hit == 1
    table.remove(narrow)
    assert table.lookup(key) is wide  # the cache went with the change
    other = port_meta(2) + extract(tcp_frame())
    assert table.lookup(other) is None
    assert table.find_overlap(narrow.match) is wide


def test_exact_lookup_uses_the_unmasked_key() -> None:
    table = FlowTable()
    f = _flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0)")
    table.insert(f)
    same_key = _flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0)")
    other_key = _flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.9)")
    assert table.find_exact(same_key.match) is f
    assert table.find_exact(other_key.match) is None
    assert table.find_overlap(other_key.match) is f


# --- actions ---------------------------------------------------------------------------------


def test_set_tunnel_is_echoed_the_kernels_way() -> None:
    key, mask = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4()")
    m = parse_match(encode_key(key), encode_key(mask))
    actions = parse_actions(
        "set(tunnel(tun_id=0x2a,src=0.0.0.0,dst=192.168.99.2,ttl=64,tp_dst=4789,flags(df|key))),3"
    )
    echoed = encode_actions(validate_actions(encode_actions(actions), unpack(m.masked_key())))
    (set_action, output) = list(iter_attrs(echoed))
    ((_, tunnel),) = list(iter_attrs(set_action[1]))
    # ID, dst, TTL, DF, TP_DST: the zero source is left out, as the kernel does.
    assert [k for k, _ in iter_attrs(tunnel)] == [0, 2, 4, 5, 10]
    assert output == (1, struct.pack("=I", 3))


# --- running actions on packets ---------------------------------------------------------------


class Recorder:
    """A runtime that keeps what the actions output, upcall and recirculate."""

    def __init__(self) -> None:
        self.out: list[tuple[int, bytes]] = []
        self.upcalls: list[bytes] = []
        self.recirculated: list[bytes] = []

    def output(self, pkt: Packet, port_no: int) -> None:
        frame = frames(pkt.data)[0]
        self.out.append((port_no, frame[: len(frame) - pkt.cutlen] if pkt.cutlen else frame))

    def userspace(self, pkt: Packet, _action: object, _actions_attr: bytes | None) -> None:
        self.upcalls.append(bytes(pkt.data))

    def recirculate(self, pkt: Packet, _depth: int) -> None:
        self.recirculated.append(pkt.key())


def execute(frame: bytes, actions_text: str, key_text: str) -> Recorder:
    key, mask = parse_key(key_text)
    m = parse_match(encode_key(key), encode_key(mask))
    checked = validate_actions(encode_actions(parse_actions(actions_text)), unpack(m.masked_key()))
    rec = Recorder()
    run(compile_actions(checked), rec, Packet(ZERO_VNET + frame, port_meta(1)), 0)
    return rec


def udp6_frame() -> bytes:
    payload = b"udp payload"
    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    udp = bytearray(struct.pack("!HHHH", 1000, 2000, 8 + len(payload), 0) + payload)
    struct.pack_into("!H", udp, 6, csum.checksum(udp, csum.pseudo(src, dst, 17, len(udp))))
    ip = struct.pack("!IHBB16s16s", 0x60000000, len(udp), 17, 64, src, dst)
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd" + ip + bytes(udp)


def _udp6_ok(frame: bytes) -> bool:
    l4 = frame[54:]
    return csum.ones_sum(l4, csum.pseudo(frame[22:38], frame[38:54], 17, len(l4))) == 0xFFFF


def test_rewrites_keep_every_checksum_right() -> None:
    v4 = "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0/0)"
    frame = bytearray(tcp_frame())
    struct.pack_into("!H", frame, 24, csum.checksum(frame[14:34]))  # a real IP checksum
    tcp_sum = csum.checksum(
        frame[34:], csum.pseudo(bytes(frame[26:30]), bytes(frame[30:34]), 6, len(frame) - 34)
    )
    struct.pack_into("!H", frame, 50, tcp_sum)
    assert _tcp_checksum_ok(bytes(frame))
    rec = execute(
        bytes(frame),
        "set(ipv4(src=192.0.2.7/255.255.255.255,ttl=9/255)),"
        "set(tcp(dst=8080)),set(eth(src=02:00:00:00:00:aa)),5",
        v4,
    )
    ((port, out),) = rec.out
    assert port == 5
    assert out[26:30] == bytes([192, 0, 2, 7]) and out[22] == 9
    assert struct.unpack_from("!H", out, 36)[0] == 8080
    assert out[6:12] == bytes.fromhex("0200000000aa")
    assert csum.ones_sum(out[14:34]) == 0xFFFF and _tcp_checksum_ok(out)

    v6 = "in_port(1),eth(),eth_type(0x86dd),ipv6(proto=17),udp()"
    rec = execute(
        udp6_frame(),
        "set(ipv6(dst=2001:db8::9/ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
        "ffff,hlimit=3/255)),set(udp(src=53)),1",
        v6,
    )
    ((_, out),) = rec.out
    assert out[38:54] == bytes.fromhex("20010db8000000000000000000000009") and out[21] == 3
    assert struct.unpack_from("!H", out, 54)[0] == 53 and _udp6_ok(out)


def test_vlan_push_pop_and_clone_copies() -> None:
    arp = "in_port(1),eth(),eth_type(0x0806),arp()"
    frame = bytes.fromhex(
        "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002"
    )
    rec = execute(
        frame, "clone(push_vlan(vid=10,pcp=5),2),push_vlan(vid=20,pcp=0),3,pop_vlan,4", arp
    )
    (p2, tagged10), (p3, tagged20), (p4, untagged) = rec.out
    assert (p2, p3, p4) == (2, 3, 4)
    assert tagged10[12:16] == bytes.fromhex("8100a00a") and tagged10[16:] == frame[12:]
    assert tagged20[12:16] == bytes.fromhex("81000014")
    assert untagged == frame  # the clone's tag stayed in the clone


def test_trunc_check_pkt_len_recirc_and_drop() -> None:
    arp = "in_port(1),eth(),eth_type(0x0806),arp()"
    frame = bytes.fromhex(
        "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002"
    )
    rec = execute(frame, "trunc(20),2,3", arp)
    assert [len(f) for _, f in rec.out] == [20, 42]  # one output only
    rec = execute(
        frame, "check_pkt_len(size=41,gt(5),le(6)),check_pkt_len(size=42,gt(7),le(8))", arp
    )
    assert [p for p, _ in rec.out] == [5, 8]
    rec = execute(frame, "hash(l4(0)),recirc(9)", arp)
    (key,) = rec.recirculated
    k = unpack(key)
    assert k.recirc_id == 9 and k.dp_hash != 0
    rec = execute(frame, "2,drop", arp)
    assert [p for p, _ in rec.out] == [2]


def test_dec_ttl() -> None:
    v4 = "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0/0)"
    frame = bytearray(tcp_frame())
    struct.pack_into("!H", frame, 24, csum.checksum(frame[14:34]))
    rec = execute(bytes(frame), "dec_ttl(le_1(9)),2", v4)
    ((port, out),) = rec.out
    assert port == 2 and out[22] == 62 and csum.ones_sum(out[14:34]) == 0xFFFF
    frame[22] = 1
    rec = execute(bytes(frame), "dec_ttl(le_1(9)),2", v4)
    assert [p for p, _ in rec.out] == [9]  # expired: the le_1 actions, and nothing after


def test_udp_and_ipv6_super_packets_are_cut_too() -> None:
    from odpctl.datapath.packet import GSO_TCPV6, GSO_UDP_L4

    payload = os.urandom(5001)  # odd, so the last segment is odd too
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 28 + len(payload), 77, 0, 64, 17, 0, 1, 2)
    udp = struct.pack("!HHHH", 5, 6, 8 + len(payload), 0)
    frame = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + udp + payload
    segs = frames(VNET.pack(F_NEEDS_CSUM, GSO_UDP_L4, 42, 1000, 34, 6) + frame)
    assert [len(s) - 42 for s in segs] == [1000] * 5 + [1]
    for i, s in enumerate(segs):
        assert csum.ones_sum(s[14:34]) == 0xFFFF
        assert struct.unpack_from("!H", s, 18)[0] == 77 + i  # IP IDs
        l4 = s[34:]
        assert struct.unpack_from("!H", l4, 4)[0] == len(l4)
        assert csum.ones_sum(l4, csum.pseudo(s[26:30], s[30:34], 17, len(l4))) == 0xFFFF
    assert b"".join(s[42:] for s in segs) == payload

    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    data = os.urandom(3000)
    tcp = struct.pack("!HHIIBBHHH", 1, 2, 1000, 0, 0x50, 0x18, 9, 0, 0)
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, 20 + len(data), 6, 64, src, dst)
    frame = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd" + ip6 + tcp + data
    segs = frames(VNET.pack(F_NEEDS_CSUM, GSO_TCPV6, 74, 1400, 54, 16) + frame)
    assert len(segs) == 3
    for s in segs:
        l4 = s[54:]
        assert struct.unpack_from("!H", s, 18)[0] == len(l4)
        assert csum.ones_sum(l4, csum.pseudo(src, dst, 6, len(l4))) == 0xFFFF


def test_too_big_tcp_frames_are_made_to_fit_the_device() -> None:
    from odpctl.datapath.packet import fit_mtu

    frame = bytearray(tcp_frame(payload=os.urandom(2900)))
    struct.pack_into("!H", frame, 16, len(frame) - 14)
    struct.pack_into("!H", frame, 24, csum.checksum(frame[14:34]))
    length = len(frame) - 34
    struct.pack_into(
        "!H",
        frame,
        50,
        csum.checksum(frame[34:], csum.pseudo(bytes(frame[26:30]), bytes(frame[30:34]), 6, length)),
    )
    assert _tcp_checksum_ok(bytes(frame))
    data = ZERO_VNET + bytes(frame)
    assert fit_mtu(data, 3000) is data  # it fits already
    fitted = fit_mtu(data, 1400)
    assert fitted is not None
    flags, gso_type, _hdr, gso_size, _start, _off = VNET.unpack_from(fitted)
    assert (flags, gso_type, gso_size) == (F_NEEDS_CSUM, GSO_TCPV4, 1400 - 40)
    segs = frames(fitted)
    assert all(len(s) - 14 <= 1400 and _tcp_checksum_ok(s) for s in segs)
    assert b"".join(s[54:] for s in segs) == bytes(frame[54:])
    udp = (
        ZERO_VNET
        + b"\x02" * 12
        + b"\x08\x00"
        + struct.pack("!BBHHHBBHII", 0x45, 0, 3000, 0, 0, 64, 17, 0, 1, 2)
        + bytes(2980)
    )
    assert fit_mtu(udp, 1400) is None  # one datagram cannot be cut
    # GSO whose segments were guessed for a 1500-byte MTU: cut smaller.
    guessed = bytearray(fitted)
    VNET.pack_into(guessed, 0, F_NEEDS_CSUM, GSO_TCPV4, 54, 1460, 34, 16)
    assert fit_mtu(guessed, 1500) is guessed
    refitted = fit_mtu(guessed, 1300)
    assert refitted is not None and VNET.unpack_from(refitted)[3] == 1300 - 40
    assert all(len(s) - 14 <= 1300 and _tcp_checksum_ok(s) for s in frames(refitted))


def _masked_key(key_text: str) -> Key:
    key, mask = parse_key(key_text)
    return unpack(parse_match(encode_key(key), encode_key(mask)).masked_key())


def test_remembered_actions_are_checked_against_each_key() -> None:
    data = encode_actions(parse_actions("set(tcp(src=80)),2"))
    tcp = _masked_key("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0)")
    first, program = checked_actions(data, tcp)
    again, same = checked_actions(data, tcp)
    assert again == first and same is program  # checked and compiled once
    again.clear()  # a caller's list is its own
    assert checked_actions(data, tcp)[0] == first
    # The same bytes on a key they do not fit are refused, every time.
    udp = _masked_key("in_port(1),eth(),eth_type(0x0800),ipv4(proto=17),udp()")
    for _ in range(2):
        with pytest.raises(RequestError):
            checked_actions(data, udp)


@pytest.mark.parametrize(
    "text",
    [
        "in_port(1),eth(),eth_type(0x0806),arp()",
        "in_port(2),eth(),eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0800),ipv4(proto=6),"
        "tcp(),tcp_flags(0))",
        "tunnel(tun_id=7,src=10.0.0.1,dst=10.0.0.2,ttl=64,tp_dst=4789,flags(+key)),"
        "in_port(3),eth(),eth_type(0x88b6)",
        "tunnel(tun_id=7,src=10.0.0.1,dst=10.0.0.2,ttl=64,vxlan(gbp(id=9)),flags(+key)),"
        "in_port(3),eth(),eth_type(0x88b6)",
    ],
)
def test_a_packets_key_with_remembered_metadata_is_put_key(text: str) -> None:
    key, mask = parse_key(text)
    m = parse_match(encode_key(key), encode_key(mask))
    k = unpack(m.key)
    for _ in range(2):  # encoded, then remembered
        assert put_flat_key(m.key, m.key_opts) == put_key(k, k, m.key_opts, False)
    # Another packet of the same port and peer: the metadata is reused, the rest is its own.
    other = m.key[:META_SIZE] + b"\x02\x99" + m.key[META_SIZE + 2 :]
    o = unpack(other)
    assert put_flat_key(other, m.key_opts) == put_key(o, o, m.key_opts, False)


def test_a_remembered_mask_is_checked_against_each_key() -> None:
    vlan_key, vlan_mask = parse_key(
        "in_port(2),eth(),eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0800),ipv4(proto=6),"
        "tcp(),tcp_flags(0))"
    )
    mask = encode_key(vlan_mask)
    first = parse_match(encode_key(vlan_key), mask)
    assert parse_match(encode_key(vlan_key), mask) == first  # remembered, the same
    # The same mask bytes on a key without a VLAN: refused, every time.
    plain, _ = parse_key("in_port(2),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0)")
    for _ in range(2):
        with pytest.raises(RequestError, match="encap mask"):
            parse_match(encode_key(plain), mask)


def test_an_execute_key_is_parsed_once_and_a_refused_one_every_time() -> None:
    key, _ = parse_key("in_port(3)")
    data = encode_key(key)
    meta, opts = parse_metadata_key(data)
    assert unpack(meta).in_port == 3 and opts == b""
    assert parse_metadata_key(data) is parse_metadata_key(data)
    bad, _ = parse_key("in_port(70000)")  # past DP_MAX_PORTS
    for _ in range(2):
        with pytest.raises(RequestError):
            parse_metadata_key(encode_key(bad))
