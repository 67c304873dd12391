"""What the kernel-datapath benchmarks share: a throwaway namespace and datapath,
weave-like flows, the ovs-dpctl dump-flows text of a flow, and a few numbers.

Not a benchmark itself; ``bench/kernel_dump.py`` and ``bench/kernel_install.py``
import it.  Both run inside the user-mode-linux guest (``testbed/uml-run``),
or on any host whose kernel has the openvswitch module, as root.

The flows are what Weave's fast datapath installs between two peers, in two
shapes, half of each:

- **ingress** (from the VXLAN vport): key tunnel(tun_id, ipv4 src/dst, ttl, df)
  + in_port + eth(src, dst), all exactly masked; action output(local port).
- **egress** (from a local port): key in_port + eth(src, dst), exactly
  masked; actions set(tunnel(tun_id, dst, ttl, df)) + output(VXLAN vport).

Every flow has distinct MACs, so the datapath holds exactly as many flows as
asked for (two masks in all, as in weave).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odpctl.netlink.netns import CLONE_NEWNET, _setns
from odpctl.odp.actions import Action, Output, Set
from odpctl.odp.datapath import Datapath
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.keys import Eth, FlowKey, Tunnel
from odpctl.odp.text.actions import format_actions
from odpctl.odp.text.keys import format_key
from odpctl.odp.uapi import KeyAttr, VportType
from odpctl.odp.vport import Vport

ALL6 = b"\xff" * 6
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF

TUNNEL_PORT = 2  # the VXLAN vport's number
LOCAL_PORT = 3  # the "container" port's number (flows only name it)

_EXACT_EGRESS = FlowKey({KeyAttr.IN_PORT: U32, KeyAttr.ETHERNET: Eth(ALL6, ALL6)})
_EXACT_INGRESS = FlowKey(
    {
        KeyAttr.TUNNEL: Tunnel(tun_id=U64, ipv4_src=U32, ipv4_dst=U32, ttl=0xFF, df=True),
        KeyAttr.IN_PORT: U32,
        KeyAttr.ETHERNET: Eth(ALL6, ALL6),
    }
)


def mac(prefix: int, i: int) -> bytes:
    """A locally administered unicast MAC: 0a:PP:ii:ii:ii:ii."""
    return bytes((0x0A, prefix)) + i.to_bytes(4, "big")


def weave_flows(n: int) -> list[Flow]:
    """``n`` distinct weave-like flows, ingress and egress alternating."""
    flows = []
    for i in range(n):
        peer = i % 64
        if i & 1:
            key = FlowKey(
                {
                    KeyAttr.TUNNEL: Tunnel(
                        tun_id=0x300000 | peer,
                        ipv4_src=0xC0A80100 | peer,
                        ipv4_dst=0xC0A80001,
                        ttl=64,
                        df=True,
                    ),
                    KeyAttr.IN_PORT: TUNNEL_PORT,
                    KeyAttr.ETHERNET: Eth(mac(0x58, i), mac(0x59, i)),
                }
            )
            actions: list[Action] = [Output(LOCAL_PORT)]
            flows.append(Flow(key, _EXACT_INGRESS, actions))
        else:
            key = FlowKey(
                {
                    KeyAttr.IN_PORT: LOCAL_PORT,
                    KeyAttr.ETHERNET: Eth(mac(0x59, i), mac(0x58, i)),
                }
            )
            actions = [
                Set(
                    KeyAttr.TUNNEL,
                    Tunnel(
                        tun_id=0x200000 | peer,
                        ipv4_dst=0xC0A80100 | peer,
                        ttl=64,
                        df=True,
                    ),
                ),
                Output(TUNNEL_PORT),
            ]
            flows.append(Flow(key, _EXACT_EGRESS, actions))
    return flows


# --- ovs-dpctl's text -------------------------------------------------------------


def now_ms() -> int:
    """The datapath's clock (CLOCK_MONOTONIC) in ms, what ``Flow.used`` counts in."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000


def dpctl_line(flow: Flow, now: int) -> str:
    """The line ``ovs-dpctl dump-flows`` prints for ``flow`` (OVS lib/dpctl.c,
    format_dpif_flow without -m): match, stats, actions."""
    used = flow.used
    flags = ""
    if flow.tcp_flags:
        from odpctl.present.odptext import tcp_flags_text

        flags = f", flags:{tcp_flags_text(flow.tcp_flags)}"
    # One f-string: this runs for every flow of the dump benchmark's (c).
    return (
        f"{format_key(flow.key, flow.mask)}, packets:{flow.packets}, bytes:{flow.bytes}, "
        f"used:{f'{(now - used) / 1000:.3f}s' if used else 'never'}{flags}, "
        f"actions:{format_actions(flow.actions)}"
    )


def add_flows_line(flow: Flow) -> str:
    """The line ``ovs-dpctl add-flows`` reads for ``flow``: MATCH ACTIONS."""
    return f"{format_key(flow.key, flow.mask)} {format_actions(flow.actions)}"


# --- the bed: namespace, datapath, ovs-dpctl ------------------------------------


@dataclass
class Bed:
    netns: str
    dp_name: str
    dpif: Dpif
    dp: Datapath
    _nsfd: int

    def ovs_dpctl(self, *args: str, stdout: int | None = subprocess.DEVNULL) -> float:
        """Run ``ovs-dpctl ARGS`` in the namespace; its wall time in seconds.

        The child joins the namespace with one setns() before exec (no
        ``ip netns exec`` in between), so the time is ovs-dpctl's own, process
        start included.  A failure raises CalledProcessError.
        """
        fd = self._nsfd
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["ovs-dpctl", *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: _setns(fd, CLONE_NEWNET),
            pass_fds=(fd,),
            text=True,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, None, proc.stderr)
        return elapsed

    def ovs_dpctl_output(self, *args: str) -> str:
        fd = self._nsfd
        return subprocess.run(
            ["ovs-dpctl", *args],
            capture_output=True,
            check=True,
            text=True,
            preexec_fn=lambda: _setns(fd, CLONE_NEWNET),
            pass_fds=(fd,),
        ).stdout

    @property
    def dpctl_dp(self) -> str:
        return f"system@{self.dp_name}"


@contextlib.contextmanager
def bed(tag: str) -> Iterator[Bed]:
    """A fresh network namespace holding datapath ``<tag><hex>`` with a VXLAN vport
    (port 2); both are deleted afterwards, whatever happens in between."""
    if not Path("/sys/module/openvswitch").is_dir():
        sys.exit(
            "the openvswitch kernel module is not loaded here; run this inside the guest:\n"
            f'  testbed/uml-run --rw "$PWD" -- .venv/bin/python {sys.argv[0]}'
        )
    suffix = secrets.token_hex(3)
    ns = f"bench{suffix}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    nsfd = -1
    dpif: Dpif | None = None
    dp_name = f"{tag}{suffix}"
    try:
        nsfd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        dpif = Dpif.open("kernel", netns=ns)
        dp = dpif.create_datapath(dp_name)
        dpif.add_vport(dp, Vport("vxbench", VportType.VXLAN, port_no=TUNNEL_PORT))
        yield Bed(ns, dp_name, dpif, dp, nsfd)
    finally:
        if dpif is not None:
            with contextlib.suppress(Exception):
                dpif.delete_datapath(dp_name)
            dpif.close()
        if nsfd >= 0:
            os.close(nsfd)
        subprocess.run(["ip", "netns", "del", ns], check=False)


# --- numbers ------------------------------------------------------------------------


def best(times: list[float]) -> float:
    return min(times)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


class _CountingSocket:
    """Stands in for a transport's socket and counts the calls that are syscalls."""

    def __init__(self, sock: object, counter: SyscallCounter) -> None:
        self._sock = sock
        self._counter = counter

    def __getattr__(self, name: str) -> object:
        real = getattr(self._sock, name)
        if name not in ("send", "sendmsg", "recv", "recv_into", "recvmsg", "recvmsg_into"):
            return real
        counter = self._counter

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if name.startswith("send"):
                counter.sends += 1
                counter.sent_bytes += result if isinstance(result, int) else 0
                return result
            counter.recvs += 1
            pos = 1 if name == "recv" else 2
            flags = args[pos] if len(args) > pos else kwargs.get("flags", 0)
            if flags & socket.MSG_PEEK:
                counter.peeks += 1
                return result
            got = result[0] if isinstance(result, tuple) else result
            size = len(got) if isinstance(got, bytes) else int(got)
            counter.datagrams += 1
            counter.recv_bytes += size
            counter.max_recv = max(counter.max_recv, size)
            return result

        return counted


class SyscallCounter:
    """Counts a Dpif's socket syscalls (no strace in the guest): sends, receives
    (peeks included), datagrams received and their sizes, for a ``with`` block."""

    def __init__(self, dpif: Dpif) -> None:
        self.transport = dpif._conn.transport
        self.sends = self.recvs = self.peeks = self.datagrams = 0
        self.sent_bytes = self.recv_bytes = self.max_recv = 0

    def __enter__(self) -> SyscallCounter:
        t = self.transport
        t._sock = _CountingSocket(t._sock, self)  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        t = self.transport
        t._sock = t._sock._sock  # type: ignore[attr-defined]

    @property
    def syscalls(self) -> int:
        return self.sends + self.recvs

    def describe(self) -> str:
        avg = self.recv_bytes / self.datagrams if self.datagrams else 0
        return (
            f"{self.syscalls} socket syscalls: {self.sends} send ({self.sent_bytes} B), "
            f"{self.recvs} recv of which {self.peeks} peeks; {self.datagrams} datagrams "
            f"received, avg {avg:,.0f} B, max {self.max_recv:,} B"
        )


# --- profiling in the guest -------------------------------------------------------


class SamplingProfiler:
    """Where the time goes, by sampling the stack every ``interval`` s of CPU time.

    cProfile is no use in the user-mode-linux guest: it reads the clock twice
    per function call, and there (no vDSO) every clock read is a syscall of
    ~20-40 us, so a profiled dump runs 100x slower and its figures measure the
    profiler.  A SIGPROF timer costs one signal per sample instead.  ``self``
    counts samples whose innermost frame is the function; ``total`` those with
    the function anywhere on the stack.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.self_counts: dict[str, int] = {}
        self.total_counts: dict[str, int] = {}
        self.samples = 0

    def _sample(self, _signum: int, frame: object) -> None:
        self.samples += 1
        seen: set[str] = set()
        f = frame
        inner = True
        while f is not None:
            code = f.f_code  # type: ignore[attr-defined]
            name = f"{Path(code.co_filename).name}:{code.co_firstlineno}({code.co_name})"
            if inner:
                self.self_counts[name] = self.self_counts.get(name, 0) + 1
                inner = False
            if name not in seen:
                seen.add(name)
                self.total_counts[name] = self.total_counts.get(name, 0) + 1
            f = f.f_back  # type: ignore[attr-defined]

    def __enter__(self) -> SamplingProfiler:
        import signal

        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)

    def report(self, top: int = 25) -> str:
        n = max(self.samples, 1)
        rows = []
        for name, count in sorted(self.self_counts.items(), key=lambda kv: -kv[1])[:top]:
            rows.append((name, f"{count / n:.1%}", f"{self.total_counts[name] / n:.1%}"))
        head = f"{self.samples} samples, one per {self.interval * 1000:g} ms of CPU time"
        return head + "\n" + table(rows, ("function (by self time)", "self", "total"))
