"""``odpctl peer graph`` on a real overlay: three hosts on the userspace datapath,
drawn in the terminal, as Graphviz text, and as an SVG rendered to PNG by librsvg."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from odpctl.cli import run
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


@pytest.fixture(scope="module", name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpgr")
    try:
        built = OverlayLab(lab, hosts=3, containers=1, datapath="userspace")
        built.start_routers()
        built.wait_ready(timeout=60, overlay="fastdp")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


Graph = Callable[..., str]


@pytest.fixture(name="graph")
def graph_fixture(overlay: OverlayLab, capsys: pytest.CaptureFixture[str]) -> Graph:
    def graph(*args: str) -> str:
        host = overlay.hosts[0]
        capsys.readouterr()
        assert (
            run(
                [
                    "--netns",
                    host.ns,
                    "peer",
                    "graph",
                    "--control",
                    str(host.control),
                    "--interval",
                    "0.5",
                    *args,
                ]
            )
            == 0
        )
        return capsys.readouterr().out

    return graph


def test_terminal_tree(overlay: OverlayLab, graph: Graph) -> None:
    out = graph()
    assert out.startswith("mesh: 3 peer(s), 3 connection(s)")
    for i in range(3):
        status = overlay.status(i)
        assert f"host{i}  {status['name']}, short ID {status['short_id']}" in out
    assert "(this host)" in out and "└── c0" in out
    assert out.count("host1: fastdp; RTT ") == 1  # host0's own connection, with its RTT
    assert "host2: connected (as gossiped)" in out  # host1's, known by gossip


def test_dot_shows_traffic_while_containers_talk(overlay: OverlayLab, graph: Graph) -> None:
    a, b = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
    assert overlay.ping(a, b)
    pinging = subprocess.Popen(
        ["ip", "netns", "exec", a.ns, "ping", "-q", "-i", "0.05", "-s", "1000", b.address],
        stdout=subprocess.DEVNULL,
    )
    try:
        text = graph("--format", "dot")
    finally:
        pinging.kill()
        pinging.wait()
    assert text.startswith("graph mesh {") and text.rstrip().endswith("}")
    names = [overlay.status(i)["name"] for i in range(3)]
    (edge,) = [line for line in text.splitlines() if f'"{names[0]}" -- "{names[1]}"' in line]
    assert "fastdp" in edge and "color=darkgreen" in edge
    out_rate = edge.split("out ")[1].split(",")[0]
    assert out_rate != "0 B/s", edge  # 20 pings of 1 kB a second, through the tunnel
    assert sum(1 for line in text.splitlines() if " -- " in line) == 3


@pytest.mark.skipif(
    shutil.which("dot") is None or shutil.which("rsvg-convert") is None,
    reason="needs graphviz and librsvg2-bin (./setup installs them)",
)
@pytest.mark.usefixtures("overlay")
def test_svg_renders(graph: Graph, tmp_path: Path) -> None:
    svg = graph("--format", "svg")
    assert "<svg" in svg and "host1" in svg
    (tmp_path / "mesh.svg").write_text(svg)
    png = tmp_path / "mesh.png"
    done = subprocess.run(
        ["rsvg-convert", str(tmp_path / "mesh.svg"), "-o", str(png)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 300 and height > 50
