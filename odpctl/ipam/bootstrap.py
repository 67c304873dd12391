"""``--ipalloc-init``: how the ring is first made."""

from __future__ import annotations

from dataclasses import dataclass

from odpctl.errors import UsageError
from odpctl.mesh.names import PeerName, format_peer_name, parse_peer_name


@dataclass(frozen=True)
class Bootstrap:
    """``consensus`` among ``peers`` routers, ``seed`` with ``seeds``, or ``observer``."""

    mode: str
    peers: int = 1
    seeds: tuple[PeerName, ...] = ()

    @classmethod
    def parse(cls, text: str | None, peers_given: int) -> Bootstrap:
        """``consensus[=N]`` (default; N: this router and the peers it is given),
        ``seed=NAME,...`` or ``observer``."""
        if text is None:
            return cls("consensus", peers_given + 1)
        mode, eq, arg = text.partition("=")
        if mode == "consensus":
            if not eq:
                return cls("consensus", peers_given + 1)
            try:
                n = int(arg)
            except ValueError:
                n = 0
            if not 1 <= n <= 4096:
                raise UsageError(f"--ipalloc-init {text}: expected consensus=N, N from 1 to 4096")
            return cls("consensus", n)
        if mode == "seed" and arg:
            try:
                seeds = tuple(sorted({parse_peer_name(name) for name in arg.split(",")}))
            except UsageError as exc:
                raise UsageError(f"--ipalloc-init {text}: {exc.message}") from None
            return cls("seed", len(seeds), seeds)
        if mode == "observer" and not eq:
            return cls("observer", 0)
        raise UsageError(
            f"--ipalloc-init {text}: expected consensus[=N], seed=NAME,... or observer"
        )

    def __str__(self) -> str:
        if self.mode == "consensus":
            return f"consensus={self.peers}"
        if self.mode == "seed":
            return "seed=" + ",".join(format_peer_name(s) for s in self.seeds)
        return self.mode
