"""The words of the key syntax, for completion: attribute names and their fields."""

from __future__ import annotations

from odpctl.errors import ParseError
from odpctl.odp.keys import KEY_TYPES
from odpctl.odp.text.keys import KEY_NAMES, parse_key

# Candidate fields of nested attributes whose values are not NamedTuples.
_EXTRA_FIELDS = {
    "tunnel": ["tun_id", "src", "dst", "ipv6_src", "ipv6_dst", "tos", "ttl", "tp_src",
               "tp_dst", "erspan", "vxlan", "geneve", "gtpu", "flags"],
    "nsh": ["flags", "ttl", "mdtype", "np", "spi", "si", "c1", "c2", "c3", "c4", "md2"],
}


def _field_known(attr: str, field: str) -> bool:
    """Whether the flow parser knows ``attr(field=...)`` (tries a dummy value)."""
    try:
        parse_key(f"{attr}({field}=0)")
    except ParseError as exc:
        return "unknown field" not in exc.reason and "expected" not in exc.reason
    except Exception:
        return False
    return True


def flow_fields() -> tuple[list[str], dict[str, list[str]]]:
    """Key attribute names, and the fields of those that have fields.

    Derived from the codec and kept only where the parser agrees, so that
    completion never offers what `flow add` refuses.
    """
    attrs = sorted(set(KEY_NAMES.values()))
    fields: dict[str, list[str]] = {}
    for kind, name in KEY_NAMES.items():
        candidates = list(getattr(KEY_TYPES.get(kind), "_fields", ()))
        candidates = candidates or _EXTRA_FIELDS.get(name, [])
        known = [f for f in candidates if _field_known(name, f)]
        if known:
            fields[name] = known
    return attrs, fields
