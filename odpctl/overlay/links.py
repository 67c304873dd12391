"""How each connection protects container traffic on the wire: none, esp or sealed.

Without a mesh password nothing is protected ("none"), as ever.  With one, a
connection carries container frames only encrypted: on the fast path through
kernel IPsec ESP ("esp", once its security associations are up), else through
the userspace fallback, every datagram sealed with the connection's own keys
("sealed", with the reason the fast path cannot be used).  Peers inside the
`--trusted-subnets` exchange plaintext, as Weave Net's do ("none", trusted).

A `Link` holds one connection's choice, its sealing keys (derived once per
connection: a new connection brings new keys, and the counters restart with
them) and the datagrams refused on it.  `Links` keeps them by underlay
address, the identity of a fallback datagram's sender; the event loop
replaces its tables, the fallback's and miss handlers' threads read them.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from odpctl.crypto.keys import direction_keys
from odpctl.crypto.seal import KEY_SIZE, Opener, Sealer
from odpctl.mesh.names import PeerName
from odpctl.mesh.overlay import OverlayConnectionParams

NONE, ESP, SEALED = "none", "esp", "sealed"
SEAL_PURPOSE = b"seal"

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network

# Why a connection of this router cannot be on ESP (None: it may be, once its SAs are up).
EspUnavailable = Callable[[], str | None]
# The SPIs of a connection whose ESP security associations are up, else None.
EspSpis = Callable[[PeerName], dict[str, int] | None]


def parse_subnets(text: str) -> tuple[Subnet, ...]:
    """``10.0.0.0/8,192.168.1.0/24`` -> networks; ValueError naming the bad one."""
    nets: list[Subnet] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"not a subnet: {part!r} (expected CIDR, e.g. 10.0.0.0/8)") from None
    return tuple(nets)


def public_address(host: str) -> bool:
    """Whether ``host`` is an address beyond loopback, private and test networks: where
    a mesh without a password is open to whoever is on the way."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not (address.is_private or address.is_unspecified)


@dataclass(frozen=True)
class Policy:
    password: bool
    trusted: tuple[Subnet, ...] = ()

    def trusts(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)


@dataclass(eq=False)
class Link:
    peer: PeerName
    ip: str
    conn_uid: int
    encryption: str
    reason: str | None
    sealer: Sealer | None = None
    opener: Opener | None = None
    spis: dict[str, int] | None = None
    auth_failures: int = 0
    replays: int = 0

    @property
    def vxlan_ok(self) -> bool:
        """Whether container frames may cross this connection as plaintext VXLAN (the
        kernel's ESP wraps it, for "esp")."""
        return self.encryption != SEALED

    def status(self) -> dict[str, Any]:
        return {
            "encryption": self.encryption,
            "encryption_reason": self.reason,
            "spis": self.spis,
            "auth_failures": self.auth_failures,
            "replays": self.replays,
        }


class Drops:
    """Counts by reason: traffic refused for want of authentication, misses not handled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


class Links:
    def __init__(
        self, policy: Policy, esp_unavailable: EspUnavailable, esp_state: EspSpis = lambda _: None
    ) -> None:
        self.policy = policy
        self.esp_unavailable = esp_unavailable
        self.esp_state = esp_state
        self.drops = Drops()
        self.by_ip: dict[str, Link] = {}
        self.by_peer: dict[PeerName, Link] = {}

    @property
    def required(self) -> bool:
        """Whether container traffic must be authenticated (the mesh has a password)."""
        return self.policy.password

    def vxlan_ok(self, peer: PeerName) -> bool:
        link = self.by_peer.get(peer)
        return not self.required or (link is not None and link.vxlan_ok)

    def vxlan_from(self, ip: str) -> bool:
        """Whether container frames in VXLAN from ``ip`` are accepted (with a password,
        the fallback takes sealed datagrams only)."""
        if not self.required:
            return True
        link = self.by_ip.get(ip)
        return link is not None and link.vxlan_ok

    def sync(self, conns: Iterable[OverlayConnectionParams]) -> None:
        """The links of these connections (the current ones): new keys for new ones."""
        by_peer: dict[PeerName, Link] = {}
        for params in conns:
            link = self.by_peer.get(params.remote)
            if link is None or link.conn_uid != params.conn_uid:
                link = self._new_link(params)
            link.encryption, link.reason, link.spis = self._choose(params)
            by_peer[params.remote] = link
        self.by_peer = by_peer
        self.by_ip = {link.ip: link for link in by_peer.values()}

    def _new_link(self, params: OverlayConnectionParams) -> Link:
        link = Link(params.remote, params.remote_address[0], params.conn_uid, NONE, None)
        if self.required and params.session_key:
            # Keys even for a trusted or ESP connection: its fallback, when it takes
            # that, is sealed all the same.
            keys = direction_keys(
                params.session_key, SEAL_PURPOSE, outbound=params.outbound, length=KEY_SIZE
            )
            link.sealer, link.opener = Sealer(keys.send), Opener(keys.receive)
        return link

    def _choose(
        self, params: OverlayConnectionParams
    ) -> tuple[str, str | None, dict[str, int] | None]:
        ip = params.remote_address[0]
        if not self.required:
            return NONE, "the mesh has no password", None
        if self.policy.trusts(ip):
            return NONE, f"{ip} is in a trusted subnet", None
        spis = self.esp_state(params.remote)
        if spis is not None:
            return ESP, None, spis
        why = self.esp_unavailable() or "ESP security associations not up yet"
        return SEALED, f"{why}: using sealed fallback", None

    def status(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "trusted_subnets": [str(n) for n in self.policy.trusted],
            "drops": self.drops.snapshot(),
        }
