"""Host names and addresses as the DNS records hold them.

A name is kept in one form only: lower case, absolute (a trailing dot), so
that a lookup is one dict access.  A single label (``web1``) is a container
name and gets the domain; a longer one is taken as written.
"""

from __future__ import annotations

import ipaddress
import re

from odpctl.errors import UsageError

DEFAULT_DOMAIN = "odpctl.local."

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
MAX_NAME = 253  # without the final dot (RFC 1035's 255 octets on the wire)


def normalize_domain(domain: str) -> str:
    """``odpctl.local`` -> ``odpctl.local.``; `UsageError` if it is no domain name."""
    text = domain.strip().lower().rstrip(".")
    if not text or len(text) > MAX_NAME or not all(_LABEL.match(x) for x in text.split(".")):
        raise UsageError(
            f"invalid DNS domain {domain!r}: expected labels of letters, digits "
            "and hyphens, like odpctl.local"
        )
    return text + "."


def normalize_name(name: str, domain: str) -> str:
    """A host name, absolute and lower case; a single label gets ``domain``."""
    text = name.strip().lower()
    absolute = text.endswith(".")
    text = text.rstrip(".")
    labels = text.split(".")
    if not text or len(text) > MAX_NAME or not all(_LABEL.match(x) for x in labels):
        raise UsageError(
            f"invalid host name {name!r}: expected labels of letters, digits "
            "and hyphens, like web1 or web1.odpctl.local"
        )
    if len(labels) == 1 and not absolute:
        full = f"{text}.{domain}"
        if len(full) > MAX_NAME + 1:
            raise UsageError(f"host name {name!r} is too long with the domain {domain}")
        return full
    return text + "."


def in_domain(name: str, domain: str) -> bool:
    """Whether absolute ``name`` lies in ``domain`` (or is the domain itself)."""
    return name == domain or name.endswith("." + domain)


def normalize_address(address: str) -> str:
    """An IPv4 address in its canonical text; `UsageError` otherwise."""
    try:
        return str(ipaddress.IPv4Address(address.strip().split("/")[0]))
    except ValueError:
        raise UsageError(f"invalid IPv4 address {address!r}") from None


def address_of_reverse(name: str) -> str | None:
    """The address a PTR name asks about, or None if it is no full IPv4 reverse name."""
    if not name.endswith(".in-addr.arpa."):
        return None
    parts = name[: -len(".in-addr.arpa.")].split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
        return None
    return ".".join(str(int(p)) for p in reversed(parts))
