"""A router's status (the control socket's ``status`` reply) as people read it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_status(result: dict[str, Any]) -> str:
    router = result.get("router") or {}
    lines = [
        str(router.get("summary", "no router data")),
        f"name:        {result.get('name')} ({result.get('nickname')}), "
        f"short ID {result.get('short_id')}",
        f"listen:      {result.get('listen')}",
        f"peers:       {result.get('peers')}",
    ]
    dp = router.get("datapath") or {}
    lines.append(
        f"datapath:    {dp.get('name')} ({dp.get('kind')}), "
        f"ports {dp.get('ports')}, vxlan port {dp.get('vxlan_port')}"
    )
    ifaces = dp.get("ifaces")
    if isinstance(ifaces, dict):
        lines.append(
            "containers:  "
            + (", ".join(f"{name} (port {no})" for name, no in ifaces.items()) or "none")
        )
    ipam = router.get("ipam") or {}
    lines.append(
        f"ipam:        {ipam.get('message')}, range {ipam.get('range')}, "
        f"{ipam.get('allocated')} allocated here, exposed "
        f"{router.get('exposed') or 'no'}"
    )
    lines.append(f"mtu:         {router.get('mtu')}")
    limit = router.get("max_flows")
    lines.append(
        f"flows:       {router.get('flows')} (limit {limit or 'none'}, "
        f"{router.get('over_limit', 0)} miss(es) over it)  "
        f"installed: {router.get('flows_installed')}"
    )
    lines.append(
        f"frames:      hit {router.get('hit')}  missed {router.get('missed')}  "
        f"lost {router.get('lost')}  rx dropped {router.get('rx_dropped')}"
    )
    drops = reasons_text(router.get("drops"), router.get("drop_reasons"))
    errors = reasons_text(router.get("errors"), router.get("error_reasons"))
    lines.append(
        f"misses:      {router.get('misses')}: {router.get('flows_installed')} flow(s), "
        f"{router.get('no_flow')} without, {router.get('heartbeats_received')} "
        f"heartbeat(s), drops {drops}, errors {errors}"
    )
    lines.append(f"mac cache:   {router.get('mac_cache')}")
    lines.append(f"dns:         {_dns_line(router.get('dns') or {})}")
    lines += _encryption_lines(router)
    lines.append("connections:")
    for conn in router.get("connections") or []:
        reason = f"  ({conn['reason']})" if conn.get("reason") else ""
        lines.append(
            f"  {conn.get('peer') or '-'} {conn.get('nickname') or ''} "
            f"{conn.get('address')} {conn.get('state')} "
            f"overlay={conn.get('overlay') or '-'}{reason}"
        )
        if conn.get("encryption"):
            lines.append(f"    encryption: {describe_encryption(conn)}")
    return "\n".join(lines)


def reasons_text(total: object, reasons: object) -> str:
    """``3 (hairpin 2, no route to peer 1)``, or the bare total."""
    if not isinstance(reasons, Mapping) or not reasons:
        return str(total)
    return f"{total} (" + ", ".join(f"{why} {n}" for why, n in reasons.items()) + ")"


def _dns_line(dns: dict[str, Any]) -> str:
    names = f"{dns.get('records', 0)} name(s), {dns.get('tombstones', 0)} removed"
    server = dns.get("server")
    if not server:
        return f"{names}; not serving (no exposed address, no --dns-listen)"
    c = server.get("counters") or {}
    dropped = sum(int(c.get(k) or 0) for k in ("dropped_malformed", "rate_limited", "errors"))
    return (
        f"{names}; serving {dns.get('domain')} on {server.get('listen')}: "
        f"{c.get('queries', 0)} queries, {c.get('forwarded', 0)} forwarded, "
        f"{dropped} dropped"
    )


def describe_encryption(conn: dict[str, Any]) -> str:
    """``sealed (why), 0 auth failures, 0 replays`` for one connection."""
    text = str(conn.get("encryption"))
    if conn.get("encryption_reason"):
        text += f" ({conn['encryption_reason']})"
    if conn.get("spis"):
        text += ", SPIs " + ", ".join(f"{k} 0x{v:08x}" for k, v in sorted(conn["spis"].items()))
    return (
        text + f", {conn.get('auth_failures', 0)} auth failures, {conn.get('replays', 0)} replays"
    )


def _encryption_lines(router: dict[str, Any]) -> list[str]:
    crypto = router.get("encryption") or {}
    lines = []
    if crypto:
        what = "container traffic encrypted" if crypto.get("required") else "no password"
        trusted = crypto.get("trusted_subnets")
        if trusted:
            what += f", plaintext VXLAN within {', '.join(trusted)}"
        drops = crypto.get("drops") or {}
        refused = ", ".join(f"{reason} {n}" for reason, n in drops.items()) or "none"
        lines += [f"encryption:  {what}", f"refused:     {refused}"]
    lines += [f"warning:     {w}" for w in router.get("warnings") or []]
    return lines
