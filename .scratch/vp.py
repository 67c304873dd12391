import subprocess, tempfile, sys, secrets
sys.path.insert(0, "tests")
from watch.bed import Bed, userspace_datapath, ip
from odpctl.odp.dpif import Dpif
from odpctl.odp.vport import Vport
names = []
def mk():
    n = f"odpt-{secrets.token_hex(4)}"; subprocess.run(["ip","netns","add",n],check=True); names.append(n); return n
try:
    ns = mk()
    d = tempfile.mkdtemp(prefix="odpt-")
    with userspace_datapath(ns, d) as spec, Dpif.open(spec, netns=ns) as dpif:
        dpif.create_datapath("dp0")
        ip("-n", ns, "link", "add", "wx0", "type", "veth", "peer", "name", "wx1")
        v = dpif.add_vport("dp0", Vport("wx0")); print(v)
        print(dpif.list_vports("dp0"))
        try: print(dpif.get_vport("dp0", "wx0"))
        except Exception as e: print("get by name:", e)
        dpif.delete_vport("dp0", v.port_no); print("deleted by number")
finally:
    for n in names: subprocess.run(["ip","netns","del",n])
