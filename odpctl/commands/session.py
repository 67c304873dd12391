"""What every command shares: the global options and a lazily opened Dpif."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from odpctl.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from odpctl.odp.datapath import Datapath
    from odpctl.odp.dpif import Dpif
    from odpctl.odp.vport import Vport

USERSPACE_DPIF_TYPE = "userspace"

# The key of the root context's meta under which the command line puts its runner
# (`odpctl.cli.run`): the shell runs each line through it, and sits below it.
RUNNER = "odpctl.run"

# What a network device name can be, for practical purposes (IFNAMSIZ is 16).
_DEVICE_NAME = re.compile(r"[\w.:@-]{1,15}")


@dataclass
class Session:
    netns: str | None = None
    datapath: str | None = None
    _dpif: Dpif | None = field(default=None, repr=False)
    _ports: dict[str, list[Vport]] = field(default_factory=dict, repr=False)

    def dpif(self) -> Dpif:
        if self._dpif is None:
            # Imported here: the ODP codec is most of a command's start-up,
            # and --help, completion and the router commands never need it.
            from odpctl.odp.dpif import Dpif

            self._dpif = Dpif.open(self.datapath, netns=self.netns)
        return self._dpif

    def close(self) -> None:
        if self._dpif is not None:
            self._dpif.close()
            self._dpif = None

    @property
    def dpif_type(self) -> str:
        """What ovs-dpctl would put before ``@name``."""
        from odpctl.present.odptext import (
            KERNEL_DPIF_TYPE,  # with the ODP constants it needs: see dpif()
        )

        return KERNEL_DPIF_TYPE if self.dpif().endpoint.kind == "kernel" else USERSPACE_DPIF_TYPE

    def dp_name(self, name: str | None) -> str:
        """The datapath a command is about: ``name``, or the only one there is.

        ``system@dp0`` is read as ``dp0``, as ovs-dpctl reads it.
        """
        if name is not None:
            return name.partition("@")[2] if "@" in name else name
        names = sorted(dp.name for dp in self.dpif().list_datapaths())
        if len(names) == 1:
            return names[0]
        if not names:
            raise NotFoundError("there is no datapath", hint="create one with `odpctl dp add NAME`")
        raise UsageError(
            f"there are {len(names)} datapaths ({', '.join(names)}): name the one you mean"
        )

    def get_datapath(self, name: str | None) -> Datapath:
        return self.dpif().get_datapath(self.dp_name(name))

    def ports(self, dp: str) -> list[Vport]:
        if dp not in self._ports:
            self._ports[dp] = self.dpif().list_vports(dp)
        return self._ports[dp]

    def port_names(self, dp: str) -> dict[int, str]:
        return {v.port_no: v.name for v in self.ports(dp) if v.port_no is not None}

    def port_numbers(self, dp: str | None) -> Mapping[str, int]:
        """Port name -> number of datapath ``dp`` (see `dp_name`).

        Nothing is asked of the datapath until a name is looked up, so that
        flow text is checked before, and without, any datapath.
        """
        return _LazyPortNumbers(self, dp)


class _LazyPortNumbers(Mapping[str, int]):
    # Flow text rarely names ports; listing them for every `flow add` would
    # cost a round trip for nothing.
    def __init__(self, session: Session, dp: str | None) -> None:
        self._session = session
        self._dp = dp

    def _map(self) -> dict[str, int]:
        ports = self._session.ports(self._session.dp_name(self._dp))
        return {v.name: v.port_no for v in ports if v.port_no is not None}

    def __getitem__(self, name: str) -> int:
        return self._map()[name]

    def __contains__(self, name: object) -> bool:
        # The action parser asks about every action word ("set(tunnel(..."):
        # only what can be a device name is worth asking the datapath.
        if not isinstance(name, str) or not _DEVICE_NAME.fullmatch(name):
            return False
        return name in self._map()

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())

    def __bool__(self) -> bool:
        # Parsers test "are there names?" first; answering that must not list ports.
        return True


def session(ctx: typer.Context) -> Session:
    """The Session the top-level callback put on the context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Session):
        obj = Session()
        ctx.find_root().obj = obj
    return obj
