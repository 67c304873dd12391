"""The DNS of one router: records, their gossip channel, their state file, the server.

A router makes one `DnsService` on its mesh node.  Our own records are saved
to ``state`` on each change and read back at start, with their versions, so
that a restarted router announces its names again and outranks the
tombstones its absence may have caused.  The server runs when the router has
an address to serve on (its exposed address, or ``--dns-listen``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odpctl.errors import NotFoundError, UsageError
from odpctl.mesh.discovery import parse_address
from odpctl.mesh.gossip import GossipChannel
from odpctl.mesh.names import PeerName, format_peer_name
from odpctl.mesh.node import MeshNode
from odpctl.mesh.peer import Peer
from odpctl.netlink.rundir import write_atomic

from .answer import Answerer
from .gossip import CHANNEL, DnsGossiper, MalformedRecords, decode_record, encode_record
from .names import DEFAULT_DOMAIN, in_domain, normalize_address, normalize_name
from .records import Record, Records
from .resolvconf import remove_resolv_conf, write_resolv_conf
from .server import DNS_PORT, DnsServer, Listen
from .upstream import RESOLV_CONF, Upstreams

log = logging.getLogger("odpctl.dns")

COLLECT_INTERVAL = 60.0
MANUAL = "manual"  # the container ID of names added by hand (`odpctl dns add`)


@dataclass(frozen=True)
class DnsConfig:
    domain: str = DEFAULT_DOMAIN
    ttl: int = 1
    listen: Listen | None = None  # where to serve; None: until the router has an address
    rate: float = 2000.0  # queries/s per source; 0: no limit
    resolv_conf: Path = RESOLV_CONF
    state: Path | None = None  # where our records are kept across restarts


def parse_listen(text: str) -> Listen:
    """``ADDR`` or ``ADDR:PORT`` (``[V6]:PORT``), as the mesh parses its peers."""
    try:
        return Listen(*parse_address(text, DNS_PORT))
    except UsageError as exc:
        raise UsageError(f"--dns-listen: {exc.message}") from None


class DnsService:
    def __init__(self, node: MeshNode, config: DnsConfig) -> None:
        self.node = node
        self.config = config
        self.records = Records(node.name)
        self._load()
        self.gossiper = DnsGossiper(self.records, known=self._known)
        self.channel: GossipChannel = node.gossip_channel(CHANNEL, self.gossiper)
        node.topology.on_gc.append(self._peer_gone)
        self.records.on_change.append(self._changed)
        self.server: DnsServer | None = None
        self._last_collect = time.monotonic()

    def _known(self, peer: PeerName) -> bool:
        return peer in self.node.topology.peers

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, listen: Listen | None = None) -> None:
        """Serve DNS on ``listen`` (or the configured address); a no-op without either."""
        listen = self.config.listen or listen
        if listen is None or self.server is not None:
            return
        answerer = Answerer(self.records, self.config.domain, self.config.ttl)
        upstreams = Upstreams(self.config.resolv_conf, exclude={listen.address})
        server = DnsServer(answerer, upstreams, listen, rate=self.config.rate)
        await server.start()
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def tick(self) -> None:
        if time.monotonic() - self._last_collect >= COLLECT_INTERVAL:
            self._last_collect = time.monotonic()
            self.records.collect()

    @property
    def address(self) -> str | None:
        return self.server.listen.address if self.server is not None else None

    # --- containers (the router's attach and detach) ---------------------------------

    def attach(self, container: str, hostname: str | None, address: str, netns: str) -> None:
        """Register a container's name (if it has one), and point its resolver at us.

        The resolv.conf goes where `ip netns exec` finds it, so only for a
        namespace given by name (not a /proc/PID/ns/net path)."""
        if hostname is not None:
            try:
                self.records.add(container, normalize_address(address), self.hostname(hostname))
            except UsageError as exc:
                log.warning("container %s: no DNS name: %s", container, exc)
        if "/" in netns:
            log.info(
                "container %s: namespace %s has no /etc/netns directory: its resolv.conf "
                "is the runtime's business",
                container,
                netns,
            )
        elif self.address is None:
            log.warning(
                "container %s: no DNS server to point its resolv.conf at "
                "(expose the router, or --dns-listen)",
                container,
            )
        else:
            write_resolv_conf(netns, self.address, self.config.domain)

    def detach(self, container: str, netns: str) -> int:
        """Tombstone a container's names (and remove the resolv.conf we wrote); how many."""
        gone = self.records.remove(container=container)
        if "/" not in netns:
            remove_resolv_conf(netns)
        return len(gone)

    def hostname(self, name: str) -> str:
        """``name`` as the records hold it; `UsageError` if the server would not answer it."""
        hostname = normalize_name(name, self.config.domain)
        if not in_domain(hostname, self.config.domain) or hostname == self.config.domain:
            raise UsageError(
                f"{hostname} is not a name in the domain {self.config.domain}: "
                "the DNS server would not answer it",
                hint=f"a single label (web1) or a name ending in .{self.config.domain}",
            )
        return hostname

    # --- the records' changes -------------------------------------------------------------

    def _changed(self, records: list[Record]) -> None:
        # Our records as they now are (not those collected or dropped just now).
        own = [r for r in records if r.origin == self.node.name and self.records.get(r.key) == r]
        if own:
            # Ours changed (added, removed, or restated over a stale copy): tell everyone.
            self.channel.gossip_broadcast(self.gossiper.data(own))
            self._save()

    def _peer_gone(self, peer: Peer) -> None:
        gone = self.records.peer_gone(peer.name)
        if gone:
            log.info(
                "peer %s gone: its %d DNS record(s) dropped", format_peer_name(peer.name), len(gone)
            )

    # --- state across restarts --------------------------------------------------------

    def _load(self) -> None:
        path = self.config.state
        if path is None:
            return
        try:
            items = json.loads(path.read_text())["records"]
            records = [decode_record(item) for item in items]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, MalformedRecords) as exc:
            log.warning("cannot read the DNS records in %s (%s): starting without them", path, exc)
            return
        # Our records under a name the node had then (a `--name` change) are not ours now.
        self.records.restore(r for r in records if r.origin == self.node.name)
        log.info("%d DNS record(s) restored from %s", len(self.records), path)

    def _save(self) -> None:
        path = self.config.state
        if path is None:
            return
        try:
            records = [encode_record(r) for r in self.records.own()]
            write_atomic(path, json.dumps({"records": records}))
        except OSError as exc:
            log.warning("cannot save the DNS records to %s: %s", path, exc)

    # --- the control API --------------------------------------------------------------

    def describe(self, record: Record) -> dict[str, Any]:
        return {
            "hostname": record.hostname,
            "address": record.address,
            "container": record.container,
            "origin": format_peer_name(record.origin),
            "origin_nickname": self._nickname(record.origin),
            "version": record.version,
            "tombstone": record.tombstone or None,
            "local": record.origin == self.node.name,
        }

    def _nickname(self, peer: PeerName) -> str | None:
        entry = self.node.topology.peers.get(peer)
        return entry.nickname if entry is not None else None

    def status(self) -> dict[str, Any]:
        live = sum(1 for r in self.records if r.live)
        return {
            "domain": self.config.domain,
            "records": live,
            "tombstones": len(self.records) - live,
            "server": self.server.status() if self.server is not None else None,
            "gossip": self.gossiper.status(),
        }

    def handlers(self) -> dict[str, Any]:
        def add(request: dict[str, Any]) -> Any:
            name, address = _text(request, "name"), _text(request, "address")
            container = request.get("container") or MANUAL
            if not isinstance(container, str) or len(container) > 256:
                raise UsageError('"container": expected a container ID')
            record = self.records.add(container, normalize_address(address), self.hostname(name))
            return self.describe(record)

        def remove(request: dict[str, Any]) -> Any:
            name = _text(request, "name")
            hostname = normalize_name(name, self.config.domain)
            address = request.get("address")
            address = normalize_address(address) if isinstance(address, str) else None
            gone = self.records.remove(hostname=hostname, address=address)
            if not gone:
                others = [
                    r
                    for r in self.records
                    if r.live
                    and r.hostname == hostname
                    and (address is None or r.address == address)
                ]
                if others:
                    owner = format_peer_name(others[0].origin)
                    raise UsageError(
                        f"{hostname} is registered by peer {owner}, not here",
                        hint="remove it on the router of that peer",
                    )
                raise NotFoundError(
                    f"no name {hostname}" + (f" for {address}" if address else "") + " here"
                )
            return [self.describe(r) for r in gone]

        def lookup(request: dict[str, Any]) -> Any:
            hostname = normalize_name(_text(request, "name"), self.config.domain)
            live = [r for r in self.records if r.live and r.hostname == hostname]
            if not live:
                raise NotFoundError(f"{hostname}: no such name in the mesh")
            return {
                "hostname": hostname,
                "addresses": sorted({r.address for r in live}),
                "records": [self.describe(r) for r in live],
            }

        def listing(_request: dict[str, Any]) -> Any:
            return {
                "domain": self.config.domain,
                "self": format_peer_name(self.node.name),
                "server": self.address,
                "records": [self.describe(r) for r in self.records.all()],
            }

        def status(_request: dict[str, Any]) -> Any:
            return self.status()

        return {
            "dns_add": add,
            "dns_remove": remove,
            "dns_lookup": lookup,
            "dns_list": listing,
            "dns_status": status,
        }


def _text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(f'expected "{key}": a string')
    return value


__all__ = ["DnsConfig", "DnsService", "parse_listen"]
