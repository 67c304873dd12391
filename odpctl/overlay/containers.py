"""Attaching a container by its network namespace: veth, address, port, record.

`ContainerPorts` serves the router's ``attach``/``detach`` requests that name
a namespace: an address from IPAM (or the one given, claimed), the veth pair
(`veth.plug`), the host end as a netdev port of the datapath, and the record
that detach (and DNS, through `Attachments.subscribe`) reads.  Each step is
undone if a later one fails, so a failed attach leaves nothing behind.  The
datapath is the router's business: it lends ``add_port``/``remove_port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from odpctl.errors import AlreadyExistsError, NotFoundError, OdpError, UsageError
from odpctl.ipam.addr import Cidr, format_ip, parse_address
from odpctl.ipam.allocator import Allocator

from . import veth
from .attachments import Attachment, Attachments

log = logging.getLogger("odpctl.router")

_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class ContainerPorts:
    def __init__(
        self,
        ipam: Allocator,
        attachments: Attachments,
        mtu: int,
        add_port: Callable[[str], int],
        remove_port: Callable[[str], None],
        gateway: Callable[[], str | None],
    ) -> None:
        self.ipam = ipam
        self.attachments = attachments
        self.mtu = mtu
        self._add_port = add_port
        self._remove_port = remove_port
        self._gateway = gateway
        # One attach or detach at a time per container: a runtime retrying an ADD
        # must not see the first attempt's address released by the second's failure.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # and how many use it

    def result(self, a: Attachment) -> dict[str, Any]:
        return {
            "ip": a.ip,
            "mac": a.mac,
            "ifname": a.ifname,
            "port_no": a.port_no,
            "gateway": self._gateway(),
            "netns": a.netns,
            "id": a.id,
            "name": a.name,
            "host_iface": a.host_iface,
        }

    async def attach(self, request: dict[str, Any]) -> dict[str, Any]:
        spec = _netns(request)
        inode = veth.netns_inode(spec)
        ident = self.ipam.check_id(request.get("id") or f"netns:{inode}")
        ifname = _str(request, "ifname", "eth0", _IFNAME, "an interface name")
        name = _str(request, "name", None, _HOSTNAME, "a host name")
        dns = request.get("dns", True)
        if not isinstance(dns, bool):
            raise UsageError(f'"dns" {dns!r}: expected true or false')
        mtu = request.get("mtu") or self.mtu
        if not isinstance(mtu, int) or not 576 <= mtu <= 65000:
            raise UsageError(f'"mtu" {mtu!r}: expected 576 to 65000')
        subnet = Cidr.parse(request["cidr"]) if request.get("cidr") else None
        async with self._lock(ident):
            return await self._attach(
                ident, spec, inode, ifname, name, mtu, subnet, request.get("ip"), dns
            )

    @contextlib.asynccontextmanager
    async def _lock(self, ident: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(ident, (asyncio.Lock(), 0))
        self._locks[ident] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[ident]
            if users == 1:
                del self._locks[ident]
            else:
                self._locks[ident] = (lock, users - 1)

    async def _attach(
        self,
        ident: str,
        spec: str,
        inode: int,
        ifname: str,
        name: str | None,
        mtu: int,
        subnet: Cidr | None,
        ip: Any,
        dns: bool,
    ) -> dict[str, Any]:
        existing = self.attachments.get(ident)
        if existing is not None:
            if existing.netns_inode != inode:
                raise AlreadyExistsError(
                    f"container {ident} is attached already, in namespace {existing.netns}"
                )
            return self.result(existing)
        started = time.perf_counter()
        had = self.ipam.lookup(ident)
        address, managed = await self._address(ident, ip, subnet)
        host_iface = veth.host_iface_for(ident)
        addressed = time.perf_counter()
        try:
            plugged = await asyncio.to_thread(
                veth.plug, spec, host_iface, ifname, mtu, address, (str(self.ipam.cidr),)
            )
            try:
                plugged_at = time.perf_counter()
                port_no = self._add_port(host_iface)
                ported = time.perf_counter()
            except BaseException:
                await asyncio.to_thread(veth.unplug, host_iface)
                raise
        except BaseException:
            if managed and had is None:
                self.ipam.release(ident)
            raise
        attachment = Attachment(
            ident,
            spec,
            inode,
            ifname,
            host_iface,
            address,
            plugged.mac,
            port_no,
            name,
            managed,
            dns,
        )
        self.attachments.add(attachment)
        # Where an attach's time goes, for whoever wonders why a container start is slow.
        done = time.perf_counter()
        log.info(
            "attached container %s (%s in %s) as port %d with %s in %.1f ms "
            "(address %.1f, veth %.1f, datapath port %.1f, record %.1f)",
            ident,
            ifname,
            spec,
            port_no,
            address,
            (done - started) * 1000,
            (addressed - started) * 1000,
            (plugged_at - addressed) * 1000,
            (ported - plugged_at) * 1000,
            (done - ported) * 1000,
        )
        return self.result(attachment)

    async def _address(self, ident: str, ip: Any, subnet: Cidr | None) -> tuple[str, bool]:
        """The container's address as A.B.C.D/LEN, and whether IPAM manages it."""
        if ip is None:
            addr = await self.ipam.allocate(ident, subnet)
            return f"{format_ip(addr)}/{self.ipam.prefixlen(subnet)}", True
        if not isinstance(ip, str):
            raise UsageError(f'"ip" {ip!r}: expected A.B.C.D[/LEN]')
        addr, prefixlen = parse_address(ip, self.ipam.prefixlen())
        if addr not in self.ipam.cidr:
            return f"{format_ip(addr)}/{prefixlen}", False
        await self.ipam.claim(ident, addr)
        return f"{format_ip(addr)}/{prefixlen}", True

    async def restore(self, attached: set[str]) -> None:
        """After a restart: put the recorded containers' ports back on the datapath
        (a userspace datapath restarted without them), and forget those gone."""
        for a in self.attachments:
            if a.host_iface in attached:
                continue
            if await asyncio.to_thread(veth.exists, a.host_iface):
                port_no = self._add_port(a.host_iface)
                if port_no != a.port_no:
                    self.attachments.add(replace(a, port_no=port_no))
                log.info("container %s (%s) back on port %d", a.id, a.ip, port_no)
            else:
                # Its namespace went while we were down, and its veth with it.
                if a.managed:
                    self.ipam.release(a.id)
                self.attachments.remove(a.id)
                log.info("container %s (%s) is gone: forgotten", a.id, a.ip)

    async def detach(self, request: dict[str, Any]) -> dict[str, Any]:
        """Undo an attach (by "id" or "netns"); nothing to undo is no error."""
        found: list[Attachment] = []
        ident = request.get("id")
        if ident is not None:
            self.ipam.check_id(ident)
            attachment = self.attachments.get(ident)
            found = [attachment] if attachment is not None else []
        elif request.get("netns") is not None:
            spec = _netns(request)
            try:
                found = self.attachments.by_netns(veth.netns_inode(spec))
            except NotFoundError:
                # The namespace is gone (the container died): its veth went with it.
                found = [a for a in self.attachments if a.netns == spec]
        else:
            raise UsageError('expected "id" or "netns"')
        for attachment in found:
            async with self._lock(attachment.id):
                with contextlib.suppress(OdpError):
                    self._remove_port(attachment.host_iface)
                await asyncio.to_thread(veth.unplug, attachment.host_iface)
                if attachment.managed:
                    self.ipam.release(attachment.id)
                self.attachments.remove(attachment.id)
            log.info("detached container %s (%s)", attachment.id, attachment.ip)
        released = None
        if not found and isinstance(ident, str):
            # Not attached here, but it may hold an address (an IPAM-only user).
            addr = self.ipam.release(ident)
            released = format_ip(addr) if addr is not None else None
        return {"detached": [self.result(a) for a in found], "released": released}


def _netns(request: dict[str, Any]) -> str:
    spec = request.get("netns")
    if not isinstance(spec, str) or not spec or "\0" in spec:
        raise UsageError('expected "netns": a namespace name or a path like /proc/PID/ns/net')
    return spec


def _str(
    request: dict[str, Any], key: str, default: str | None, pattern: re.Pattern[str], what: str
) -> Any:
    value = request.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UsageError(f'"{key}" {value!r}: expected {what}')
    return value
