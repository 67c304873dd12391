"""A multi-host overlay on one machine: the demo's and the tests' test bed.

Hosts are network namespaces joined by a bridge (the underlay, in a
namespace of its own); containers are namespaces with a veth into their
host.  Each host runs `odpctl router start` as a child process with its
containers' veths attached; or, with ``ipam=True``, the containers are bare
namespaces that the routers attach (`odpctl router attach --netns`), with
addresses from IPAM.  Everything is made through a `Lab`, so closing
it kills the routers and removes every namespace, link and datapath (a
kernel datapath dies with its namespace).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.errors import OdpError
from odpctl.netlink.pyroute import NetNS
from odpctl.netlink.rundir import runtime_dir
from odpctl.odp.dpif import Dpif

UNDERLAY_NET = "192.168.77"
OVERLAY_NET = "10.40.0"


@dataclass
class Host:
    index: int
    ns: str
    address: str
    containers: list[Container] = field(default_factory=list)
    router: subprocess.Popen[bytes] | None = None
    control: Path = Path()
    log: Path = Path()


@dataclass
class Container:
    name: str
    ns: str
    address: str
    host: int
    iface: str  # its veth's end in the host ("" until attached, with IPAM)


class OverlayLab:
    def __init__(
        self,
        lab: Lab,
        *,
        hosts: int = 3,
        containers: int = 2,
        datapath: str = "auto",
        underlay_mtu: int = 1500,
        overlay_mtu: int = 1376,
        ipam: bool = False,
    ) -> None:
        self.lab = lab
        self.ipam = ipam
        self.datapath = datapath
        self.underlay_mtu = underlay_mtu
        self.overlay_mtu = overlay_mtu
        self.tmp = Path(tempfile.mkdtemp(prefix="odpctl-overlay-"))
        self.hosts: list[Host] = []
        self._build(hosts, containers)

    # --- building ---------------------------------------------------------------

    def _build(self, hosts: int, containers: int) -> None:
        lab = self.lab
        self.underlay = lab.namespace("ul")
        with NetNS(self.underlay) as ipr:
            ipr.link("add", ifname="br0", kind="bridge")
        lab.link_up(self.underlay, "br0")
        for i in range(hosts):
            ns = lab.namespace(f"h{i}")
            # Left by a namespace that had this inode before: never ours to adopt.
            shutil.rmtree(runtime_dir(ns), ignore_errors=True)
            host = Host(
                i,
                ns,
                f"{UNDERLAY_NET}.{i + 1}",
                control=self.tmp / f"h{i}.sock",
                log=self.tmp / f"h{i}.log",
            )
            lab.veth(self.underlay, f"u{i}", ns, "eth0")
            self._set_link(self.underlay, f"u{i}", master="br0", mtu=self.underlay_mtu)
            self._set_link(ns, "eth0", mtu=self.underlay_mtu)
            lab.address(ns, "eth0", f"{host.address}/24")
            self.hosts.append(host)
            for j in range(containers):
                host.containers.append(self.add_container(i, j))

    def add_container(self, i: int, j: int) -> Container:
        """A container on host ``i`` with its veth ``c<j>`` in the host, attached to nothing.

        Not one of the host's ``containers`` (a router started later is not given it);
        it goes with the lab's namespaces.
        """
        host = self.hosts[i]
        cns = self.lab.namespace(f"h{i}c{j}")
        if self.ipam:
            return Container(f"h{i}c{j}", cns, "", i, "")
        self.lab.veth(host.ns, f"c{j}", cns, "eth0")
        self._set_link(host.ns, f"c{j}", mtu=self.overlay_mtu)
        self._set_link(cns, "eth0", mtu=self.overlay_mtu)
        address = f"{OVERLAY_NET}.{10 * (i + 1) + j + 1}"
        self.lab.address(cns, "eth0", f"{address}/24")
        return Container(f"h{i}c{j}", cns, address, i, f"c{j}")

    def _set_link(self, ns: str, ifname: str, **changes: Any) -> None:
        with NetNS(ns) as ipr:
            (index,) = ipr.link_lookup(ifname=ifname)
            if "master" in changes:
                (changes["master"],) = ipr.link_lookup(ifname=changes["master"])
            ipr.link("set", index=index, **changes)

    @property
    def containers(self) -> list[Container]:
        return [c for h in self.hosts for c in h.containers]

    # --- routers ----------------------------------------------------------------

    def start_router(self, i: int, *, extra: tuple[str, ...] = ()) -> None:
        host = self.hosts[i]
        peers = [h.address for h in self.hosts if h.index != i]
        argv = [
            "ip",
            "netns",
            "exec",
            host.ns,
            sys.executable,
            "-m",
            "odpctl.commands.router",
            "start",
            "--datapath",
            self.datapath,
            "--nickname",
            f"host{i}",
            "--control",
            str(host.control),
            "--mtu",
            str(self.overlay_mtu),
            *[
                arg
                for c in host.containers
                if c.iface and not self.ipam
                for arg in ("--iface", c.iface)
            ],
            *extra,
            *peers,
        ]
        with host.log.open("ab") as log:
            host.router = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def start_routers(self) -> None:
        for host in self.hosts:
            self.start_router(host.index)

    def attach(self, container: Container, **options: Any) -> dict[str, Any]:
        """Attach ``container`` to its host's router by its namespace (IPAM mode)."""
        client = ControlClient(self.hosts[container.host].control, timeout=30)
        result: dict[str, Any] = client.request(
            "attach", netns=container.ns, name=container.name, **options
        )
        container.address = result["ip"].split("/")[0]
        container.iface = result["host_iface"]
        return result

    def attach_all(self) -> None:
        """Attach every container, all at once (as a cluster's runtimes would)."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self.attach, self.containers))

    def stop_router(self, i: int, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        proc = self.hosts[i].router
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)
        finally:
            self.hosts[i].router = None

    def status(self, i: int) -> dict[str, Any]:
        result = ControlClient(self.hosts[i].control, timeout=5).request("status")
        assert isinstance(result, dict)
        return result

    def dpif(self, i: int) -> Dpif:
        """A client of router ``i``'s datapath (the caller closes it)."""
        endpoint = self.status(i)["router"]["datapath"]["endpoint"]
        return Dpif.open(endpoint, netns=self.hosts[i].ns)

    def wait_ready(
        self,
        timeout: float = 30.0,
        hosts: list[int] | None = None,
        overlay: str | None = None,
    ) -> None:
        """Until every router (of ``hosts``, if given: the ones started) has an
        established connection to every other (carried by ``overlay``, "fastdp" or
        "fallback", if given: a connection starts on the fallback until heartbeats
        have gone through VXLAN)."""
        pending = list(hosts if hosts is not None else range(len(self.hosts)))
        wanted = len(pending) - 1
        deadline = time.monotonic() + timeout
        last = ""
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                proc = self.hosts[i].router
                if proc is not None and proc.poll() is not None:
                    raise OdpError(f"router {i} exited with {proc.returncode}: {self.log_tail(i)}")
                try:
                    conns = self.status(i)["router"]["connections"]
                except OdpError as exc:
                    last = str(exc)
                    continue
                if (
                    sum(
                        1
                        for c in conns
                        if c.get("state") == "established" and overlay in (None, c.get("overlay"))
                    )
                    >= wanted
                ):
                    pending.remove(i)
            time.sleep(0.2)
        if pending:
            raise OdpError(f"routers {pending} not connected after {timeout:g} s ({last})")

    def log_tail(self, i: int, lines: int = 20) -> str:
        try:
            return "\n".join(self.hosts[i].log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- traffic ----------------------------------------------------------------

    def ping(
        self,
        src: Container,
        dst: Container,
        count: int = 2,
        wait: float = 2.0,
        size: int | None = None,
        dont_fragment: bool = False,
    ) -> bool:
        argv = ["ping", "-c", str(count), "-i", "0.2", "-W", str(wait)]
        if size is not None:
            argv += ["-s", str(size)]
        if dont_fragment:
            argv += ["-M", "do"]
        result = self.lab.run(src.ns, *argv, dst.address, timeout=count * (wait + 1) + 5)
        return result.returncode == 0

    def close(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(Exception):
                self.stop_router(host.index, timeout=5)
            with contextlib.suppress(OdpError):
                shutil.rmtree(runtime_dir(host.ns), ignore_errors=True)
        self.lab.close()
