import subprocess
from odpctl.odp.dpif import Dpif
from odpctl.odp.vport import Vport
from odpctl.odp.uapi import VportType
for i, (name, npids) in enumerate([("vxlan_sys_6784", 0), ("vx6784", 2), ("vxlan_sys_6784", 1), ("vx6784", 1), ("vxlan_sys_6785", 0)]):
    ns = f"dbg{i}"
    subprocess.run(["ip", "netns", "add", ns])
    with Dpif.open("kernel", netns=ns) as d:
        chans = [d.open_upcall_channel() for _ in range(npids)]
        d.create_datapath("dpx")
        try:
            p = d.add_vport("dpx", Vport(name, VportType.VXLAN, dst_port=int(name[-4:]), upcall_pids=tuple(c.port_id for c in chans)))
            print(name, npids, "OK", p.port_no)
        except Exception as e:
            print(name, npids, "FAIL", e)
    subprocess.run(["ip", "netns", "del", ns])
