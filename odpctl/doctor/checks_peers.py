"""Each peer: TCP, UDP both ways by heartbeats, path MTU, encryption, clock skew.

The UDP verdicts come from the router's own heartbeats (`odpctl.overlay.heartbeat`):
ours acknowledged by the peer means UDP gets there; the peer's reaching us
means UDP gets here.  A direction is broken when nothing came for longer
than the router's own heartbeat timeout.
"""

from __future__ import annotations

from typing import Any

from .facts import Facts
from .report import Check, ok, problem, warn

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
CLOCK_SKEW_WARN = 1.0  # seconds
EARLY = 3  # heartbeats sent before a silence means something


def peer_checks(f: Facts) -> list[Check]:
    router = f.router
    if router is None:
        return []  # the router check says why
    fastdp = (f.status or {}).get("overlay", {}).get("fastdp", {})
    checks = []
    for conn in router.get("connections", []):
        subject = _subject(conn)
        checks.append(_tcp(subject, conn))
        if conn.get("state") != "established" or not conn.get("peer"):
            continue
        beats = fastdp.get("connections", {}).get(conn["peer"].replace(":", ""))
        if beats is None:
            checks.append(
                warn(
                    "peer",
                    subject,
                    "udp",
                    "no fast datapath on this connection: "
                    f"{conn.get('reason') or 'the other end has none'}",
                    "run odpctl router on both hosts with a datapath",
                )
            )
            continue
        port = fastdp.get("udp_port", 6784)
        checks.append(_udp(f, subject, conn, beats, port))
        checks.extend(_mtu(f, subject, beats, int(fastdp.get("mtu") or router.get("mtu") or 0)))
        checks.append(_encryption(subject, conn))
        checks.append(_clock(subject, beats))
    return checks


def _subject(conn: dict[str, Any]) -> str:
    if conn.get("peer"):
        return f"{conn.get('nickname') or '?'} ({conn['peer']})"
    return str(conn.get("address"))


def _host(conn: dict[str, Any]) -> str:
    return str(conn.get("address", "")).rpartition(":")[0] or "the peer"


def _tcp(subject: str, conn: dict[str, Any]) -> Check:
    address = conn.get("address")
    if conn.get("state") == "established":
        return ok(
            "peer",
            subject,
            "tcp",
            f"TCP {address} established ({conn.get('direction')}, {conn.get('since', 0):g} s)",
        )
    retry = conn.get("retry_in")
    again = f", retrying in {retry:g} s" if isinstance(retry, int | float) else ""
    why = conn.get("reason") or "no answer"
    return problem(
        "peer",
        subject,
        "tcp",
        f"TCP {address}: {conn.get('state')}{again} ({why})",
        f"check that odpctl router runs on {_host(conn)} and that TCP 6783 is "
        "allowed in on both hosts",
    )


def _fresh(age: float | None, timeout: float) -> bool:
    return age is not None and age <= timeout


def _udp(f: Facts, subject: str, conn: dict[str, Any], beats: dict[str, Any], port: int) -> Check:
    timeout = float(beats.get("timeout", 3.5))
    last_ack = beats.get("last_ack", {})
    there = _fresh(last_ack.get("small"), timeout) or _fresh(last_ack.get("full"), timeout)
    here = _fresh(beats.get("last_received"), timeout)
    name, host = conn.get("nickname") or conn["peer"], _host(conn)
    rtt = beats.get("rtt_ms")
    evidence = (
        f"to {name}: {beats.get('acks', 0)} of {beats.get('heartbeats_sent', 0)} "
        f"heartbeats acknowledged; from {name}: {beats.get('heartbeats_received', 0)} "
        f"received" + (f"; round trip {rtt:g} ms" if rtt is not None else "")
    )
    if there and here:
        return ok("peer", subject, "udp", f"UDP {port} passes both ways ({evidence})")
    if beats.get("heartbeats_sent", 0) < EARLY:
        return warn(
            "peer",
            subject,
            "udp",
            f"too early to tell ({evidence})",
            "run odpctl doctor again in a few seconds",
        )
    local = [r for r in f.firewall if r.proto == "udp" and r.port == port]
    if not there and not here:
        return problem(
            "peer",
            subject,
            "udp",
            f"UDP {port} blocked both ways between here and {name} ({host}): "
            f"{evidence}; traffic takes the slow userspace fallback",
            f"allow UDP {port} in on both hosts and on the way (nft/iptables)",
        )
    if not there:
        return problem(
            "peer",
            subject,
            "udp",
            f"UDP {port} from here to {name} ({host}) does not get through: "
            f"{evidence}; traffic takes the slow userspace fallback",
            f"allow UDP {port} in on {name} ({host}), e.g. `nft insert rule inet "
            f"filter input udp dport {port} accept`, and on the way",
        )
    fix = (
        f"delete the rule that drops it here: {local[0].remove}"
        if local
        else f"allow UDP {port} in on this host and on the way from {name}"
    )
    return problem(
        "peer",
        subject,
        "udp",
        f"UDP {port} from {name} ({host}) to here does not get through: {evidence}",
        fix,
    )


def _mtu(f: Facts, subject: str, beats: dict[str, Any], mtu: int) -> list[Check]:
    timeout = float(beats.get("timeout", 3.5))
    last_ack = beats.get("last_ack", {})
    checks = []
    ip = beats.get("ip", "")
    dev = f.routes.get(ip)
    link = f.links.get(dev) if dev else None
    if link is not None and link.mtu - VXLAN_OVERHEAD < mtu:
        checks.append(
            problem(
                "peer",
                subject,
                "mtu",
                f"the underlay {dev} (MTU {link.mtu}) carries {link.mtu - VXLAN_OVERHEAD} bytes "
                f"of VXLAN payload, less than the overlay MTU {mtu}",
                f"start the router with --mtu {link.mtu - VXLAN_OVERHEAD}, or raise {dev}'s MTU "
                f"to {mtu + VXLAN_OVERHEAD}",
            )
        )
    if _fresh(last_ack.get("full"), timeout):
        checks.append(
            ok(
                "peer",
                subject,
                "mtu",
                f"full-size heartbeats ({mtu} bytes of overlay MTU) cross to {ip}",
            )
        )
    elif _fresh(last_ack.get("small"), timeout):
        checks.append(
            problem(
                "peer",
                subject,
                "mtu",
                f"the path MTU to {ip} is below overlay MTU {mtu} + {VXLAN_OVERHEAD}: full-size "
                "heartbeats are lost, small ones cross",
                f"lower the overlay MTU (odpctl router start --mtu), or raise the path's MTU to "
                f"{mtu + VXLAN_OVERHEAD}",
            )
        )
    return checks


def _encryption(subject: str, conn: dict[str, Any]) -> Check:
    control = "encrypted" if conn.get("encrypted") else "in the clear (no password)"
    # --- encryption state of the data plane --------------------------------------------
    # The encryption work (issue: encrypted fast datapath) adds an "encryption" state
    # per connection to the router's status; shown as the router says it once it does.
    data = conn.get("encryption")
    data_text = f"data plane: {data}" if data is not None else "data plane: not reported"
    return ok("peer", subject, "encryption", f"control plane {control}; {data_text}")


def _clock(subject: str, beats: dict[str, Any]) -> Check:
    offset = beats.get("clock_offset_s")
    if offset is None:
        return ok("peer", subject, "clock", "skew unknown: no acknowledgement with a clock yet")
    skew = f"its clock is {round(offset * 1000):+d} ms from ours"
    if abs(offset) > CLOCK_SKEW_WARN:
        return warn(
            "peer",
            subject,
            "clock",
            skew,
            "synchronise the clocks (NTP: chrony or systemd-timesyncd)",
        )
    return ok("peer", subject, "clock", skew)
