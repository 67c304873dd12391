"""``--format odp``: ovs-dpctl's text, line for line, from constructed objects."""

from __future__ import annotations

import pytest

from odpctl.errors import ParseError
from odpctl.odp.uapi import VportType
from odpctl.odp.vport import Vport
from odpctl.present import odptext

from .samples import NOW, UFID, UFID_TEXT, datapath, flows, ports


def test_show_lines() -> None:
    assert list(odptext.show_lines(datapath(), ports())) == [
        "system@dp0:",
        "  lookups: hit:1500 missed:12 lost:3",
        "  flows: 3",
        "  masks: hit:1800 total:2 hit/pkt:1.19",  # per hit+missed, not lost: as OVS
        "  cache: hit:1200 hit-rate:79.37%",
        "  caches:",
        "    masks-cache: size:256",
        "  port 0: dp0 (internal)",
        "  port 1: vx0 (vxlan: dst_port=4790)",
        "  port 2: vxlan_sys_4789 (vxlan)",
        "  port 3: gnv0 (geneve)",
        "  port 5: va",
    ]


def test_show_statistics() -> None:
    lines = list(odptext.show_lines(datapath(), ports(), stats=True, dpif_type="userspace"))
    assert lines[0] == "userspace@dp0:"
    at = lines.index("  port 5: va")
    assert lines[at + 1 : at + 5] == [
        "    RX packets:3000 errors:0 dropped:2 overruns:? frame:?",
        "    TX packets:6000 errors:1 dropped:0 aborted:? carrier:?",
        "    collisions:?",
        "    RX bytes:300000 (293.0 KiB)  TX bytes:600000 (585.9 KiB)",
    ]
    at = lines.index("  port 2: vxlan_sys_4789 (vxlan)")
    assert lines[at + 5] == "    UPCALL packets:5 errors:1"
    assert lines[lines.index("  port 3: gnv0 (geneve)") + 1] == "    (no statistics)"


@pytest.mark.parametrize(
    ("vport", "line"),
    [
        (Vport("eth0", VportType.NETDEV, 4), "  port 4: eth0"),
        (
            Vport("vxlan_sys_4790", VportType.NETDEV, 4),
            "  port 4: vxlan_sys_4790 (vxlan: dst_port=4790)",
        ),
        (Vport("genev_sys_6081", VportType.NETDEV, 4), "  port 4: genev_sys_6081 (geneve)"),
        (Vport("gre_sys", VportType.NETDEV, 4), "  port 4: gre_sys (gre)"),
        (Vport("gre0", VportType.GRE, 4), "  port 4: gre0 (gre)"),
        (
            Vport("vx", VportType.VXLAN, 4, dst_port=4789, vxlan_gbp=True),
            "  port 4: vx (vxlan: exts=gbp)",
        ),
        (Vport("gnv", VportType.GENEVE, 4, dst_port=6082), "  port 4: gnv (geneve: dst_port=6082)"),
    ],
)
def test_port_line(vport: Vport, line: str) -> None:
    assert odptext.port_line(vport) == line


def test_flow_lines() -> None:
    f1, f2, f3 = flows()
    assert odptext.flow_line(f1, NOW) == (
        "in_port(5),eth(),eth_type(0x0800),ipv4(src=10.0.0.1,frag=no), packets:12, bytes:1176, "
        "used:1.234s, actions:1"
    )
    assert odptext.flow_line(f2, NOW) == (
        "in_port(1),eth(src=00:01:02:03:04:05),eth_type(0x0806), packets:0, bytes:0, used:never, "
        "actions:set(tunnel(tun_id=0x2a,dst=192.168.99.2,ttl=64,tp_dst=4789,flags(df|key))),2"
    )
    assert odptext.flow_line(f3, NOW).endswith(
        "packets:3000000, bytes:4500000000, used:0.042s, flags:S., actions:5,1"
    )


def test_flow_line_more_with_names() -> None:
    f2 = flows()[1]
    line = odptext.flow_line(f2, NOW, verbose=True, port_names={1: "vx0", 2: "vxlan_sys_4789"})
    assert line.startswith(f"ufid:{UFID_TEXT}, ")
    assert "in_port(vx0)" in line
    assert line.endswith(
        ", dp:ovs, actions:set(tunnel(tun_id=0x2a,dst=192.168.99.2,ttl=64,"
        "tp_dst=4789,flags(df|key))),vxlan_sys_4789"
    )


@pytest.mark.parametrize(
    ("flags", "text"),
    [(0, "none"), (0x02, "S"), (0x12, "S."), (0x11, "F."), (0x1FF, "SFPRU.ECN"), (0x200, "[200]")],
)
def test_tcp_flags(flags: int, text: str) -> None:
    assert odptext.tcp_flags_text(flags) == text


def test_ufid_round_trip() -> None:
    assert odptext.format_ufid(UFID) == f"ufid:{UFID_TEXT}"
    assert odptext.split_ufid(f"ufid:{UFID_TEXT},in_port(1)") == (UFID, "in_port(1)")
    assert odptext.split_ufid(f"  ufid:{UFID_TEXT.upper()} eth()") == (UFID, "eth()")
    assert odptext.split_ufid("in_port(1)") == (None, "in_port(1)")


def test_bad_ufid_points_at_it() -> None:
    with pytest.raises(ParseError) as info:
        odptext.split_ufid("ufid:1234,in_port(1)")
    assert info.value.column == 6
    assert info.value.caret() == "ufid:1234,in_port(1)\n     ^"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, ""),
        (1023, ""),
        (1536, " (1.5 KiB)"),
        (5 << 20, " (5.0 MiB)"),
        (3 << 30, " (3.0 GiB)"),
        (2 << 40, " (2.0 TiB)"),
    ],
)
def test_human_size(n: int, text: str) -> None:
    assert odptext.human_size(n) == text
