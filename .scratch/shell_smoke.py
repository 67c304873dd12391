import subprocess, tempfile, sys, secrets, threading, time
sys.path.insert(0, "tests")
from watch.bed import Bed, userspace_datapath
from odpctl.odp.dpif import Dpif
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from odpctl.shell.app import main
names = []
def mk():
    n = f"odpt-{secrets.token_hex(4)}"; subprocess.run(["ip","netns","add",n],check=True); names.append(n); return n
try:
    ns = mk()
    d = tempfile.mkdtemp(prefix="odpt-")
    with userspace_datapath(ns, d) as spec, Dpif.open(spec, netns=ns) as dpif:
        dpif.create_datapath("dp0")
        with create_pipe_input() as inp:
            inp.send_text("dp list\nflow add in_port(1),eth(),eth_type(0x0800),ipv4() 2\nflow dump\nbogus\nflow add junk(\nuse nosuch\nuse dp0\nwatch stats -c 2 -i 0.2\nexit\n")
            rc = main(netns=ns, datapath=spec, history=__import__('pathlib').Path(d)/"hist", input=inp, output=DummyOutput(), toolbar_interval=0.2)
            print("rc", rc)
finally:
    for n in names: subprocess.run(["ip","netns","del",n])
