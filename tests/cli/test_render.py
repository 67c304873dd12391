"""Tables and JSON from constructed objects, against snapshots and the documented keys."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from rich.console import Console, RenderableType

from odpctl.present import jsonout, odptext, tables

from .samples import NOW, UFID_TEXT, datapath, flows, ports


def draw(renderable: RenderableType, width: int = 100) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False).print(renderable)
    return out.getvalue()


def test_datapath_list(snapshot: Callable[[str, str], None]) -> None:
    dp = datapath()
    snapshot("dp-list.txt", draw(tables.datapath_list([dp], {"dp0": 5})))


def test_datapath_view(snapshot: Callable[[str, str], None]) -> None:
    view = tables.datapath_view(datapath(), ports(), stats=False, dpif_type="system")
    snapshot("dp-show.txt", draw(view))


def test_port_table_statistics(snapshot: Callable[[str, str], None]) -> None:
    snapshot("vport-list-s.txt", draw(tables.port_table(ports(), stats=True), width=120))


def test_flow_table(snapshot: Callable[[str, str], None]) -> None:
    snapshot("flow-dump.txt", draw(tables.flow_table(flows(), NOW, total=5, verbose=False)))


def test_flow_table_more(snapshot: Callable[[str, str], None]) -> None:
    table = tables.flow_table(flows(), NOW, total=3, verbose=True, port_names={1: "vx0"})
    snapshot("flow-dump-m.txt", draw(table, width=140))


def test_no_colour_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    tables.make_console().print(tables.port_table(ports(), stats=False))
    assert "\x1b[" not in capsys.readouterr().out


def test_no_colour_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    console = tables.make_console()
    assert console.no_color


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (0.042, "0.04s"),
        (9.5, "9.50s"),
        (42, "42s"),
        (192, "3m12s"),
        (7500, "2h05m"),
    ],
)
def test_ago(seconds: float | None, text: str) -> None:
    assert tables.ago(seconds) == text


# --- JSON -------------------------------------------------------------------------------


def test_datapath_json_keys() -> None:
    doc = jsonout.datapath_json(datapath(), ports=ports())
    assert list(doc) == list(jsonout.DATAPATH_KEYS)
    assert doc["lookups"] == {"hit": 1500, "missed": 12, "lost": 3}
    assert doc["masks"] == {"hit": 1800, "total": 2, "hit_per_packet": 1.1905}
    assert doc["cache"] == {"hit": 1200, "hit_rate": 79.3651, "size": 256}
    assert doc["features"] == ["unaligned", "vport-pids"]
    assert "ports" not in jsonout.datapath_json(datapath())


def test_port_json_keys() -> None:
    for vport in ports():
        assert list(jsonout.port_json(vport)) == list(jsonout.PORT_KEYS)
    tunnel = jsonout.port_json(ports()[3])
    assert tunnel["type"] == "vxlan"
    assert tunnel["vport_type"] == "netdev"
    assert tunnel["upcall"] == {"success": 5, "fail": 1}
    assert jsonout.port_json(ports()[2])["options"] == {"dst_port": "4790"}
    # The geneve port on its default UDP port: --json says so, the table does not.
    geneve = ports()[4]
    assert geneve.dst_port == 6081
    assert jsonout.port_json(geneve)["options"] == {"dst_port": "6081"}
    assert odptext.port_options(geneve) == {}


def test_flow_json_keys() -> None:
    f1, f2, f3 = (jsonout.flow_json(f, NOW) for f in flows())
    for doc in (f1, f2, f3):
        assert list(doc) == list(jsonout.FLOW_KEYS)
    assert f1 == {
        "ufid": None,
        "match": "in_port(5),eth(),eth_type(0x0800),ipv4(src=10.0.0.1,frag=no)",
        "actions": "1",
        "in_port": 5,
        "packets": 12,
        "bytes": 1176,
        "used": 1.234,
        "tcp_flags": None,
    }
    assert f2["ufid"] == UFID_TEXT
    assert f2["used"] is None
    assert f3["tcp_flags"] == "S."


def test_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    jsonout.emit({"flows": [jsonout.flow_json(f, NOW) for f in flows()]})
    assert len(json.loads(capsys.readouterr().out)["flows"]) == 3
