#!/usr/bin/env python3
"""ovs-dpctl's text of weave-like flows, on the host: microseconds per flow.

Run as ``.venv/bin/python bench/dpctl_text.py`` (``--help`` for options); no
kernel, no root.  The formatting half of bench/kernel_dump.py's (c): the
flows are bench/kernelbed.py's ``weave_flows``, installed in the userspace
datapath's flow table and read back as the kernel's dump would give them
(every metadata attribute in key and mask, see odpctl/datapath/keyencode.py),
decoded once by ``decode_flow_attrs``; then each is formatted with
``dpctl_line``, and with ``format_key`` and ``format_actions`` alone.  Each
figure is the best of ``--repeat`` rounds of CPU time (``process_time``: a
busy machine's other jobs count less), garbage collector on.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernelbed import dpctl_line, weave_flows

from odpctl.datapath.classifier import DpFlow
from odpctl.datapath.flowcmds import flow_attrs
from odpctl.datapath.keyparse import parse_match
from odpctl.odp.flow import Flow, decode_flow_attrs
from odpctl.odp.keys import encode_key
from odpctl.odp.text.actions import format_actions
from odpctl.odp.text.keys import format_key


def dumped_flows(n: int) -> list[Flow]:
    """``weave_flows(n)`` as a dump of the kernel's would decode them."""
    out = []
    for flow in weave_flows(n):
        assert flow.mask is not None  # weave_flows are megaflows
        installed = DpFlow(parse_match(encode_key(flow.key), encode_key(flow.mask)), None)
        installed.actions = flow.actions
        out.append(decode_flow_attrs(flow_attrs(installed)))
    return out


def per_flow_us(fn: Callable[[Flow], object], flows: list[Flow], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for flow in flows:
            fn(flow)
        best = min(best, time.process_time() - t0)
    return best / len(flows) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=20_000, help="flows formatted per round")
    ap.add_argument("--repeat", type=int, default=7, help="rounds of each measurement")
    args = ap.parse_args()
    flows = dumped_flows(args.flows)
    print(dpctl_line(flows[0], 0))
    print(dpctl_line(flows[1], 0))
    cases: dict[str, Callable[[Flow], object]] = {
        "dpctl_line": lambda f: dpctl_line(f, 0),
        "format_key": lambda f: format_key(f.key, f.mask),
        "format_actions": lambda f: format_actions(f.actions),
    }
    for name, fn in cases.items():
        print(f"{name:15} {per_flow_us(fn, flows, args.repeat):6.2f} us/flow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
