"""Who holds a netlink port id: real sockets of this process, and a table from a file."""

from __future__ import annotations

import os
from pathlib import Path

from odpctl.netlink.transport import KernelTransport
from odpctl.watch.owners import Owner, find_owners, netlink_sockets, socket_holders

TABLE = """\
sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
0000000022df1407 0   0          00000000 0        0        0     2        0        4
00000000aaaaaaaa 16  4242       00000000 0        0        0     2        0        9001
00000000bbbbbbbb 16  0          00000000 0        0        0     2        0        9002
00000000cccccccc 0   777        00000000 0        0        0     2        0        9003
short line
"""


def test_table_parsing(tmp_path: Path) -> None:
    table = tmp_path / "netlink"
    table.write_text(TABLE)
    # Generic netlink only, and port id 0 (a kernel socket) is nobody.
    assert netlink_sockets(table=str(table)) == {4242: 9001}
    assert netlink_sockets(table=str(table), protocol=0) == {777: 9003}


def test_a_live_socket_is_found_with_this_process_holding_it() -> None:
    transport = KernelTransport()
    try:
        port_id = transport.port_id
        assert port_id in netlink_sockets()
        owners = find_owners({port_id, 0})
        assert list(owners) == [port_id]
        owner = owners[port_id]
        assert os.getpid() in owner.pids
        assert f"pid {os.getpid()} (" in owner.describe()
    finally:
        transport.close()
    # Closed: nobody holds that port id any more.
    assert find_owners({port_id}) == {}


def test_holders_of_an_unknown_inode() -> None:
    assert socket_holders(1) == ()
    assert "not visible here" in Owner(5, 1, ()).describe()
