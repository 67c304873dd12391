"""The containers attached by namespace, and who wants to hear of them.

A router keeps one `Attachments`: what `odpctl router attach --netns` made
(so that detach, by namespace or container ID, can undo it, also after the
router restarted), saved as JSON in its state directory.  Subscribers (the
DNS server) are called on the loop with ``("attach" | "detach", attachment)``;
a subscriber that fails is logged, never allowed to fail the attach.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from odpctl.netlink.rundir import write_atomic

log = logging.getLogger("odpctl.router")

ATTACH, DETACH = "attach", "detach"


@dataclass(frozen=True)
class Attachment:
    id: str
    netns: str  # as the caller named it
    netns_inode: int
    ifname: str  # in the container
    host_iface: str  # the veth's end on the datapath
    ip: str  # A.B.C.D/LEN
    mac: str
    port_no: int
    name: str | None = None  # the container's hostname, for DNS
    managed: bool = True  # the address came from (or was claimed in) IPAM
    dns: bool = True  # its name registered, its resolv.conf ours (not --without-dns)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Subscriber = Callable[[str, Attachment], None]


class Attachments:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._by_id: dict[str, Attachment] = {}
        self._subscribers: list[Subscriber] = []
        self._load()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` on each attach and detach; returns the unsubscriber."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def __iter__(self) -> Iterator[Attachment]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, ident: str) -> Attachment | None:
        return self._by_id.get(ident)

    def by_netns(self, inode: int) -> list[Attachment]:
        return [a for a in self._by_id.values() if a.netns_inode == inode]

    def by_port(self, port_no: int, host_iface: str) -> Attachment | None:
        for a in self._by_id.values():
            if a.port_no == port_no and a.host_iface == host_iface:
                return a
        return None

    def add(self, attachment: Attachment) -> None:
        self._by_id[attachment.id] = attachment
        self._save()
        self._tell(ATTACH, attachment)

    def remove(self, ident: str) -> Attachment | None:
        attachment = self._by_id.pop(ident, None)
        if attachment is not None:
            self._save()
            self._tell(DETACH, attachment)
        return attachment

    def _tell(self, event: str, attachment: Attachment) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event, attachment)
            except Exception:
                log.exception("attachment subscriber %r failed on %s", callback, event)

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            for item in json.loads(self.path.read_text()):
                attachment = Attachment(**item)
                self._by_id[attachment.id] = attachment
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring %s: %s", self.path, exc)

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            write_atomic(self.path, json.dumps([a.to_json() for a in self._by_id.values()]))
        except OSError as exc:
            log.warning("cannot save %s: %s", self.path, exc)
