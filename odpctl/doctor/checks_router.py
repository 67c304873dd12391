"""The router: running, control socket answering, miss handlers alive, its datapath."""

from __future__ import annotations

from .facts import Facts
from .report import Check, ok, problem

START_FIX = "start it: odpctl router start [PEER]... (if it died, its log says why)"


def router_checks(f: Facts) -> list[Check]:
    if f.status is None or f.router is None:
        if f.socket_left:
            evidence = (
                f"not running: its control socket {f.control} is left, but nothing "
                "answers (the router died)"
            )
        else:
            evidence = f"not running: {f.status_error}"
        return [problem("router", "-", "running", evidence, START_FIX)]
    s, r = f.status, f.router
    subject = f"{s.get('nickname') or '?'} ({s.get('name')})"
    checks = [
        ok(
            "router",
            subject,
            "running",
            f"up {s.get('uptime', 0):g} s, control socket {f.control} answering",
        )
    ]
    handlers = r.get("handlers", [])
    dead = [h for h in handlers if not h.get("alive")]
    restarts = r.get("handler_restarts", 0)
    if dead or not handlers:
        why = "; ".join(f"handler {h['index']}: {h.get('last_error')}" for h in dead)
        checks.append(
            problem(
                "router",
                subject,
                "handlers",
                f"{len(dead)} of {len(handlers)} miss handler(s) dead ({why})",
                "restart the router; misses on the dead handlers' ports are lost",
            )
        )
    else:
        checks.append(
            ok(
                "router",
                subject,
                "handlers",
                f"{len(handlers)} miss handler(s) alive, {restarts} restarted",
            )
        )
    dp = r["datapath"]
    vxlan_error = r.get("fallback", {}).get("vxlan_error")
    if vxlan_error:
        checks.append(
            problem(
                "router",
                subject,
                "datapath",
                f"{dp['kind']} datapath {dp['name']} without VXLAN: {vxlan_error}",
                "every connection uses the slow userspace fallback: fix the "
                "cause above and restart the router",
            )
        )
    else:
        checks.append(
            ok(
                "router",
                subject,
                "datapath",
                f"{dp['kind']} datapath {dp['name']} ({dp['endpoint']}), "
                f"VXLAN on UDP {dp['udp_port']}, overlay MTU {r.get('mtu')}",
            )
        )
    return checks
