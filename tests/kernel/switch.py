"""A learning switch on the datapath: the smallest useful miss handler.

It learns which port each source MAC lives behind, floods frames for
unknown and broadcast destinations without a flow, and once a destination
is known installs an exact ``in_port + eth(src, dst)`` flow, so later frames
never leave the datapath.  The kernel traffic tests run it; it is the pattern the
overlay router follows (misses in, packet execute out, flow installed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from odpctl.errors import OdpError
from odpctl.odp.actions import Action, Output
from odpctl.odp.dpif import Dpif, DpRef
from odpctl.odp.flow import Flow
from odpctl.odp.keys import Eth, FlowKey
from odpctl.odp.packet import Execute, Upcall
from odpctl.odp.uapi import KeyAttr, PacketCmd
from odpctl.odp.upcalls import UpcallChannel

BROADCAST = b"\xff" * 6
_EXACT_PORT = 0xFFFFFFFF
_EXACT_ETH = Eth(b"\xff" * 6, b"\xff" * 6)


@dataclass
class SwitchStats:
    misses: int = 0
    flooded: int = 0
    flows_installed: int = 0
    errors: int = 0


class LearningSwitch:
    """Handles the misses of ``ports`` of datapath ``dp``.

    Give ``channel.port_id`` to the ports as their upcall PID, then `start`.
    ``dpif`` is used from the switch's own thread only.
    """

    def __init__(self, dpif: Dpif, dp: DpRef, ports: list[int], channel: UpcallChannel) -> None:
        self.dpif = dpif
        self.dp = dp
        self.ports = ports
        self.channel = channel
        self.mac_to_port: dict[bytes, int] = {}
        self.stats = SwitchStats()
        self.last_error: OdpError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="learning-switch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            upcall = self.channel.receive(timeout=0.2)
            if upcall is None or upcall.cmd != PacketCmd.MISS:
                continue
            try:
                self.handle_miss(upcall)
            except OdpError as exc:
                # One bad packet must not kill the miss path: count, keep going.
                self.stats.errors += 1
                self.last_error = exc

    def handle_miss(self, upcall: Upcall) -> None:
        self.stats.misses += 1
        in_port, eth = upcall.key.in_port, upcall.key.eth
        if in_port is None or eth is None:
            return
        self.mac_to_port[eth.src] = in_port
        out = self.mac_to_port.get(eth.dst)
        actions: list[Action]
        if out is None or eth.dst == BROADCAST:
            self.stats.flooded += 1
            actions = [Output(port) for port in self.ports if port != in_port]
        elif out == in_port:
            return  # the destination is behind the port it came from
        else:
            actions = [Output(out)]
            match = FlowKey({KeyAttr.IN_PORT: in_port, KeyAttr.ETHERNET: eth})
            mask = FlowKey({KeyAttr.IN_PORT: _EXACT_PORT, KeyAttr.ETHERNET: _EXACT_ETH})
            self.dpif.add_flow(self.dp, Flow(match, mask, list(actions)), replace=True)
            self.stats.flows_installed += 1
        self.dpif.execute(
            self.dp, Execute(upcall.packet, FlowKey({KeyAttr.IN_PORT: in_port}), actions)
        )
