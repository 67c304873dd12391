"""The fast path encrypted by the kernel: one ESP association per direction per connection.

`Esp` is the router's: at start it checks that the kernel can do ESP with
``rfc4106(gcm(aes))`` (a test association added and deleted), removes what a
killed router left (states with our reqids, policies with our mark, the
firewall's table or chains), and picks a firewall backend.  At stop, and when
each connection ends, everything it added goes.

`EspLink` is a connection's, in three steps:

1. `allocate`: the kernel picks the SPI of our inbound association (a larval
   state), which we send to the other end over the encrypted mesh connection.
2. `peer_spi`: with the other end's SPI (of its inbound association, so our
   outbound one) both associations are installed, each direction with its own
   key from the connection's session key (`keys.direction_keys`), then the
   outbound policy that sends marked VXLAN to the peer through ESP, and the
   firewall's mark and drop for the peer.
3. `remove`.

Until step 2 is done at our end the connection must not carry container
frames over plaintext VXLAN: `EspLink.installed` says when it may.

Everything here is ours by number: reqids in ``REQID_BASE`` + 1..0xFFFF and
the policy mark ``MARK``/``MASK`` (the firewall sets the same mark).  Another
router in the same network namespace would share them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import subprocess
from dataclasses import dataclass

from odpctl.crypto.firewall import Firewall, install_firewall
from odpctl.crypto.keys import direction_keys
from odpctl.crypto.xfrm import (
    GCM_KEY_LEN,
    Mark,
    Policy,
    SecurityAssociation,
    Selector,
    Xfrm,
)
from odpctl.errors import NotFoundError, OdpError

log = logging.getLogger("odpctl.esp")

FEATURE = "esp"  # in our HELLO's features when this end can do ESP
SPI_TAG = 16  # overlay control message: the SPI of the sender's inbound association
MARK = 0x6F640000
MASK = 0xFFFF0000
REQID_BASE = 0x6F640000
PROBE_REQID = REQID_BASE  # connections take the ones after it
_PROBE_SPI = 0x6F64FFFF
_PROBE_SRC, _PROBE_DST = "127.0.0.1", "127.0.0.2"
UNAVAILABLE = "fast path needs kernel ESP (esp4, gcm)"
NO_FIREWALL = "fast path needs nftables or iptables for ESP"
_IPPROTO_UDP = 17

_probe_refusal: str | None = None  # the kernel's answer to the probe, if it said no
_probe_done = False


def ours(reqid: int) -> bool:
    return reqid & MASK == REQID_BASE


@dataclass(frozen=True, slots=True)
class EspState:
    """What status shows of a connection's ESP."""

    mode: str  # "esp" (both associations installed), "pending", or "none"
    spi_in: int | None = None
    spi_out: int | None = None
    reason: str | None = None  # why not "esp"
    # What the kernel refused on the inbound association, as it counts them.
    replays: int = 0
    auth_failures: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "spi_in": None if self.spi_in is None else f"{self.spi_in:#010x}",
            "spi_out": None if self.spi_out is None else f"{self.spi_out:#010x}",
            "reason": self.reason,
            "replays": self.replays,
            "auth_failures": self.auth_failures,
        }


def _load_modules() -> None:
    """Best effort: where modules load on demand this is not needed, and where
    they cannot load the probe's answer says so."""
    modprobe = shutil.which("modprobe")
    if modprobe is None:
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [modprobe, "-q", "-a", "xfrm_user", "esp4", "gcm", "aes"],
            capture_output=True,
            timeout=20,
            check=False,
        )


def _probe(xfrm: Xfrm) -> None:
    """Raise the kernel's refusal if it cannot hold our kind of association."""
    sa = SecurityAssociation(
        _PROBE_SRC, _PROBE_DST, _PROBE_SPI, PROBE_REQID, key=bytes(GCM_KEY_LEN)
    )
    with contextlib.suppress(NotFoundError):
        xfrm.delete_sa(sa.dst, sa.spi)  # a killed router's
    xfrm.add_sa(sa)
    xfrm.delete_sa(sa.dst, sa.spi)


def _run_probe() -> str | None:
    """The kernel's refusal of our kind of association, probed once per process."""
    global _probe_refusal, _probe_done
    if not _probe_done:
        _load_modules()
        try:
            with Xfrm() as xfrm:
                _probe(xfrm)
            _probe_refusal = None
        except OdpError as exc:
            _probe_refusal = str(exc)
        _probe_done = True
    return _probe_refusal


def esp_unavailable_reason() -> str | None:
    """`UNAVAILABLE` if this host's kernel cannot encrypt the fast path, else None.

    What exactly the kernel said is in `esp_probe_refusal`.
    """
    return UNAVAILABLE if _run_probe() is not None else None


def esp_probe_refusal() -> str | None:
    """The kernel's refusal of the probe association, with its hint; None if it took it."""
    return _run_probe()


class Esp:
    """The router's ESP: probe, leftovers, firewall, and the connections' links."""

    def __init__(self, udp_port: int) -> None:
        self.udp_port = udp_port
        self.reason: str | None = "not started"  # why no ESP, in a few words
        self.detail: str | None = None  # and what exactly refused it
        self.firewall: Firewall | None = None
        self.xfrm: Xfrm | None = None
        self.links: set[EspLink] = set()
        # peer IP -> the link whose policy and firewall rules are in place for it
        self.owners: dict[str, EspLink] = {}
        self._reqids = itertools.cycle(range(REQID_BASE + 1, REQID_BASE + 0x10000))

    @property
    def available(self) -> bool:
        return self.reason is None

    def start(self) -> None:
        """Probe, flush leftovers, install the firewall; on failure, `reason` says why."""
        refusal = esp_probe_refusal()
        if refusal is not None:
            self.reason, self.detail = UNAVAILABLE, refusal
            return
        try:
            self.xfrm = Xfrm()
            self.flush()
        except OdpError as exc:
            self.reason, self.detail = UNAVAILABLE, str(exc)
            self.stop()
            return
        try:
            self.firewall = install_firewall(self.udp_port, MARK, MASK)
        except OdpError as exc:
            self.reason, self.detail = NO_FIREWALL, str(exc)
            self.stop()
            return
        self.reason = self.detail = None

    def flush(self) -> None:
        """Remove every state and policy of ours (a killed router's)."""
        assert self.xfrm is not None
        stale_states = [sa for sa in self.xfrm.states() if ours(sa.reqid)]
        stale_policies = [p for p in self.xfrm.policies() if p.mark == Mark(MARK, MASK)]
        for sa in stale_states:
            with contextlib.suppress(NotFoundError):
                self.xfrm.delete_sa(sa.dst, sa.spi)
        for policy in stale_policies:
            with contextlib.suppress(NotFoundError):
                self.xfrm.delete_policy(policy)
        if stale_states or stale_policies:
            log.info(
                "removed %d ESP state(s) and %d polic(ies) a previous router left",
                len(stale_states),
                len(stale_policies),
            )

    def stop(self) -> None:
        for link in list(self.links):
            link.remove()
        if self.firewall is not None:
            try:
                self.firewall.remove()
            except OdpError as exc:
                log.warning("ESP firewall rules not removed: %s", exc)
        if self.xfrm is not None:
            with contextlib.suppress(OdpError):
                self.flush()
            self.xfrm.close()
            self.xfrm = None

    def link(self, local_ip: str, remote_ip: str, session_key: bytes, outbound: bool) -> EspLink:
        return EspLink(self, local_ip, remote_ip, session_key, outbound, next(self._reqids))

    def diagnostics(self) -> dict[str, object]:
        return {
            "available": self.available,
            "reason": self.reason,
            "detail": self.detail,
            "firewall": self.firewall.name if self.firewall else None,
        }


class EspLink:
    """One connection's pair of associations (see the module's steps)."""

    def __init__(
        self,
        esp: Esp,
        local_ip: str,
        remote_ip: str,
        session_key: bytes,
        outbound: bool,
        reqid: int,
    ) -> None:
        self.esp = esp
        self.local_ip = local_ip
        self.remote_ip = remote_ip
        self.reqid = reqid
        self._keys = direction_keys(session_key, b"esp", outbound=outbound, length=GCM_KEY_LEN)
        self.spi_in: int | None = None
        self.spi_out: int | None = None
        self.installed = False
        self.error: str | None = None

    @property
    def state(self) -> EspState:
        if self.installed and self.spi_in is not None:
            try:
                inbound = self._xfrm().get_sa(self.local_ip, self.spi_in)
            except OdpError as exc:
                return EspState(
                    "esp", self.spi_in, self.spi_out, f"cannot read the inbound association: {exc}"
                )
            return EspState(
                "esp",
                self.spi_in,
                self.spi_out,
                replays=inbound.replayed,
                auth_failures=inbound.integrity_failed,
            )
        reason = self.error or (
            "waiting for the other end's ESP SPI" if self.spi_in else "no ESP SPI allocated yet"
        )
        return EspState("pending", self.spi_in, self.spi_out, reason)

    def _xfrm(self) -> Xfrm:
        if self.esp.xfrm is None:
            raise OdpError("ESP is stopped")
        return self.esp.xfrm

    def allocate(self) -> int | None:
        """Our inbound SPI, to send to the other end; None (and `error`) if refused."""
        try:
            self.spi_in = self._xfrm().alloc_spi(self.remote_ip, self.local_ip, self.reqid)
        except OdpError as exc:
            self.error = f"cannot allocate an ESP SPI: {exc}"
            log.warning("%s -> %s: %s", self.local_ip, self.remote_ip, self.error)
            return None
        self.esp.links.add(self)
        return self.spi_in

    def peer_spi(self, spi: int) -> bool:
        """The other end's inbound SPI came: install both directions; whether now installed."""
        if self.installed or self.spi_in is None:
            return self.installed
        self.spi_out = spi
        try:
            self._install()
        except OdpError as exc:
            self.error = f"ESP not installed: {exc}"
            log.warning("%s -> %s: %s", self.local_ip, self.remote_ip, self.error)
            self._remove_states()
            return False
        self.installed = True
        self.error = None
        log.info("ESP to %s: SPI in %#010x, out %#010x", self.remote_ip, self.spi_in, spi)
        return True

    def _policy(self) -> Policy:
        return Policy(
            Selector(
                dst=self.remote_ip, dst_prefix=32, proto=_IPPROTO_UDP, dport=self.esp.udp_port
            ),
            src=self.local_ip,
            dst=self.remote_ip,
            reqid=self.reqid,
            mark=Mark(MARK, MASK),
        )

    def _install(self) -> None:
        xfrm = self._xfrm()
        assert self.spi_in is not None and self.spi_out is not None
        inbound = SecurityAssociation(
            self.remote_ip, self.local_ip, self.spi_in, self.reqid, key=self._keys.receive
        )
        try:
            xfrm.add_sa(inbound, update=True)
        except NotFoundError:
            xfrm.add_sa(inbound)  # the larval state timed out
        xfrm.add_sa(
            SecurityAssociation(
                self.local_ip, self.remote_ip, self.spi_out, self.reqid, key=self._keys.send
            )
        )
        # Replaces the policy of an earlier connection to the same peer.
        xfrm.add_policy(self._policy())
        owner = self.esp.owners.get(self.remote_ip)
        if owner is None:
            assert self.esp.firewall is not None
            self.esp.firewall.protect(self.remote_ip)
        self.esp.owners[self.remote_ip] = self

    def _remove_states(self) -> None:
        xfrm = self.esp.xfrm
        if xfrm is None:
            return
        for dst, spi in ((self.local_ip, self.spi_in), (self.remote_ip, self.spi_out)):
            if spi is not None:
                with contextlib.suppress(OdpError):
                    xfrm.delete_sa(dst, spi)

    def remove(self) -> None:
        """Take this connection's associations (and, if ours, policy and rules) away."""
        self.esp.links.discard(self)
        self._remove_states()
        self.installed = False
        if self.esp.owners.get(self.remote_ip) is not self:
            return
        del self.esp.owners[self.remote_ip]
        if self.esp.xfrm is not None:
            with contextlib.suppress(OdpError):
                self.esp.xfrm.delete_policy(self._policy())
        if self.esp.firewall is not None:
            try:
                self.esp.firewall.unprotect(self.remote_ip)
            except OdpError as exc:
                log.warning("ESP firewall rules for %s not removed: %s", self.remote_ip, exc)


def encode_spi(spi: int) -> bytes:
    return spi.to_bytes(4, "big")


def decode_spi(payload: bytes) -> int | None:
    """The SPI of an SPI_TAG message; None if malformed (an SPI below 256 is reserved)."""
    if len(payload) != 4:
        return None
    spi = int.from_bytes(payload, "big")
    return spi if spi >= 0x100 else None
