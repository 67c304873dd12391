"""IPv4 addresses as ints, and CIDR blocks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from odpctl.errors import UsageError


def parse_ip(text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise UsageError(f"invalid IPv4 address {text!r}") from None


def format_ip(addr: int) -> str:
    return str(ipaddress.IPv4Address(addr))


@dataclass(frozen=True, slots=True)
class Cidr:
    """A block ``start/prefixlen``; ``start`` is its first address."""

    start: int
    prefixlen: int

    @classmethod
    def parse(cls, text: str) -> Cidr:
        """``10.32.0.0/12``; host bits must be zero (a typo otherwise goes unnoticed)."""
        try:
            net = ipaddress.IPv4Network(text, strict=True)
        except ValueError as exc:
            raise UsageError(f"invalid CIDR {text!r}: {exc}") from None
        if net.prefixlen > 30:
            raise UsageError(f"CIDR {text!r} is too small: at most /30")
        return cls(int(net.network_address), net.prefixlen)

    @property
    def size(self) -> int:
        return 1 << (32 - self.prefixlen)

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.start + self.size

    def usable(self) -> tuple[int, int]:
        """[first, end) of the addresses a container may have: no network or broadcast."""
        return self.start + 1, self.end - 1

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, int) and self.start <= addr < self.end

    def covers(self, other: Cidr) -> bool:
        return self.start <= other.start and other.end <= self.end

    def __str__(self) -> str:
        return f"{format_ip(self.start)}/{self.prefixlen}"


def parse_address(text: str, default_prefix: int) -> tuple[int, int]:
    """``10.32.0.5`` or ``10.32.0.5/12``: the address and its prefix length."""
    if "/" in text:
        try:
            iface = ipaddress.IPv4Interface(text)
        except ValueError as exc:
            raise UsageError(f"invalid address {text!r}: {exc}") from None
        return int(iface.ip), iface.network.prefixlen
    return parse_ip(text), default_prefix
