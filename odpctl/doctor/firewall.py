"""Firewall rules that drop the overlay's ports: nftables (iptables-nft too), else iptables.

Only what arrives matters here (TCP 6783 for the mesh, UDP 6784 for VXLAN):
a rule in a chain hooked on input, prerouting or forward whose verdict is
drop or reject and whose destination port match takes in one of the ports.
A rule that also matches on something else (an address) is still reported:
it drops the overlay for someone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

_HOOKS = ("input", "prerouting", "forward")
_VERDICTS = ("drop", "reject")


@dataclass(frozen=True)
class BlockingRule:
    proto: str  # tcp, udp
    port: int
    where: str  # "table inet odpblock chain in handle 2", "iptables INPUT"
    text: str  # the rule, as the tool would show it, about
    remove: str  # the command that deletes it


def rules_dropping(ports: dict[str, tuple[int, ...]]) -> tuple[list[BlockingRule], str | None]:
    """Rules dropping ``ports`` ({"udp": (6784,), "tcp": (6783,)}), and why none could be read."""
    if shutil.which("nft"):
        try:
            done = subprocess.run(
                ["nft", "-j", "list", "ruleset"], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [], f"nft failed: {exc}"
        if done.returncode != 0:
            return [], f"nft list ruleset failed: {done.stderr.strip()}"
        try:
            return nft_rules_dropping(json.loads(done.stdout), ports), None
        except ValueError:
            return [], "nft printed something that is not JSON"
    if shutil.which("iptables-save"):
        done = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=10)
        return iptables_rules_dropping(done.stdout, ports), None
    return [], "neither nft nor iptables-save is installed"


def nft_rules_dropping(
    ruleset: dict[str, Any], ports: dict[str, tuple[int, ...]]
) -> list[BlockingRule]:
    items = ruleset.get("nftables", [])
    hooked = {
        (c["family"], c["table"], c["name"])
        for item in items
        if (c := item.get("chain")) and c.get("hook") in _HOOKS
    }
    wanted = {p for taken in ports.values() for p in taken}
    found = []
    for item in items:
        rule = item.get("rule")
        if not rule or (rule["family"], rule["table"], rule["chain"]) not in hooked:
            continue
        exprs = rule.get("expr", [])
        verdict = next((v for e in exprs for v in _VERDICTS if v in e), None)
        if verdict is None:
            continue
        for proto, port, shown in _dport_matches(exprs, wanted):
            if port in ports.get(proto, ()):
                where = (
                    f"table {rule['family']} {rule['table']} chain {rule['chain']} "
                    f"handle {rule['handle']}"
                )
                found.append(
                    BlockingRule(
                        proto,
                        port,
                        where,
                        f"{proto} dport {shown} {verdict}",
                        f"nft delete rule {rule['family']} {rule['table']} {rule['chain']} "
                        f"handle {rule['handle']}",
                    )
                )
    return found


def _dport_matches(exprs: list[dict[str, Any]], wanted: set[int]) -> list[tuple[str, int, str]]:
    """(proto, port, as written) for every port a ``dport`` match of ``exprs`` takes in
    (of a range, those of ``wanted``)."""
    out = []
    for e in exprs:
        match = e.get("match")
        if not match or match.get("op") not in ("==", "in"):
            continue
        payload = match.get("left", {}).get("payload", {})
        if payload.get("field") != "dport" or payload.get("protocol") not in ("tcp", "udp"):
            continue
        proto, right = payload["protocol"], match.get("right")
        for port in _ports_in(right, wanted):
            out.append((proto, port, _shown(right)))
    return out


def _ports_in(right: Any, wanted: set[int]) -> list[int]:
    if isinstance(right, int):
        return [right]
    if isinstance(right, dict) and "set" in right:
        return [p for member in right["set"] for p in _ports_in(member, wanted)]
    if isinstance(right, dict) and "range" in right:
        low, high = right["range"]
        return [p for p in sorted(wanted) if low <= p <= high]
    return []


def _shown(right: Any) -> str:
    if isinstance(right, dict) and "set" in right:
        return "{ " + ", ".join(_shown(m) for m in right["set"]) + " }"
    if isinstance(right, dict) and "range" in right:
        return f"{right['range'][0]}-{right['range'][1]}"
    return str(right)


_IPT_RULE = re.compile(r"^-A (\S+) (.*)$")


def iptables_rules_dropping(saved: str, ports: dict[str, tuple[int, ...]]) -> list[BlockingRule]:
    """The same from ``iptables-save`` text (a legacy iptables, with no nft)."""
    found = []
    for line in saved.splitlines():
        m = _IPT_RULE.match(line)
        if not m or m[1] not in ("INPUT", "FORWARD", "PREROUTING"):
            continue
        spec = m[2]
        proto = re.search(r"-p (tcp|udp)\b", spec)
        dport = re.search(r"--dports? (\S+)", spec)
        if not proto or not dport or not re.search(r"-j (DROP|REJECT)\b", spec):
            continue
        for port in ports.get(proto[1], ()):
            if _ipt_port_in(dport[1], port):
                found.append(
                    BlockingRule(
                        proto[1], port, f"iptables chain {m[1]}", line, f"iptables -D {m[1]} {spec}"
                    )
                )
    return found


def _ipt_port_in(spec: str, port: int) -> bool:
    for part in spec.split(","):
        low, _, high = part.partition(":")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False
