import subprocess, tempfile, sys, time, secrets
sys.path.insert(0, "tests")
from watch.bed import Bed, userspace_datapath
from odpctl.odp.dpif import Dpif
names = []
def mk():
    n = f"odpt-{secrets.token_hex(4)}"; subprocess.run(["ip","netns","add",n],check=True); names.append(n)
    subprocess.run(["ip","-n",n,"link","set","lo","up"],check=True); return n
try:
    ns = mk(); a = mk(); b = mk()
    d = tempfile.mkdtemp(prefix="odpt-")
    with userspace_datapath(ns, d) as spec, Dpif.open(spec, netns=ns) as dpif:
        dpif.create_datapath("dp0")
        bed = Bed(dpif, ns, "dp0", ["--netns", ns, "--datapath", spec])
        bed.plug(a, "10.0.0.1"); bed.plug(b, "10.0.0.2")
        bed.connect(a, b)
        opts = " ".join(bed.options)
        print("OPTS", opts, "A", a, "B", b, flush=True)
        with bed.pinging(a, b):
            for cmd in []:
                print("==", cmd, flush=True)
                subprocess.run(f".venv/bin/odpctl {opts} {cmd}", shell=True)
        print("== upcalls (no flows for icmp from b)")
        dpif.flush_flows("dp0")
        p = subprocess.Popen(f".venv/bin/odpctl {opts} watch upcalls -d 3s", shell=True)
        time.sleep(1.5)
        subprocess.run(["ip","netns","exec",a,"ping","-c","2","-i","0.2","-W","1","10.0.0.9"], capture_output=True)
        p.wait()
        print("pids after:", [v.upcall_pids for v in dpif.list_vports("dp0")])
        p = subprocess.Popen(f".venv/bin/odpctl {opts} watch upcalls -d 3s --force", shell=True)
        time.sleep(1.5)
        subprocess.run(["ip","netns","exec",a,"ping","-c","2","-i","0.2","-W","1","10.0.0.9"], capture_output=True)
        p.wait()
        print("pids after:", [v.upcall_pids for v in dpif.list_vports("dp0")])
finally:
    for n in names: subprocess.run(["ip","netns","del",n])
