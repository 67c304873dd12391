#!/usr/bin/env python3
"""CLI start-up: ``odpctl --version`` and ``odpctl dp show`` against ``python -c pass``.

    .venv/bin/python bench/startup.py [--rounds N]

Operators and the shell-completion scripts run odpctl many times a minute, so
what a command costs before it does anything matters.  Side by side in one
run, interleaved, each figure the median of its rounds (whole process runs,
wall clock):

  (a) ``python -c pass`` with the same interpreter: the floor
  (b) ``odpctl --version``: the command line, nothing else
  (c) ``odpctl dp show``: one datapath with two ports, on a userspace datapath
      (``odpctl dp serve``) started for the run on a socket of its own

Targets (DESIGN.md, Performance): (b) within 4x of (a), (c) within 6x.  The
imports are compiled once beforehand into a private cache (as an installed
package's are; this tree's environment may forbid writing them).  Exit status
0 on PASS, 1 on FAIL.  The datapath process and its files are removed at the
end, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"odpctl --version": 4.0, "odpctl dp show": 6.0}
BIN = Path(sys.executable).parent


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"startup: the userspace datapath did not start on {path}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="odpctl-startup-") as tmp:
        sock = Path(tmp, "dp.sock")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(Path(tmp, "pycache")), ODPCTL_DATAPATH=f"unix:{sock}")
        odpctl = str(BIN / "odpctl")
        # In a network namespace of its own: the tunnel port binds a UDP port.
        server = subprocess.Popen(
            ["unshare", "--net", odpctl, "dp", "serve", "--socket", str(sock)], env=env
        )
        try:
            wait_for(sock, server)
            subprocess.run(
                [odpctl, "dp", "add", "bench0"], env=env, check=True, stdout=subprocess.DEVNULL
            )
            subprocess.run(
                [odpctl, "vport", "add", "bench0", "gnv0", "--type", "geneve"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cases = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "odpctl --version": [odpctl, "--version"],
                "odpctl dp show": [odpctl, "dp", "show"],
            }
            for argv in cases.values():  # compiles the imports into the cache
                run_once(argv, env)
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, argv in cases.items():
                    times[name].append(run_once(argv, env))
        finally:
            server.terminate()
            server.wait(timeout=10)
    floor = statistics.median(times["python -c pass"])
    ok = True
    print(f"{'what':<20} {'median':>9} {'best':>9} {'ratio':>7}  target")
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = median / floor
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            passed = ratio <= target
            ok &= passed
            verdict = f"<= {target:g}x {'PASS' if passed else 'FAIL'}"
        print(
            f"{name:<20} {median * 1000:7.1f}ms {min(samples) * 1000:7.1f}ms "
            f"{ratio:6.2f}x  {verdict}"
        )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
