"""The two firewall rules ESP needs, on nftables or on iptables-legacy.

Per peer that has an ESP association:

* outbound VXLAN to it gets a mark.  The kernel's vxlan driver looks its route
  up without the UDP ports, so an xfrm policy cannot pick VXLAN out by port;
  it matches the mark instead, and setting a mark on the way out makes the
  kernel route the packet again, through the policy (the design of Weave Net's
  `net/ipsec`).
* inbound VXLAN from it that did not come out of an ESP state is dropped, so
  that nobody on the underlay can hand a container plaintext frames in its name.

Both backends keep everything in a place of their own, named after odpctl, so
that it can be found and removed whole, leftovers of a killed router included:
nftables a table ``ip odpctl`` (chains and a set of peers), iptables two chains
``ODPCTL-ESP-OUT`` / ``ODPCTL-ESP-IN`` of the mangle table.  Which backend
works is found out at start (`install_firewall`): nftables through its JSON
API where it can install its table, else iptables-legacy.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import subprocess
from typing import Any, Protocol

from odpctl.errors import DatapathUnavailableError, KernelRefusedError, OdpError

NFT_TABLE = "odpctl"
NFT_SET = "esp-peers"
IPT_TABLE = "mangle"
IPT_OUT = "ODPCTL-ESP-OUT"
IPT_IN = "ODPCTL-ESP-IN"
_HOOKS = (("OUTPUT", IPT_OUT), ("INPUT", IPT_IN))
_TIMEOUT = 20.0


class Firewall(Protocol):
    name: str  # shown in status: "nftables" or "iptables"

    def install(self) -> None:
        """Remove what a previous run left, then put our (empty) rules in place."""
        ...

    def protect(self, peer: str) -> None:
        """Mark VXLAN to ``peer`` for ESP; drop VXLAN from it that is not ESP."""
        ...

    def unprotect(self, peer: str) -> None: ...

    def remove(self) -> None:
        """Remove everything of ours; nothing if there is nothing."""
        ...


def _run(argv: list[str], what: str, data: str | None = None) -> None:
    try:
        done = subprocess.run(
            argv, input=data, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise DatapathUnavailableError(
            f"{what}: {argv[0]} is not installed", errno=errno.ENOENT
        ) from None
    except subprocess.TimeoutExpired:
        raise KernelRefusedError(
            f"{what}: {argv[0]} did not answer in {_TIMEOUT:g} s", errno=errno.ETIMEDOUT
        ) from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise KernelRefusedError(f"{what}: {lines[0] if lines else f'exit {done.returncode}'}")


class NftFirewall:
    """A table ``ip odpctl``: two base chains and the set of peers they match."""

    name = "nftables"

    def __init__(self, udp_port: int, mark: int, mask: int, nft: str = "nft") -> None:
        self.udp_port = udp_port
        self.mark = mark
        self.mask = mask
        self.nft = nft

    def _apply(self, commands: list[dict[str, Any]], what: str) -> None:
        _run([self.nft, "-j", "-f", "-"], what, json.dumps({"nftables": commands}))

    def _table(self) -> dict[str, Any]:
        return {"table": {"family": "ip", "name": NFT_TABLE}}

    def _match(self, proto: str, field: str, right: Any) -> dict[str, Any]:
        return {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": proto, "field": field}},
                "right": right,
            }
        }

    def install(self) -> None:
        self.remove()
        mark = {"meta": {"key": "mark"}}
        chain = {"family": "ip", "table": NFT_TABLE}
        out_rule = [
            self._match("ip", "daddr", f"@{NFT_SET}"),
            self._match("udp", "dport", self.udp_port),
            {
                "mangle": {
                    "key": mark,
                    "value": {"|": [{"&": [mark, 0xFFFFFFFF ^ self.mask]}, self.mark]},
                }
            },
        ]
        in_rule = [
            self._match("ip", "saddr", f"@{NFT_SET}"),
            self._match("udp", "dport", self.udp_port),
            {"match": {"op": "==", "left": {"meta": {"key": "ipsec"}}, "right": False}},
            {"counter": None},
            {"drop": None},
        ]
        self._apply(
            [
                {"add": self._table()},
                {"add": {"set": {**chain, "name": NFT_SET, "type": "ipv4_addr"}}},
                # A route chain: a mark set here sends the packet through routing
                # (and the xfrm policy lookup) again.
                {
                    "add": {
                        "chain": {
                            **chain,
                            "name": "esp-out",
                            "type": "route",
                            "hook": "output",
                            "prio": -150,
                            "policy": "accept",
                        }
                    }
                },
                {
                    "add": {
                        "chain": {
                            **chain,
                            "name": "esp-in",
                            "type": "filter",
                            "hook": "input",
                            "prio": 0,
                            "policy": "accept",
                        }
                    }
                },
                {"add": {"rule": {**chain, "chain": "esp-out", "expr": out_rule}}},
                {"add": {"rule": {**chain, "chain": "esp-in", "expr": in_rule}}},
            ],
            "install the nftables table for ESP",
        )

    def _element(self, peer: str) -> dict[str, Any]:
        return {"element": {"family": "ip", "table": NFT_TABLE, "name": NFT_SET, "elem": [peer]}}

    def protect(self, peer: str) -> None:
        self._apply([{"add": self._element(peer)}], f"add {peer} to the nftables ESP peers")

    def unprotect(self, peer: str) -> None:
        self._apply([{"delete": self._element(peer)}], f"remove {peer} from the nftables ESP peers")

    def remove(self) -> None:
        # "add" first makes the delete succeed whether or not the table exists.
        self._apply(
            [{"add": self._table()}, {"delete": self._table()}], "remove the nftables table for ESP"
        )


class IptablesFirewall:
    """Two chains of the mangle table, jumped to from OUTPUT and INPUT."""

    name = "iptables"

    def __init__(
        self, udp_port: int, mark: int, mask: int, iptables: str = "iptables-legacy"
    ) -> None:
        self.udp_port = udp_port
        self.mark = mark
        self.mask = mask
        self.iptables = iptables

    def _ipt(self, *args: str, what: str) -> None:
        _run([self.iptables, "-w", "-t", IPT_TABLE, *args], what)

    def _rules(self, peer: str) -> list[tuple[str, list[str]]]:
        udp = ["-p", "udp", "--dport", str(self.udp_port)]
        return [
            (
                IPT_OUT,
                [
                    "-d",
                    f"{peer}/32",
                    *udp,
                    "-j",
                    "MARK",
                    "--set-xmark",
                    f"{self.mark:#x}/{self.mask:#x}",
                ],
            ),
            (
                IPT_IN,
                [
                    "-s",
                    f"{peer}/32",
                    *udp,
                    "-m",
                    "policy",
                    "--dir",
                    "in",
                    "--pol",
                    "none",
                    "-j",
                    "DROP",
                ],
            ),
        ]

    def install(self) -> None:
        self.remove()
        for hook, chain in _HOOKS:
            self._ipt("-N", chain, what=f"create iptables chain {chain}")
            self._ipt("-I", hook, "-j", chain, what=f"jump from {hook} to {chain}")

    def protect(self, peer: str) -> None:
        for chain, rule in self._rules(peer):
            self._ipt("-A", chain, *rule, what=f"add the ESP rule for {peer} to {chain}")

    def unprotect(self, peer: str) -> None:
        for chain, rule in self._rules(peer):
            self._ipt("-D", chain, *rule, what=f"delete the ESP rule for {peer} from {chain}")

    def remove(self) -> None:
        for hook, chain in _HOOKS:
            # A killed router's jump may be there more than once; none, if it is clean.
            for _ in range(8):
                try:
                    self._ipt("-D", hook, "-j", chain, what=f"remove a jump to {chain}")
                except OdpError:
                    break
            for op in ("-F", "-X"):
                with contextlib.suppress(KernelRefusedError):
                    self._ipt(op, chain, what=f"remove chain {chain}")


def install_firewall(udp_port: int, mark: int, mask: int) -> Firewall:
    """The first backend that installs here: nftables, else iptables-legacy (or
    plain iptables).  DatapathUnavailableError with every reason if none does."""
    candidates: list[Firewall] = []
    reasons = []
    nft = shutil.which("nft")
    if nft is not None:
        candidates.append(NftFirewall(udp_port, mark, mask, nft))
    iptables = shutil.which("iptables-legacy") or shutil.which("iptables")
    if iptables is not None:
        candidates.append(IptablesFirewall(udp_port, mark, mask, iptables))
    for firewall in candidates:
        try:
            firewall.install()
            return firewall
        except OdpError as exc:
            reasons.append(f"{firewall.name}: {exc.message}")
            with contextlib.suppress(OdpError):
                firewall.remove()
    raise DatapathUnavailableError(
        "no firewall for ESP: " + ("; ".join(reasons) or "neither nft nor iptables is installed"),
        hint="install nftables or iptables (iptables-legacy)",
    )
