"""One userspace datapath: its ports, its flow table, and the packet path.

A packet from a port (or recirculated, or executed by a client) is looked
up in the flow table; a hit runs the flow's compiled actions and updates
its statistics, a miss becomes an upcall.  The counters are the kernel's:
``hit``, ``missed`` (misses, delivered or not) and ``lost`` (upcalls that
could not be delivered).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from odpctl.datapath.classifier import DpFlow, FlowTable
from odpctl.datapath.execute import flow_hash, run
from odpctl.datapath.extract import extract, signature
from odpctl.datapath.keyencode import put_flat_key, put_tunnel
from odpctl.datapath.layout import FIELD, OFFSET
from odpctl.datapath.packet import VNET_LEN, Packet, frames
from odpctl.datapath.ports import Port
from odpctl.datapath.upcalls import Deliver, pick_pid, upcall_message
from odpctl.datapath.validate import EgressTunnel
from odpctl.odp.actions import Userspace
from odpctl.odp.uapi import DpFeature, PacketCmd

# Recirculations one packet may go through before it is dropped (the kernel
# allows a few levels of recursion and a small queue of deferred actions).
MAX_RECIRC_DEPTH = 8
DEFAULT_MASKS_CACHE_SIZE = 256

_IN_PORT = FIELD["in_port"]
_IN_PORT_AT = OFFSET["in_port"]


def now_ms() -> int:
    """The datapath clock: CLOCK_MONOTONIC in ms, as the kernel reports ``used``."""
    return time.monotonic_ns() // 1_000_000


class Datapath:
    def __init__(
        self,
        name: str,
        deliver: Deliver,
        packet_family: int,
        on_port_gone: Callable[[Datapath, Port, str], None],
    ) -> None:
        self.name = name
        self.ifindex = 0  # the local port's, once it exists
        self.features = DpFeature(0)
        self.masks_cache_size = DEFAULT_MASKS_CACHE_SIZE
        self.per_cpu_pids: tuple[int, ...] = ()
        self.ports: dict[int, Port] = {}
        self.table = FlowTable()
        self.hit = self.missed = self.lost = 0
        self.dropped_recirc = 0
        self._pending: set[Port] = set()
        self.now = now_ms()
        self._deliver = deliver
        self._packet_family = packet_family
        self._on_port_gone = on_port_gone

    # --- the packet path ---------------------------------------------------------

    def receive(self, _port: Port, pkt: Packet) -> None:
        self.process(pkt, 0)

    def process(self, pkt: Packet, depth: int) -> None:
        table = self.table
        flow: DpFlow | None
        sig = signature(pkt.data) if pkt.fields is None else None
        if sig is not None:
            if type(sig) is not bytes:
                sig = bytes(sig)  # from a rewritten packet: a bytearray, unhashable
            # The fast path: a common frame keyed by its header bytes alone.
            cache_key = (pkt.meta, sig, pkt.opts)
            hit = table.fast.get(cache_key)
            if hit is not None:
                table.cache_hit += 1
                flow, pkt.fields = hit
            else:
                fields = pkt.fields = extract(pkt.data, VNET_LEN)
                flow = table.classify(pkt.meta + fields, pkt.opts)
                if flow is not None:
                    table.remember(cache_key, flow, fields)
        else:
            flow = table.lookup(pkt.key(), pkt.opts)
        if flow is None:
            self.missed += 1
            self._miss(pkt)
            return
        self.hit += 1
        flow.packets += 1
        flow.bytes += len(pkt.data) - VNET_LEN
        flow.used = self.now
        flow.tcp_flags |= pkt.fields[-1]  # type: ignore[index]
        run(flow.program, self, pkt, depth)

    def output(self, pkt: Packet, port_no: int) -> None:
        port = self.ports.get(port_no)
        if port is not None:
            port.send(pkt)

    def recirculate(self, pkt: Packet, depth: int) -> None:
        if depth >= MAX_RECIRC_DEPTH:
            self.dropped_recirc += 1
            return
        self.process(pkt, depth + 1)

    def port_gone(self, port: Port, reason: str) -> None:
        self._on_port_gone(self, port, reason)

    def pending(self, port: Port) -> None:
        self._pending.add(port)

    def forget(self, port: Port) -> None:
        """``port`` is going: send what it still holds, then no more."""
        if port in self._pending:
            self._pending.discard(port)
            port.flush()

    def flush(self) -> bool:
        """Send what ports queued while packets were processed; False if some must retry."""
        if not self._pending:
            return True
        retry = {port for port in self._pending if not port.flush()}
        self._pending = retry
        return not retry

    # --- upcalls -----------------------------------------------------------------

    def _miss(self, pkt: Packet) -> None:
        in_port = _IN_PORT.unpack_from(pkt.meta, _IN_PORT_AT)[0]
        port = self.ports.get(in_port)
        h = flow_hash(pkt)
        if self.features & DpFeature.DISPATCH_UPCALL_PER_CPU and self.per_cpu_pids:
            pid = pick_pid(self.per_cpu_pids, h)
        else:
            pid = pick_pid(port.upcall_pids, h) if port is not None else 0
        self._upcall(pkt, PacketCmd.MISS, pid, port, h)

    def userspace(self, pkt: Packet, action: Userspace, actions_attr: bytes | None) -> None:
        in_port = _IN_PORT.unpack_from(pkt.meta, _IN_PORT_AT)[0]
        egress = None
        if action.egress_tun_port is not None and isinstance(pkt.egress, EgressTunnel):
            t = pkt.egress
            egress = put_tunnel(t.key, t.opts, len(t.opts), t.key.tun_proto)
        self._upcall(
            pkt,
            PacketCmd.ACTION,
            action.pid,
            self.ports.get(in_port),
            flow_hash(pkt),
            userdata=action.userdata,
            egress=egress,
            actions=actions_attr,
        )

    def _upcall(
        self,
        pkt: Packet,
        cmd: PacketCmd,
        pid: int,
        port: Port | None,
        h: int,
        *,
        userdata: bytes | None = None,
        egress: bytes | None = None,
        actions: bytes | None = None,
    ) -> None:
        if not pid:
            self._delivered(port, False)
            return
        key_attrs = put_flat_key(pkt.key(), pkt.opts)
        messages = []
        for frame in frames(pkt.data):
            length = None
            if pkt.cutlen:
                length = len(frame)
                frame = frame[: max(0, len(frame) - pkt.cutlen)]
            messages.append(
                upcall_message(
                    self._packet_family,
                    self.ifindex,
                    cmd,
                    key_attrs,
                    frame,
                    userdata=userdata,
                    egress_tun_key=egress,
                    actions=actions,
                    length=length,
                    flow_hash=h,
                )
            )
        self._deliver(pid, messages, partial(self._delivered, port))

    def _delivered(self, port: Port | None, ok: bool) -> None:
        if ok:
            if port is not None:
                port.upcall_success += 1
        else:
            self.lost += 1
            if port is not None:
                port.upcall_fail += 1

    # --- the rest ------------------------------------------------------------------

    def close(self) -> None:
        for port in list(self.ports.values()):
            port.close()
        self.ports.clear()
        self.table.flush()
