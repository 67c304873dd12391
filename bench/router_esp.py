#!/usr/bin/env python3
"""Cross-host TCP throughput of the fast path encrypted by the kernel (ESP) against
the plaintext fast path, side by side in one run.

    testbed/uml-run --rw "$PWD" -- .venv/bin/python bench/router_esp.py

Two 2-host overlays on the kernel datapath (odpctl/demo/overlaylab.py), built at the
same time: one whose routers have no password (plaintext VXLAN), one whose
routers share a password (VXLAN in ESP, rfc4106(gcm(aes))).  ``--rounds``
rounds of ``--seconds``-second iperf3 runs container to container, interleaved;
the best of the rounds is reported.  Target (DESIGN.md): ESP >= 0.5 x plaintext
(Weave Net's encrypted fast path: 0.14).  Everything is torn down at the end.
Exit 0 on PASS, 1 on FAIL.

As an anchor, the same rounds also measure the kernel's own ESP without any
overlay: two namespaces on a bare veth pair, plaintext and with the same kind
of associations (ESP transport, rfc4106(gcm(aes)), ESN) between them.  Their
ratio is the most this kernel's ESP gives at this MTU.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from contextlib import ExitStack

from router_iperf import iperf

from odpctl.crypto.xfrm import GCM_KEY_LEN, Mark, Policy, SecurityAssociation, Selector, Xfrm
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.netlink.netns import netns

BARE = ("10.60.0.1", "10.60.0.2")


def _ready(overlay: OverlayLab, encrypted: bool) -> str | None:
    """None once both routers carry the connection on the fast path (ESP if
    ``encrypted``); else what they show."""
    shown = []
    for host in overlay.hosts:
        status = overlay.status(host.index)
        conns = status["overlay"]["fastdp"]["connections"].values()
        shown += [(c["overlay"], (c["esp"] or {}).get("mode")) for c in conns]
    want = ("fastdp", "esp" if encrypted else None)
    return None if shown and all(s == want for s in shown) else str(shown)


def _start(overlay: OverlayLab, password: str | None, timeout: float = 90) -> None:
    extra: tuple[str, ...] = ()
    if password is not None:
        path = overlay.tmp / "password"
        path.write_text(password)
        extra = ("--password-file", str(path))
    for host in overlay.hosts:
        overlay.start_router(host.index, extra=extra)
    overlay.wait_ready(timeout=timeout)
    deadline = time.monotonic() + timeout
    while (shown := _ready(overlay, password is not None)) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not on the {'ESP ' if password else ''}fast path: {shown}")
        time.sleep(0.5)


def bare_pair(lab: Lab, encrypted: bool) -> tuple[str, str, str]:
    """Two namespaces on a veth pair, ESP between them if ``encrypted``;
    (server namespace, client namespace, server address)."""
    tag = "e" if encrypted else "p"
    ends = [lab.namespace(f"bare{tag}{i}") for i in (0, 1)]
    lab.veth(ends[0], "eth0", ends[1], "eth0")
    for ns, address in zip(ends, BARE, strict=True):
        lab.address(ns, "eth0", f"{address}/24")
    if encrypted:
        keys = [secrets.token_bytes(GCM_KEY_LEN) for _ in BARE]
        states = [
            SecurityAssociation(BARE[i], BARE[1 - i], 0x1000 + i, 1, key=keys[i]) for i in (0, 1)
        ]
        for i, ns in enumerate(ends):
            with netns(ns):
                xfrm = Xfrm()
            with xfrm:
                for sa in states:
                    xfrm.add_sa(sa)
                xfrm.add_policy(
                    Policy(
                        Selector(dst=BARE[1 - i], dst_prefix=32),
                        BARE[i],
                        BARE[1 - i],
                        1,
                        Mark(0, 0),
                    )
                )
    return ends[1], ends[0], BARE[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    best: dict[str, float] = {}
    with ExitStack() as stack:
        overlays = {}
        for name in ("plaintext", "esp"):
            lab = stack.enter_context(Lab(f"odp{name[:3]}"))
            overlay = OverlayLab(lab, hosts=2, containers=1, datapath="kernel")
            stack.callback(overlay.close)
            overlays[name] = overlay
        _start(overlays["plaintext"], None)
        _start(overlays["esp"], secrets.token_hex(16))
        runs = {}
        for name, overlay in overlays.items():
            c0, c1 = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
            runs[name] = (overlay.lab, c1.ns, c0.ns, c1.address)
        bare = overlays["plaintext"].lab
        runs["bare veth"] = (bare, *bare_pair(bare, encrypted=False))
        runs["bare veth esp"] = (bare, *bare_pair(bare, encrypted=True))
        for _ in range(args.rounds):
            for name, (lab, server, client, address) in runs.items():
                best[name] = max(
                    best.get(name, 0.0), iperf(lab, server, client, address, args.seconds)
                )
        esp = overlays["esp"].status(0)["router"]["esp"]
    for name, bps in best.items():
        print(f"{name:>14}: {bps / 1e9:8.3f} Gbit/s")
    ratio = best["esp"] / best["plaintext"]
    print(
        f"esp / plaintext overlay: {ratio:.2f} (target >= 0.5; Weave Net 0.14); "
        f"firewall {esp['firewall']}"
    )
    print(
        f"the kernel's own ESP, bare veth esp / bare veth: "
        f"{best['bare veth esp'] / best['bare veth']:.2f}; "
        f"overlay esp / bare veth esp: {best['esp'] / best['bare veth esp']:.2f}"
    )
    ok = ratio >= 0.5
    print("PASS" if ok else "FAIL (figures above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
