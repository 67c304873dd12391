"""The overlay router: mesh + fast datapath + a datapath, in one process.

Threads: the main thread runs the asyncio loop with the mesh, the control
socket and the router's housekeeping (views, watchdog, port changes), with a
Dpif of its own, and a listener of the datapath's vport events: a netdev port
someone else adds to the datapath (`odpctl vport add`, `ovs-dpctl add-if`) is
attached as if by `odpctl router attach`, and one deleted is forgotten as on
detach; each miss handler runs on its own thread with its own Dpif
(a Dpif is never shared between threads).  The loop publishes an immutable
`MeshView` that handlers read; when it changes, installed flows are stale
and go.

On the way out the router leaves the datapath, its ports and its flows in
place: established traffic keeps flowing on the kernel datapath while the
router is down, and the next router adopts what it finds.  Not with ESP: its
states go with the router, and the flows with them, lest they carry frames in
clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from odpctl.control.mirror import SUBSCRIBE, UpcallMirror
from odpctl.control.server import ControlServer, default_socket_path
from odpctl.crypto.esp import UNAVAILABLE, Esp, EspState
from odpctl.dns.server import Listen
from odpctl.dns.service import DnsConfig, DnsService
from odpctl.errors import DatapathUnavailableError, NotFoundError, OdpError, UsageError
from odpctl.ipam.addr import Cidr, format_ip, parse_ip
from odpctl.ipam.allocator import Allocator, IpamConfig
from odpctl.ipam.store import Store
from odpctl.mesh.names import PeerName, format_peer_name
from odpctl.mesh.node import MeshConfig, MeshNode
from odpctl.mesh.status import control_handlers
from odpctl.netlink.rundir import make_parent, runtime_dir
from odpctl.odp.dpif import Dpif
from odpctl.odp.endpoint import default_datapath_socket
from odpctl.odp.keys import FlowKey
from odpctl.odp.packet import Execute
from odpctl.odp.uapi import DpFeature, KeyAttr, VportType
from odpctl.odp.upcalls import VportEvent, VportEvents
from odpctl.odp.vport import Vport
from odpctl.overlay import heartbeat, veth
from odpctl.overlay.accounting import datapath_counts, miss_counts
from odpctl.overlay.attachments import ATTACH, Attachment, Attachments
from odpctl.overlay.containers import ContainerPorts
from odpctl.overlay.fallback import PORT as FALLBACK_PORT
from odpctl.overlay.fallback import Fallback
from odpctl.overlay.fastdp import FALLBACK, FastDatapath
from odpctl.overlay.flows import VXLAN_PORT, tunnel_to, vni
from odpctl.overlay.forwarder import Forwarder, Ports
from odpctl.overlay.handlers import MissHandler, latency_summary
from odpctl.overlay.links import ESP, Links, Policy, Subnet, public_address
from odpctl.overlay.logrepeat import RepeatFilter
from odpctl.overlay.maccache import MacCache
from odpctl.overlay.revalidate import Revalidator
from odpctl.overlay.supervisor import DatapathSupervisor, exit_reason
from odpctl.overlay.sweeper import Sweeper
from odpctl.overlay.underlay import underlay_use
from odpctl.overlay.view import MeshView

log = logging.getLogger("odpctl.router")

DEFAULT_DP = "odp-router"
DEFAULT_MTU = 1376  # 1500 underlay - VXLAN (50) - room for a relay's headers
EXPOSE_ID = "router:expose"  # the IPAM ID of the exposed address
# The loggers of a router's parts, whose repeated warnings are counted, not repeated.
ROUTER_LOGGERS = ("odpctl.router", "odpctl.mesh", "odpctl.control")
SUPERVISE_INTERVAL = 0.25  # seconds between looks at the datapath


@dataclass(frozen=True)
class RouterConfig:
    mesh: MeshConfig = field(default_factory=MeshConfig)
    datapath: str = "auto"  # kernel | userspace | auto | an endpoint (unix:PATH)
    dp_name: str = DEFAULT_DP
    udp_port: int = VXLAN_PORT
    mtu: int = DEFAULT_MTU
    control: Path | None = None
    ifaces: tuple[str, ...] = ()
    handlers: int = 2
    max_flows: int = 0  # 0: no limit; past it, misses are sent on without a flow
    tick: float = 0.5
    mac_max_age: float = 600.0
    idle_timeout: float = 60.0  # flows no packet hit for this long go
    grace: float = 30.0  # flows towards a vanished peer stay this long
    fallback_port: int = FALLBACK_PORT
    dns: DnsConfig = field(default_factory=DnsConfig)
    ipam: IpamConfig = field(default_factory=IpamConfig)
    expose: bool = False  # give the datapath's own port an address from IPAM
    # Hosts whose underlay addresses are in these exchange plaintext VXLAN, password or not.
    trusted_subnets: tuple[Subnet, ...] = ()


def kernel_datapath_available() -> bool:
    return Path("/sys/module/openvswitch").is_dir()


class Router:
    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.macs = MacCache(config.mac_max_age)
        policy = Policy(config.mesh.password is not None, config.trusted_subnets)
        self.links = Links(policy, self._esp_unavailable, self._esp_spis)
        self.forwarder = Forwarder(
            config.dp_name, self.macs, config.udp_port, self.links, max_flows=config.max_flows
        )
        # Started with a password on the kernel datapath (see _start_esp).
        self.esp = Esp(config.udp_port)
        self.overlay = FastDatapath(
            self._mesh_changed, config.udp_port, mtu=config.mtu, esp=self.esp, trusted=policy.trusts
        )
        self.node = MeshNode(self._load_state(), overlay=self.overlay)
        state_dir = self._state_path().parent
        self.ipam = Allocator(self.node, config.ipam, Store(state_dir, config.dp_name))
        # DNS subscribes here to hear of containers coming and going.
        self.attachments = Attachments(state_dir / f"attachments-{config.dp_name}.json")
        self.containers = ContainerPorts(
            self.ipam,
            self.attachments,
            config.mtu,
            self._attach_container,
            self._detach_container,
            lambda: self.exposed_ip,
        )
        self.exposed: str | None = None  # A.B.C.D/LEN on the datapath's own port
        self._saved_short_id: int | None = None
        self.dns = DnsService(
            self.node,
            replace(config.dns, state=config.dns.state or state_dir / f"dns-{config.dp_name}.json"),
        )
        self.attachments.subscribe(self._container_dns)
        self._exposing = asyncio.Lock()  # containers attached at once expose the router once
        self.revalidator = Revalidator(idle=config.idle_timeout, grace=config.grace)
        # Peers gone from the view, and neighbours whose connection to us closed (a
        # router restarting: its datapath still forwards), since when: flows towards
        # them stay for the grace period, so established traffic keeps flowing.
        self._vanished_at: dict[PeerName, float] = {}
        self._disconnected_at: dict[PeerName, float] = {}
        self.sweep_interval = 5.0
        self._last_sweep = time.monotonic()
        self.sweeper: Sweeper | None = None  # runs the passes, while there is a datapath
        self.node.routes.on_change(self._mesh_changed)
        self.endpoint: str | None = None
        self.datapath_kind = ""
        self.dpif: Dpif | None = None
        self.handlers: list[MissHandler] = []
        # `odpctl watch upcalls` gets copies of the misses here, and the router keeps them.
        self.mirror = UpcallMirror(resolve=self._mirrored_ifindex)
        self.handler_restarts = 0
        self._next_handler = 0
        self.flushes = 0
        self.started = time.monotonic()
        self._server: ControlServer | None = None
        self._userspace: subprocess.Popen[bytes] | None = None
        self._owns_datapath = False  # a userspace datapath started here is restarted here
        self.supervisor = DatapathSupervisor()
        self.repeats = RepeatFilter()
        self._stop = asyncio.Event()
        self.fallback: Fallback | None = None
        self._fallback_dpif: Dpif | None = None
        self._last_beat = 0.0
        # The container ports, by number: their names tell a port from the
        # one that takes its number after it (port numbers are reused).
        self.attached: dict[int, str] = {}
        self._dp_ifindex = 0
        self._vport_events: VportEvents | None = None
        self.port_events = 0  # vport events that attached or detached a port
        self._features = DpFeature.UNALIGNED | DpFeature.VPORT_PIDS
        self.dispatch_resets = 0
        self._reattach: list[str] = []  # container ports to attach again to a new datapath

    # --- datapath --------------------------------------------------------------

    def _open_datapath(self) -> None:
        choice = self.config.datapath
        if choice == "auto":
            choice = "kernel" if kernel_datapath_available() else "userspace"
        if choice == "kernel":
            self.endpoint, self.datapath_kind = "kernel", "kernel"
        elif choice == "userspace":
            self.endpoint, self.datapath_kind = self._start_userspace(), "userspace"
        else:
            self.endpoint, self.datapath_kind = choice, "userspace"
        self.dpif = Dpif.open(self.endpoint)

    def _start_userspace(self) -> str:
        """The userspace datapath serving this namespace's default socket: the one that
        already runs there, else one started as our child process. On the default
        socket, every odpctl command in the namespace finds it by itself."""
        path = default_datapath_socket(None)
        endpoint = f"unix:{path}"
        if self._answers(endpoint):
            return endpoint
        child = subprocess.Popen([sys.executable, "-m", "odpctl.datapath", "--socket", str(path)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._answers(endpoint):
                self._userspace, self._owns_datapath = child, True
                return endpoint
            if child.poll() is not None:
                break
            time.sleep(0.05)
        child.kill()
        child.wait()
        raise OdpError(
            "the userspace datapath did not start", hint="run `odpctl dp serve` by hand to see why"
        )

    @staticmethod
    def _answers(endpoint: str) -> bool:
        try:
            with Dpif.open(endpoint) as probe:
                probe.list_datapaths()
        except OdpError:
            return False
        return True

    def _setup_datapath(self) -> None:
        assert self.dpif is not None and self.endpoint is not None
        dp = self.config.dp_name
        self.handlers = [
            MissHandler(i, self.endpoint, self.forwarder, self.mirror)
            for i in range(max(1, self.config.handlers))
        ]
        pids = self._pids()
        try:
            datapath = self.dpif.get_datapath(dp)
            adopted = True
        except NotFoundError:
            datapath = self.dpif.create_datapath(dp, upcall_pid=pids[0])
            adopted = False
        self._dp_ifindex = datapath.ifindex
        self._features = (
            datapath.features | DpFeature.UNALIGNED | DpFeature.VPORT_PIDS
        ) & ~DpFeature.DISPATCH_UPCALL_PER_CPU
        self._check_dispatch(datapath.features)
        # Listen before listing the ports, so that none added meanwhile slips by.
        try:
            self._vport_events = self.dpif.watch_vports()
        except OdpError as exc:
            log.warning("no vport events (%s): ports added by others are not attached", exc)
        local: dict[int, str] = {}
        vxlan: int | None = None
        vx_name = f"vxlan_sys_{self.config.udp_port}"
        for vport in self.dpif.list_vports(dp):
            if vport.port_no is None or vport.port_no == 0:
                continue
            if vport.type == VportType.VXLAN and vport.name == vx_name:
                vxlan = vport.port_no
            elif vport.type == VportType.NETDEV:
                local[vport.port_no] = vport.name
            else:
                continue
            # Adopted ports: their misses now come to our sockets.
            self.dpif.set_vport(dp, vport.port_no, upcall_pids=[self._pid_for(vport.port_no)])
        if vxlan is None:
            try:
                vxlan = self._add_port(
                    Vport(vx_name, VportType.VXLAN, dst_port=self.config.udp_port)
                )
            except OdpError as exc:
                # No VXLAN here: every connection takes the userspace path.
                self.overlay.vxlan_error = f"no VXLAN tunnel port on this datapath: {exc}"
                log.warning("%s", self.overlay.vxlan_error)
        self.attached = local
        self.forwarder.ports = Ports(frozenset(local), vxlan)
        if adopted:
            log.info("adopted datapath %s with %d container ports and its flows", dp, len(local))
        for iface in self.config.ifaces:
            self.attach(iface, flush=False)
        for handler in self.handlers:
            handler.start()
        self.sweeper = Sweeper(
            self.revalidator,
            Dpif.open(self.endpoint),
            dp,
            lambda: sum(h.rounds for h in self.handlers),
            self.sweep_interval,
        )
        self.sweeper.start()

    def _mirrored_ifindex(self, name: str) -> int:
        """The ifindex of the router's datapath ``name`` (a mirror subscription's)."""
        if name != self.config.dp_name or not self._dp_ifindex:
            raise NotFoundError(
                f"this router drives datapath {self.config.dp_name}, not {name}",
                hint=f"watch {self.config.dp_name}",
            )
        return self._dp_ifindex

    def _pids(self) -> list[int]:
        return [h.port_id for h in self.handlers]

    def _pid_for(self, port_no: int) -> int:
        return self.handlers[port_no % len(self.handlers)].port_id

    def _live_dpif(self) -> Dpif:
        if self.dpif is None:
            raise DatapathUnavailableError(
                f"{self.supervisor.problem()}: the router is bringing it back",
                hint="see `odpctl router status`",
            )
        return self.dpif

    def _check_attachable(self, iface: str) -> None:
        """Refuse while the datapath is gone, and refuse the interface that carries the
        mesh's own traffic: attached, it would cut this host off its peers."""
        self._live_dpif()
        peers = [
            *self.config.mesh.peers,
            *self.overlay.neighbours.values(),
            *self.overlay.fallback_neighbours.values(),
        ]
        if use := underlay_use(iface, peers, self.config.mesh.listen_host):
            raise UsageError(use, hint="attach a container's interface, not the host's")

    def attach(self, iface: str, *, flush: bool = True) -> int:
        self._check_attachable(iface)
        assert self.dpif is not None
        dp = self.config.dp_name
        try:
            vport = self.dpif.get_vport(dp, iface)
            if vport.port_no is None:
                raise NotFoundError(f"port {iface} has no number")
            self.dpif.set_vport(dp, vport.port_no, upcall_pids=[self._pid_for(vport.port_no)])
            port_no = vport.port_no
        except NotFoundError:
            port_no = self._add_port(Vport(iface, VportType.NETDEV))
        self._mark_attached(port_no, iface, flush=flush)
        log.info("attached %s as port %d", iface, port_no)
        return port_no

    def _mark_attached(self, port_no: int, name: str, *, flush: bool) -> None:
        """Port ``port_no`` is a container port from now on."""
        new = self.attached.get(port_no) != name
        self.attached[port_no] = name
        ports = self.forwarder.ports
        self.forwarder.ports = Ports(ports.local | {port_no}, ports.vxlan)
        if new and flush:
            # The flows that flood broadcasts to the container ports miss this one.
            self._flush("port attached")

    def _mark_detached(self, port_no: int, why: str) -> None:
        """Port ``port_no`` is no container port any more: its MACs and flows go."""
        self.attached.pop(port_no, None)
        ports = self.forwarder.ports
        self.forwarder.ports = Ports(ports.local - {port_no}, ports.vxlan)
        self.macs.forget_port(port_no)
        self._flush(why)

    def _add_port(self, vport: Vport) -> int:
        """Add ``vport``, its misses going to one of the handlers."""
        assert self.dpif is not None
        # The kernel refuses (EINVAL) several upcall PIDs on a port, so the
        # ports are spread over the handlers instead, round robin.
        pid = self._pids()[self._next_handler % len(self.handlers)]
        self._next_handler += 1
        added = self.dpif.add_vport(self.config.dp_name, replace(vport, upcall_pids=(pid,)))
        assert added.port_no is not None
        return added.port_no

    def detach(self, iface: str) -> int:
        self._live_dpif()
        assert self.dpif is not None
        dp = self.config.dp_name
        vport = self.dpif.get_vport(dp, iface)
        if vport.port_no is None or vport.port_no not in self.forwarder.ports.local:
            raise UsageError(f"{iface} is not a container port of {dp}")
        self.dpif.delete_vport(dp, vport.port_no)
        # Forgotten now: the event of this deletion, when it comes, is not news.
        self._mark_detached(vport.port_no, "port detached")
        return vport.port_no

    def _check_dispatch(self, features: DpFeature | None = None) -> None:
        """Keep the upcalls per port, where our handlers listen.

        Open vSwitch's tools switch a datapath they merely open (`ovs-dpctl
        show`, `add-if`, ...) to per-CPU upcall dispatch, with no PIDs: every
        miss would be lost.  Switched back here, on each vport event and tick.
        """
        assert self.dpif is not None
        if features is None:
            features = self.dpif.get_datapath(self.config.dp_name).features
        if not features & DpFeature.DISPATCH_UPCALL_PER_CPU:
            return
        log.warning(
            "datapath %s was switched to per-CPU upcall dispatch (by ovs-dpctl?): "
            "back to per-port upcalls",
            self.config.dp_name,
        )
        self.dpif.set_datapath(self.config.dp_name, features=self._features)
        self.dispatch_resets += 1

    # --- ports added and deleted by others ------------------------------------------

    def _watch_ports(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._vport_events is not None:
            loop.add_reader(self._vport_events.fileno(), self._vport_events_ready)

    def _unwatch_ports(self) -> None:
        if self._vport_events is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._vport_events.fileno())
        self._vport_events.close()
        self._vport_events = None

    def _vport_events_ready(self) -> None:
        events = self._vport_events
        if events is None or self.dpif is None:
            return
        overruns = events.overruns
        try:
            while (event := events.receive(timeout=0)) is not None:
                self.port_event(event)
            self._check_dispatch()
            if events.overruns != overruns:
                log.warning("vport events lost (receive buffer overrun): rereading the ports")
                self.resync_ports()
        except DatapathUnavailableError:
            self._unwatch_ports()  # a dead socket is always readable: the supervisor's business
        except OdpError as exc:
            log.warning("vport events: %s", exc)
        except Exception:
            log.exception("vport events")

    def port_event(self, event: VportEvent) -> None:
        """A port of the datapath added or deleted, by us or by anyone else."""
        vport = event.vport
        if vport.dp_ifindex != self._dp_ifindex or not vport.port_no:
            return
        if event.kind == "new" and vport.type == VportType.NETDEV:
            if self.attached.get(vport.port_no) != vport.name:  # else ours, or known
                self._adopt(vport.name, vport.port_no)
        elif event.kind == "del" and self.attached.get(vport.port_no) == vport.name:
            # Not one we deleted ourselves (detach forgets it at once), nor one that went
            # with the whole datapath: _supervise attaches it again to the new one.
            if self._datapath_trouble() is not None:
                return
            log.info(
                "port %d (%s) left datapath %s: detached",
                vport.port_no,
                vport.name,
                self.config.dp_name,
            )
            self.port_events += 1
            self._mark_detached(vport.port_no, "port deleted")

    def _adopt(self, name: str, port_no: int) -> None:
        """Attach the netdev port someone else added: its misses come to us."""
        assert self.dpif is not None
        dp = self.config.dp_name
        try:
            # By name: the number may belong to another port by now.
            vport = self.dpif.set_vport(dp, name, upcall_pids=[self._pid_for(port_no)])
        except NotFoundError:
            return  # deleted again already; its deletion's event follows
        if vport.dp_ifindex != self._dp_ifindex or vport.port_no != port_no:
            return  # a port of that name, but not this one any more
        stale = self.attached.get(port_no)
        if stale is not None:
            self._mark_detached(port_no, f"port {port_no} reused")  # its deletion went unseen
        log.info("port %d (%s) added to datapath %s: attached", port_no, name, dp)
        self.port_events += 1
        self._mark_attached(port_no, name, flush=True)

    def resync_ports(self) -> None:
        """Attach and forget ports by the datapath's list, when events were lost."""
        assert self.dpif is not None
        netdevs = {
            v.port_no: v.name
            for v in self.dpif.list_vports(self.config.dp_name)
            if v.port_no and v.type == VportType.NETDEV
        }
        for port_no, name in list(self.attached.items()):
            if netdevs.get(port_no) != name:
                self.port_events += 1
                self._mark_detached(port_no, "port deleted")
        for port_no, name in netdevs.items():
            if port_no not in self.attached:
                self._adopt(name, port_no)

    def _flush(self, why: str) -> None:
        assert self.dpif is not None
        try:
            self.dpif.flush_flows(self.config.dp_name)
            self.flushes += 1
            log.debug("flows flushed: %s", why)
        except OdpError as exc:
            log.warning("cannot flush flows (%s): %s", why, exc)

    # --- the mesh's view ---------------------------------------------------------

    def _mesh_changed(self) -> None:
        # The links at once (a new connection's datagrams may come before the next
        # tick); the view on the tick.
        self._sync_links()

    def _sync_links(self) -> None:
        self.links.sync(c.params for c in self.overlay.connections.values())

    def _esp_unavailable(self) -> str | None:
        """Why container traffic cannot take ESP on the fast path here (None: it can,
        once a connection's security associations are up)."""
        return None if self.esp.available else (self.esp.reason or UNAVAILABLE)

    def _esp_state(self, peer: PeerName) -> EspState | None:
        conn = self.overlay.connections.get(peer)
        return conn.esp_state if conn is not None else None

    def _esp_spis(self, peer: PeerName) -> dict[str, int] | None:
        """The SPIs of the connection to ``peer`` once both its ESP associations are up.
        Asked for every connection on every tick: from memory, not the kernel."""
        conn = self.overlay.connections.get(peer)
        esp = conn.esp if conn is not None else None
        if esp is None or not esp.installed or esp.spi_in is None or esp.spi_out is None:
            return None
        return {"in": esp.spi_in, "out": esp.spi_out}

    def build_view(self) -> MeshView:
        node, routes = self.node, self.node.routes
        short_ids: dict[PeerName, int] = {node.name: node.short_id}
        next_hops: dict[PeerName, PeerName] = {}
        for peer in routes.reachable():
            entry = node.topology.get(peer)
            if entry is None or entry.short_id is None:
                continue
            short_ids[peer] = entry.short_id
            hop = routes.unicast(peer)
            if hop is not None and peer != node.name:
                next_hops[peer] = hop
        broadcast = {src: tuple(routes.broadcast(src)) for src in short_ids}
        # No silent downgrade: a connection that may not carry plaintext VXLAN
        # takes the (sealed) fallback, however healthy its fast path.
        fast = {p: ip for p, ip in self.overlay.neighbours.items() if self.links.vxlan_ok(p)}
        slow = {p: ip for p, ip in self.overlay.neighbours.items() if p not in fast}
        return MeshView(
            ourself=node.name,
            our_short_id=node.short_id,
            short_ids=short_ids,
            next_hops=next_hops,
            broadcast=broadcast,
            neighbour_ips=fast,
            fallback_ips={**self.overlay.fallback_neighbours, **slow},
            by_short_id={sid: peer for peer, sid in short_ids.items()},
            vxlan_from=frozenset(fast.values()) if self.links.required else None,
        )

    def _refresh_view(self) -> None:
        self._sync_links()  # a connection's ESP may have come up or gone down meanwhile
        view = self.build_view()
        old = self.forwarder.view
        now = time.monotonic()
        connected = set(self.overlay.connections)  # on the fast path or the fallback
        if old is not None:
            for peer in set(old.short_ids) - set(view.short_ids):
                self._vanished_at.setdefault(peer, now)
            for peer in set(old.neighbour_ips) - connected:
                self._disconnected_at.setdefault(peer, now)
        for peer in set(view.short_ids):
            self._vanished_at.pop(peer, None)
        for peer in connected:
            self._disconnected_at.pop(peer, None)
        expired = False
        for since in (self._vanished_at, self._disconnected_at):
            for peer in [p for p, t in since.items() if now - t > self.revalidator.grace]:
                del since[peer]
                expired = True
        if view == old and not expired:
            return
        self.forwarder.view = view
        if old is not None:
            # Routes, short IDs or neighbours changed: revalidate the flows.
            self._sweep(view_changed=True)
        self.macs.forget_peers(set(view.short_ids) | set(self._vanished_at))
        if self.node.short_id != self._saved_short_id:
            self._save_state()

    def _sweep(self, view_changed: bool) -> None:
        """Ask for a revalidation pass: it runs on the sweeper's thread."""
        view = self.forwarder.view
        if view is None or self.sweeper is None:
            return
        graced = frozenset(self._vanished_at) | frozenset(self._disconnected_at)
        self.sweeper.request(view, graced, view_changed)

    # --- state kept across restarts ---------------------------------------------------

    def _state_path(self) -> Path:
        return runtime_dir(None) / f"router-{self.config.dp_name}.json"

    def _load_state(self) -> MeshConfig:
        """Our short ID from the previous run: the flows it left name it in VNIs."""
        mesh = self.config.mesh
        if mesh.short_id is not None:
            return mesh
        try:
            state = json.loads(self._state_path().read_text())
            return dataclasses.replace(mesh, short_id=int(state["short_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            return mesh

    def _save_state(self) -> None:
        self._saved_short_id = self.node.short_id
        path = self._state_path()
        try:
            make_parent(path)
            path.write_text(json.dumps({"short_id": self.node.short_id}))
        except OSError as exc:
            log.warning("cannot save %s: %s", path, exc)

    # --- housekeeping ------------------------------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick)
            try:
                if time.monotonic() - self._last_beat >= self.overlay.interval:
                    self._last_beat = time.monotonic()
                    self.overlay.tick(self._send_heartbeat)
                self._refresh_view()
                self.repeats.flush()
                if self.dpif is None:
                    continue  # the datapath is gone: _supervise brings it back
                self._watchdog()
                mark = self.forwarder.stats.flows_installed
                datapath = self.dpif.get_datapath(self.config.dp_name)
                self.forwarder.recount(datapath.flows, since=mark)
                self._check_dispatch(datapath.features)
                self.macs.expire()
                self.dns.tick()
                if time.monotonic() - self._last_sweep > self.sweep_interval:
                    self._last_sweep = time.monotonic()
                    self._sweep(view_changed=False)
            except OdpError as exc:
                log.warning("housekeeping: %s", exc)
            except Exception:
                log.exception("housekeeping")

    def _send_heartbeat(self, peer: PeerName, ip: str, kind: int) -> bool:
        """One heartbeat to ``peer`` through the VXLAN tunnel; whether it left."""
        vxlan, entry = self.forwarder.ports.vxlan, self.node.topology.get(peer)
        if self.dpif is None or vxlan is None or entry is None or entry.short_id is None:
            return False
        actions = tunnel_to(
            vni(self.node.short_id, entry.short_id), ip, vxlan, self.config.udp_port
        )
        frame = heartbeat.frame(kind, self.node.name, self.config.mtu)
        try:
            self.dpif.execute(
                self.config.dp_name, Execute(frame, FlowKey({KeyAttr.IN_PORT: 0}), actions)
            )
        except OdpError as exc:
            log.debug("heartbeat to %s: %s", ip, exc)
            return False
        return True

    def _start_fallback(self) -> None:
        assert self.endpoint is not None
        loop = asyncio.get_running_loop()
        try:
            self.fallback = Fallback(self.links, self.config.fallback_port)
        except OSError as exc:
            log.warning(
                "no userspace fallback: cannot bind UDP %d: %s",
                self.config.fallback_port,
                exc.strerror,
            )
            return
        self._fallback_dpif = Dpif.open(self.endpoint)
        forwarder = self.forwarder

        def receive(src: int, dst: int, frame: bytes, ip: str) -> None:
            dpif = self._fallback_dpif  # a new one after the datapath came back
            if dpif is not None:
                forwarder.inject(dpif, src, dst, frame, ip)

        self.fallback.start(receive)
        forwarder.fallback = self.fallback

        def beat(sender: int, kind: int) -> None:
            loop.call_soon_threadsafe(self.overlay.heartbeat_received, PeerName(sender), kind)

        forwarder.on_heartbeat = beat

    def _watchdog(self) -> None:
        """Replace a miss handler whose thread died: never lose the miss path silently."""
        assert self.endpoint is not None and self.dpif is not None
        for i, handler in enumerate(self.handlers):
            if handler.alive or handler.lost:
                continue
            log.error("miss handler %d died (%s); starting a new one", i, handler.last_error)
            handler.stop()
            self.handlers[i] = MissHandler(i, self.endpoint, self.forwarder, self.mirror)
            self.handlers[i].start()
            self.handler_restarts += 1
            # Every port pointing at the dead socket now points at the new one.
            dead, dp = handler.port_id, self.config.dp_name
            for vport in self.dpif.list_vports(dp):
                if vport.port_no and dead in vport.upcall_pids:
                    self.dpif.set_vport(dp, vport.port_no, upcall_pids=[self.handlers[i].port_id])

    def _start_esp(self) -> None:
        """ESP for the fast path: with a password, on the kernel datapath."""
        if not self.config.mesh.password:
            self.esp.reason = "no mesh password"
        elif self.datapath_kind != "kernel":
            self.esp.reason, self.esp.detail = UNAVAILABLE, "the userspace datapath"
        else:
            self.esp.start()
            if self.esp.firewall is not None:
                log.info("ESP on the fast path, firewall %s", self.esp.firewall.name)
            else:
                log.warning("no ESP on the fast path: %s (%s)", self.esp.reason, self.esp.detail)
            if self.esp.available:
                # A killed router's flows: their ESP states were just flushed, so
                # they would tunnel frames in clear.
                self._flush("ESP starts")

    def _stop_handlers(self) -> None:
        for handler in self.handlers:
            handler.stop()
        self.handlers = []
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None

    # --- the datapath gone, and back ----------------------------------------------------

    async def _supervise(self) -> None:
        """Notice within a second that the datapath is gone; bring it back, with backoff."""
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL)
            try:
                if self.supervisor.outage is None:
                    reason = self._datapath_trouble()
                    if reason is not None:
                        self._datapath_lost(reason)
                if self.supervisor.due():
                    await self._recover()
            except Exception:
                log.exception("datapath supervision")

    def _datapath_trouble(self) -> str | None:
        """Why the datapath is gone, or None while it is there."""
        assert self.dpif is not None
        try:
            self.dpif.get_datapath(self.config.dp_name)
        except NotFoundError:
            return f"datapath {self.config.dp_name} was deleted"
        except DatapathUnavailableError as exc:
            return self._child_gone(exc.message)
        if lost := next((h.lost for h in self.handlers if h.lost), None):
            return self._child_gone(lost)
        return exit_reason(self._userspace) if self._userspace is not None else None

    def _child_gone(self, reason: str) -> str:
        """``reason``, or better the end of the userspace datapath we started: it is over
        (killed now if it still runs, unreachable)."""
        child = self._userspace
        if child is None:
            return reason
        try:
            child.wait(0.5)  # its sockets close a moment before its exit status is there
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            return f"{reason}; the userspace datapath (pid {child.pid}) was killed"
        return exit_reason(child) or reason

    def _datapath_lost(self, reason: str) -> None:
        self.supervisor.lost(reason)
        if self._userspace is not None and self._userspace.poll() is not None:
            self._userspace = None  # ended and reaped: started again by _recover
        log.error(
            "datapath %s lost: %s; %s",
            self.config.dp_name,
            reason,
            "restarting it" if self._owns_datapath else "reconnecting",
        )
        # Port numbers start afresh in the new datapath: MACs learnt on ports are stale.
        for port_no in self.attached:
            self.macs.forget_port(port_no)
        self._reattach = list(self.attached.values())
        self.attached = {}
        self.forwarder.ports = Ports(frozenset(), None)
        self._drop_datapath()

    def _drop_datapath(self) -> None:
        """Close everything held to the datapath (sockets to a dead one are always readable)."""
        self._unwatch_ports()
        self._stop_handlers()
        for dpif in (self.dpif, self._fallback_dpif):
            if dpif is not None:
                dpif.close()
        self.dpif = self._fallback_dpif = None

    async def _recover(self) -> None:
        """One try at the datapath: restarted if it was ours, recreated with its ports."""
        assert self.endpoint is not None
        loop = asyncio.get_running_loop()
        restart = self._owns_datapath and self._userspace is None
        try:
            if restart:
                self.endpoint = await loop.run_in_executor(None, self._start_userspace)
            self.dpif = Dpif.open(self.endpoint)
            self._setup_datapath()
            self._watch_ports(loop)
            self._fallback_dpif = Dpif.open(self.endpoint)
        except OdpError as exc:
            self._drop_datapath()
            delay = self.supervisor.failed(exc.message)
            log.debug(
                "datapath %s still unreachable (%s): next try in %.2f s",
                self.config.dp_name,
                exc,
                delay,
            )
            return
        for iface in self._reattach:
            if iface in self.attached.values():
                continue
            try:
                self.attach(iface, flush=False)
            except OdpError as exc:
                log.warning("cannot attach %s again: %s", iface, exc)
        down = self.supervisor.recovered(restarted=restart)
        log.warning(
            "datapath %s back after %.1f s%s, ports %s: misses rebuild the flows",
            self.config.dp_name,
            down,
            " (restarted)" if restart else "",
            sorted(self.attached.values()),
        )

    # --- status ------------------------------------------------------------------

    def router_status(self) -> dict[str, Any]:
        stats = self.forwarder.stats
        try:
            counts = datapath_counts(self._live_dpif(), self.config.dp_name)
        except OdpError:
            counts = dict.fromkeys(("hit", "missed", "lost", "rx_dropped", "flows"), -1)
        flows, lost = counts["flows"], counts["lost"]
        handlers = [h.status() for h in self.handlers]
        overruns = sum(int(h["overruns"] or 0) for h in handlers)  # type: ignore[call-overload]
        dead = [h["index"] for h in handlers if not h["alive"]]
        conns = self._with_links(self.node.peers_status()["connections"])
        established = [c for c in conns if c.get("state") == "established"]
        unhealthy = [c for c in established if c.get("reason")]
        problems = [p for p in [self.supervisor.problem()] if p]
        if dead:
            problems.append(f"miss handler(s) {dead} down")
        if unhealthy:
            problems.append(f"{len(unhealthy)} connection(s) degraded")
        if lost > 0 or overruns:
            problems.append(f"{max(lost, 0) + overruns} miss(es) lost")
        ipam = self.ipam.state()
        health = "ok" if not problems else "; ".join(problems)
        warnings = self.warnings()
        summary = (
            f"{health}: {len(established)} connection(s), "
            f"{len(self.forwarder.view.short_ids) - 1 if self.forwarder.view else 0} "
            f"peer(s) reachable, {flows} flow(s), datapath {self.datapath_kind}, "
            f"IPAM {ipam[1]}"
        )
        return {
            "summary": summary,
            "healthy": not problems,
            "datapath": {
                "kind": self.datapath_kind,
                "endpoint": self.endpoint,
                "name": self.config.dp_name,
                "ports": sorted(self.forwarder.ports.local),
                "ifaces": {name: no for no, name in sorted(self.attached.items())},
                "vxlan_port": self.forwarder.ports.vxlan,
                "udp_port": self.config.udp_port,
                **self.supervisor.status(),
            },
            "mtu": self.config.mtu,
            **counts,
            **miss_counts(self.forwarder),
            "flooded": stats.flooded,
            "relayed": stats.relayed,
            "mac_moves": stats.mac_moves,
            "fallback": {
                "sent": stats.fallback_sent,
                "received": stats.fallback_received,
                "port": self.config.fallback_port,
                "alive": self.fallback is not None and self.fallback.alive,
                "vxlan_error": self.overlay.vxlan_error,
            },
            "esp": self.esp.diagnostics(),
            "flushes": self.flushes,
            "port_events": self.port_events,
            "dispatch_resets": self.dispatch_resets,
            "revalidated": self.revalidator.status(),
            "mac_cache": len(self.macs),
            "macs": self.macs.places(),
            "handlers": handlers,
            "handler_restarts": self.handler_restarts,
            "miss_latency": latency_summary(self.handlers),
            "connections": conns,
            "dns": self.dns.status(),
            "exposed": self.exposed,
            "containers": len(self.attachments),
            "ipam": {
                "state": ipam[0],
                "message": ipam[1],
                "range": str(self.ipam.cidr),
                "allocated": len(self.ipam.space),
            },
            "encryption": self.links.status(),
            "warnings": warnings,
        }

    def _with_links(self, conns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The mesh's connection entries with how each protects container traffic."""
        links = {format_peer_name(p): link for p, link in self.links.by_peer.items()}
        for conn in conns:
            link = links.get(conn.get("peer") or "")
            if link is None or conn.get("state") not in ("established", "connected"):
                continue
            conn.update(link.status())
            esp = self._esp_state(link.peer)
            if link.encryption == ESP and esp is not None:
                # What the kernel refused on the inbound association.
                conn["auth_failures"] += esp.auth_failures
                conn["replays"] += esp.replays
            if not link.vxlan_ok:
                conn["overlay"] = FALLBACK  # whatever the heartbeats say of VXLAN
        return conns

    def warnings(self) -> list[str]:
        """What the operator should know of how exposed this router is."""
        if self.links.required:
            return []
        hosts = {c.params.local_address[0] for c in self.overlay.connections.values()}
        hosts.add(self.config.mesh.listen_host)
        exposed = sorted(h for h in hosts if public_address(h))
        if not exposed:
            return []
        return [
            f"the mesh has no password on {', '.join(exposed)}: anyone on that network "
            f"can read container traffic, or join the mesh as a peer "
            f"(start routers with --password-file)"
        ]

    def _handlers(self) -> dict[str, Any]:
        handlers = control_handlers(self.node)

        def status(_request: dict[str, Any]) -> Any:
            result = self.node.status()
            result["router"] = self.router_status()
            return result

        def peers(_request: dict[str, Any]) -> Any:
            result = self.node.peers_status()
            result["connections"] = self._with_links(result["connections"])
            return result

        async def attach(request: dict[str, Any]) -> Any:
            if "iface" not in request:
                if request.get("dns", True) is not False:
                    await self._dns_server_for_containers()
                return await self.containers.attach(request)
            return {"iface": _iface(request), "port": self.attach(_iface(request))}

        async def detach(request: dict[str, Any]) -> Any:
            if "iface" not in request:
                return await self.containers.detach(request)
            return {"iface": _iface(request), "port": self.detach(_iface(request))}

        async def expose(_request: dict[str, Any]) -> Any:
            return {"ip": await self.expose()}

        async def stop(request: dict[str, Any]) -> Any:
            handed = await self.ipam.leave() if request.get("shutdown") else None
            asyncio.get_running_loop().call_later(0.1, self.request_stop)
            return {"stopping": True, "handed": handed}

        handlers.update(
            status=status,
            peers=peers,
            attach=attach,
            detach=detach,
            expose=expose,
            stop=stop,
            **ipam_handlers(self.ipam),
        )
        handlers.update(encryption=lambda _: self.links.status())
        # Where frames and misses went, without the rest of status (cheap to poll).
        handlers.update(
            misses=lambda request: {
                **datapath_counts(self._live_dpif(), self.config.dp_name),
                **miss_counts(self.forwarder),
                # ``since``: the misses of a time window only (a benchmark's burst).
                "miss_latency": latency_summary(self.handlers, float(request.get("since", 0))),
                "revalidating": self.sweeper is not None and self.sweeper.running,
                "revalidated": self.revalidator.status(),
            }
        )
        handlers.update(self.dns.handlers())
        return handlers

    # --- containers by namespace ---------------------------------------------------

    def _attach_container(self, iface: str) -> int:
        return self.attach(iface)

    def _detach_container(self, iface: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.detach(iface)

    @property
    def exposed_ip(self) -> str | None:
        """The exposed address without its length: the containers' gateway, DNS's server."""
        return self.exposed.split("/")[0] if self.exposed else None

    async def expose(self) -> str:
        """An address from IPAM on the datapath's own port, which joins the overlay."""
        addr = await self.ipam.allocate(EXPOSE_ID)
        self.exposed = f"{format_ip(addr)}/{self.ipam.prefixlen()}"
        await asyncio.to_thread(
            veth.set_address, self.config.dp_name, self.exposed, self.config.mtu
        )
        ports = self.forwarder.ports
        if 0 not in ports.local:
            self.forwarder.ports = Ports(ports.local | {0}, ports.vxlan)
            self._flush("datapath port exposed")
        log.info("exposed %s on %s", self.exposed, self.config.dp_name)
        await self._serve_dns()
        return self.exposed

    async def _serve_dns(self) -> None:
        """DNS on the exposed address (unless --dns-listen named another): a failure
        costs the containers their names, never the router its exposed address."""
        try:
            await self.dns.start(Listen(self.exposed_ip) if self.exposed_ip else None)
        except OdpError as exc:
            log.warning("no DNS server: %s", exc)

    async def _dns_server_for_containers(self) -> None:
        """A container that wants DNS needs our server: expose the router (which starts
        it) if nothing else did.  Failing that, the container still gets attached."""
        async with self._exposing:
            if self.dns.server is not None or self.exposed is not None:
                return
            try:
                await self.expose()
            except OdpError as exc:
                log.warning("no DNS server for the containers: cannot expose the router: %s", exc)

    def _container_dns(self, event: str, attachment: Attachment) -> None:
        """A container came or went: its name and its resolv.conf (unless --without-dns)."""
        if not attachment.dns:
            return
        if event == ATTACH:
            address = attachment.ip.split("/")[0]
            self.dns.attach(attachment.id, attachment.name, address, attachment.netns)
        else:
            self.dns.detach(attachment.id, attachment.netns)

    async def _expose_when_ready(self) -> None:
        while True:
            try:
                await self.expose()
                return
            except OdpError as exc:
                log.warning("cannot expose yet: %s", exc)

    # --- lifecycle -----------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        self.repeats.install(*ROUTER_LOGGERS)
        try:
            self._open_datapath()
            self._setup_datapath()
            await self.containers.restore(set(self.attached.values()))
            self._watch_ports(loop)
            self._start_fallback()
            self._start_esp()
            await self.node.start()
            self.ipam.start()
            if self.config.expose:
                exposer = loop.create_task(self._expose_when_ready())
            self._server = ControlServer(
                self.config.control or default_socket_path(), self._handlers()
            )
            self._server.register_stream(SUBSCRIBE, self.mirror.serve)
            await self._server.start()
            await self.dns.start()
            self._refresh_view()
            log.info(
                "router %s up: datapath %s (%s), control socket %s",
                self.node,
                self.config.dp_name,
                self.datapath_kind,
                self._server.path,
            )
            tasks = [loop.create_task(self._housekeeping()), loop.create_task(self._supervise())]
            try:
                await self._stop.wait()
            finally:
                if self.config.expose:
                    tasks.append(exposer)
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            await self.close()

    async def close(self) -> None:
        self.repeats.uninstall(*ROUTER_LOGGERS)
        await self.dns.stop()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.ipam.stop()
        if self.esp.available and self.dpif is not None:
            # Once the ESP states are gone a flow left to VXLAN would carry frames in
            # clear: with ESP, no flow outlives the router (no miss installs one after).
            self._stop_handlers()
            self._flush("ESP stops with the router")
        await self.node.stop()
        self.esp.stop()
        if self.fallback is not None:
            self.fallback.stop()
            self.fallback = None
        self._drop_datapath()
        if self._userspace is not None:
            # The userspace datapath dies with us: its flows can't outlive it.
            self._userspace.send_signal(signal.SIGTERM)
            try:
                self._userspace.wait(5)
            except subprocess.TimeoutExpired:
                self._userspace.kill()
            self._userspace = None


def _iface(request: dict[str, Any]) -> str:
    iface = request.get("iface")
    if not isinstance(iface, str) or not iface or len(iface) > 15 or "/" in iface:
        raise UsageError('expected "iface": a network interface name')
    return iface


def ipam_handlers(ipam: Allocator) -> dict[str, Any]:
    """The control socket's ipam_* commands."""

    def answer(ident: str, addr: int, subnet: Cidr | None = None) -> dict[str, Any]:
        return {"id": ident, "ip": f"{format_ip(addr)}/{ipam.prefixlen(subnet)}"}

    async def allocate(request: dict[str, Any]) -> Any:
        subnet = Cidr.parse(request["cidr"]) if request.get("cidr") else None
        ident = ipam.check_id(request.get("id"))
        return answer(ident, await ipam.allocate(ident, subnet), subnet)

    async def claim(request: dict[str, Any]) -> Any:
        ident, ip = ipam.check_id(request.get("id")), request.get("ip")
        if not isinstance(ip, str):
            raise UsageError('expected "ip": an address A.B.C.D')
        return answer(ident, await ipam.claim(ident, parse_ip(ip.split("/")[0])))

    def release(request: dict[str, Any]) -> Any:
        ident = ipam.check_id(request.get("id"))
        addr = ipam.release(ident)
        return {"id": ident, "ip": format_ip(addr) if addr is not None else None}

    def status(_request: dict[str, Any]) -> Any:
        return {**ipam.status(), "allocations": ipam.allocations()}

    async def rmpeer(request: dict[str, Any]) -> Any:
        peer = request.get("peer")
        if not isinstance(peer, str):
            raise UsageError('expected "peer": a peer name or nickname')
        return await ipam.rmpeer(peer)

    return {
        "ipam_allocate": allocate,
        "ipam_claim": claim,
        "ipam_release": release,
        "ipam_status": status,
        "ipam_rmpeer": rmpeer,
    }


def run_router(config: RouterConfig) -> None:
    """Run a router in the foreground until SIGINT or SIGTERM."""
    asyncio.run(Router(config).run())


__all__ = [
    "DEFAULT_DP",
    "DEFAULT_MTU",
    "Router",
    "RouterConfig",
    "kernel_datapath_available",
    "run_router",
]
