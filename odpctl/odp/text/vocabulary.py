"""The words of the key syntax, for completion: attribute names and their fields.

Taken from the spec (`odpctl.odp.keyspec`), which the parser reads too, so
that completion offers what `flow add` takes.
"""

from __future__ import annotations

from odpctl.odp.keyspec import KEY_SPECS, TUNNEL_OPTS
from odpctl.odp.text.keys import NSH_FIELD_NAMES
from odpctl.odp.uapi import KeyAttr


def flow_fields() -> tuple[list[str], dict[str, list[str]]]:
    """Key attribute names, and the ``field=`` names of those that have them."""
    attrs = sorted(spec.name for spec in KEY_SPECS.values())
    fields: dict[str, list[str]] = {}
    for kind, spec in KEY_SPECS.items():
        if spec.fields:
            fields[spec.name] = [f.text for f in spec.fields]
        elif kind == KeyAttr.TUNNEL:
            fields[spec.name] = [o.text for o in TUNNEL_OPTS if o.syntax]
        elif kind == KeyAttr.NSH:
            fields[spec.name] = list(NSH_FIELD_NAMES)
    return attrs, fields
