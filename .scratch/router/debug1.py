import time, sys
from odpctl.lab import Lab
from odpctl.overlaylab import OverlayLab
lab = Lab("odpr")
ol = OverlayLab(lab, datapath=sys.argv[1] if len(sys.argv) > 1 else "kernel")
try:
    ol.start_routers()
    try:
        ol.wait_ready(timeout=20)
        print("READY")
        for a in ol.containers:
            for b in ol.containers:
                if a.name < b.name:
                    print(a.name, b.name, ol.ping(a, b))
        import json
        print(json.dumps(ol.status(0)["router"], indent=1)[:3000])
    except Exception as e:
        print("ERR", e)
    for h in ol.hosts:
        print("--- router", h.index); print(ol.log_tail(h.index, 30))
    print(lab.run(ol.hosts[0].ns, "ip", "-d", "link").stdout)
finally:
    ol.close()
