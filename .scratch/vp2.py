import subprocess, tempfile, sys, secrets, threading
sys.path.insert(0, "tests")
from watch.bed import Bed, userspace_datapath, ip
from odpctl.odp.dpif import Dpif
from odpctl.odp.vport import Vport
from odpctl.cli import run
names = []
def mk():
    n = f"odpt-{secrets.token_hex(4)}"; subprocess.run(["ip","netns","add",n],check=True); names.append(n); return n
try:
    ns = mk(); a=mk(); b=mk()
    d = tempfile.mkdtemp(prefix="odpt-")
    with userspace_datapath(ns, d) as spec, Dpif.open(spec, netns=ns) as dpif:
        dpif.create_datapath("dp0")
        bed = Bed(dpif, ns, "dp0", ["--netns", ns, "--datapath", spec])
        bed.plug(a, "10.0.0.1"); bed.plug(b, "10.0.0.2")
        ip("-n", ns, "link", "add", "wx0", "type", "veth", "peer", "name", "wx1"); ip("-n", ns, "link", "set", "wx0", "up"); ip("-n", ns, "link", "set", "wx1", "up")
        def churn():
            try:
                dpif.add_vport("dp0", Vport("wx0"))
                print("LIST", [v.name for v in dpif.list_vports("dp0")], file=sys.stderr)
                dpif.delete_vport("dp0", "wx0"); print("ok", file=sys.stderr)
            except Exception as e: print("ERR", repr(e), file=sys.stderr)
        t = threading.Timer(0.8, churn); t.start()
        run(bed.options + ["watch", "vports", "--json", "-c", "5", "-i", "0.4"])
        t.join()
finally:
    for n in names: subprocess.run(["ip","netns","del",n])
