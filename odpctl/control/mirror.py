"""The router's upcall mirror: how `odpctl watch upcalls` sees a router's misses.

A datapath sends each upcall to one socket, the router's, so a watcher
cannot get its own copy from the kernel.  The router hands out copies
instead, on its control socket (root only), as a subscription in JSON
lines.  This module is the wire format and the router's side (`UpcallMirror`,
to call from the miss path); the client is `odpctl.watch.subscription`.

Wire format, one JSON object a line::

    client → {"cmd": "upcalls.subscribe", "datapath": "dp0", "snaplen": 256}
    router → {"ok": true, "result": {"datapath": "dp0", "dp_ifindex": 7, "queue": 4096}}
    router → {"event": "upcall", "time": 1700000000.25, "type": "miss", "dp_ifindex": 7,
              "key": "<hex>", "packet": "<hex>", "length": 98, "userdata": null,
              "handled": "flow"}
    router → {"event": "dropped", "count": 12}
    ...                                       until either side closes

``datapath`` null means every datapath of the router.  ``key`` is the
upcall's OVS_PACKET_ATTR_KEY attributes as the datapath sent them, so that
the router copies bytes and never formats on its miss path; ``packet`` is
the first ``snaplen`` bytes of the frame, ``length`` its full length;
``userdata`` is hex or null; ``handled`` is what the router did, if it
says: "flow" (installed one), "flood", "drop", or null.  An error is the
control socket's usual ``{"ok": false, "error": {...}}`` reply, after which
the router closes.

The router never waits for a subscriber: each has a bounded queue, and
what does not fit is counted and reported as a ``dropped`` event, so a slow
``watch`` costs the miss path one append per subscriber, and nothing when
nobody watches.

Serving it takes one thing from the control server: a command that keeps
its connection.  `UpcallMirror.serve` is written for that: it is given the
request and the connection's streams, writes the reply and the events,
and returns when the client goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from odpctl.errors import DecodeError, UsageError
from odpctl.odp.keys import decode_key, encode_key
from odpctl.odp.packet import Upcall
from odpctl.odp.uapi import PacketCmd

SUBSCRIBE = "upcalls.subscribe"
DEFAULT_SNAPLEN = 256
MAX_SNAPLEN = 65535
DEFAULT_QUEUE = 4096
_TYPES = {PacketCmd.MISS: "miss", PacketCmd.ACTION: "action"}
_CMDS = {name: cmd for cmd, name in _TYPES.items()}


def upcall_event(
    dp_ifindex: int,
    cmd: PacketCmd,
    key_attrs: bytes,
    packet: bytes,
    *,
    snaplen: int = DEFAULT_SNAPLEN,
    length: int | None = None,
    userdata: bytes | None = None,
    handled: str | None = None,
    when: float | None = None,
) -> dict[str, Any]:
    """The ``upcall`` event for one upcall."""
    return {
        "event": "upcall",
        "time": time.time() if when is None else when,
        "type": _TYPES.get(cmd, str(int(cmd))),
        "dp_ifindex": dp_ifindex,
        "key": key_attrs.hex(),
        "packet": packet[:snaplen].hex(),
        "length": len(packet) if length is None else length,
        "userdata": userdata.hex() if userdata is not None else None,
        "handled": handled,
    }


@dataclass(frozen=True, slots=True)
class MirroredUpcall:
    """An upcall as a subscriber receives it."""

    time: float
    upcall: Upcall
    handled: str | None


def parse_event(obj: dict[str, Any]) -> MirroredUpcall | int:
    """An ``upcall`` event, or the count of a ``dropped`` one."""
    kind = obj.get("event")
    if kind == "dropped":
        return int(obj.get("count", 0))
    if kind != "upcall":
        raise DecodeError(f"unknown upcall mirror event {kind!r}")
    try:
        cmd = _CMDS.get(obj["type"], PacketCmd.MISS)
        key = decode_key(bytes.fromhex(obj["key"]))
        userdata = obj.get("userdata")
        upcall = Upcall(
            cmd,
            int(obj["dp_ifindex"]),
            key,
            bytes.fromhex(obj["packet"]),
            userdata=bytes.fromhex(userdata) if userdata else None,
            length=int(obj["length"]),
        )
        return MirroredUpcall(float(obj["time"]), upcall, obj.get("handled"))
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"malformed upcall mirror event: {exc}") from None


# --- the router's side -------------------------------------------------------------------


@dataclass(eq=False)
class _Subscriber:
    dp_ifindex: int | None
    snaplen: int
    loop: asyncio.AbstractEventLoop
    queue: deque[dict[str, Any]]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Counted by the handler threads, read and reset by the loop: under the lock,
    # or an increment between the loop's read and its reset is lost.
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_dropped(self) -> int:
        with self.lock:
            count, self.dropped = self.dropped, 0
        return count

    def wake_loop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the router is ending
            self.loop.call_soon_threadsafe(self.wake.set)


class UpcallMirror:
    """Copies of a router's upcalls for its subscribers.

    `publish` may be called from any thread (the router's handler threads);
    `serve` runs on the control server's event loop.  ``resolve`` maps a
    subscription's datapath name to its ifindex (raising `OdpError` for an
    unknown one); None accepts only subscriptions to every datapath.
    """

    def __init__(self, resolve: Any = None, queue: int = DEFAULT_QUEUE) -> None:
        self._resolve = resolve
        self._queue = queue
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()

    @property
    def watched(self) -> bool:
        """Whether anybody subscribes: the miss path may skip `publish` otherwise."""
        return bool(self._subscribers)

    def publish(
        self,
        dp_ifindex: int,
        cmd: PacketCmd,
        key_attrs: bytes,
        packet: bytes,
        *,
        length: int | None = None,
        userdata: bytes | None = None,
        handled: str | None = None,
    ) -> None:
        subscribers = self._subscribers  # one read: the list is replaced, never changed
        if not subscribers:
            return
        when = time.time()
        for sub in subscribers:
            if sub.dp_ifindex is not None and sub.dp_ifindex != dp_ifindex:
                continue
            if len(sub.queue) >= self._queue:
                with sub.lock:
                    sub.dropped += 1
                    first = sub.dropped == 1
                if first:  # the loop reports drops even when no upcall follows them
                    sub.wake_loop()
                continue
            sub.queue.append(
                upcall_event(
                    dp_ifindex,
                    cmd,
                    key_attrs,
                    packet,
                    snaplen=sub.snaplen,
                    length=length,
                    userdata=userdata,
                    handled=handled,
                    when=when,
                )
            )
            sub.wake_loop()

    def publish_upcall(self, upcall: Upcall, *, handled: str | None = None) -> None:
        """`publish` for a decoded upcall; its key is encoded only when somebody watches."""
        if not self._subscribers:
            return
        self.publish(
            upcall.dp_ifindex,
            upcall.cmd,
            encode_key(upcall.key),
            upcall.packet,
            length=upcall.length,
            userdata=upcall.userdata,
            handled=handled,
        )

    async def serve(
        self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one subscription until the client goes (see the module for the format)."""
        name = request.get("datapath")
        snaplen = request.get("snaplen", DEFAULT_SNAPLEN)
        if snaplen is None:
            snaplen = DEFAULT_SNAPLEN
        # bool is an int to Python, not to the client who sent true
        valid = isinstance(snaplen, int) and not isinstance(snaplen, bool)
        if not valid or not 0 < snaplen <= MAX_SNAPLEN:
            raise UsageError(
                f"snaplen must be a number of bytes from 1 to {MAX_SNAPLEN}, not {snaplen!r}"
            )
        dp_ifindex = None if name is None or self._resolve is None else self._resolve(name)
        sub = _Subscriber(dp_ifindex, snaplen, asyncio.get_running_loop(), deque())
        await _write(
            writer,
            {
                "ok": True,
                "result": {"datapath": name, "dp_ifindex": dp_ifindex, "queue": self._queue},
            },
        )
        with self._lock:
            self._subscribers = [*self._subscribers, sub]
        gone = asyncio.ensure_future(reader.read())  # EOF (or anything): the client left
        try:
            while not gone.done():
                woken = asyncio.ensure_future(sub.wake.wait())
                await asyncio.wait({gone, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                sub.wake.clear()
                lines = []
                while sub.queue:
                    lines.append(sub.queue.popleft())
                if dropped := sub.take_dropped():
                    lines.append({"event": "dropped", "count": dropped})
                if lines:
                    writer.write(b"".join(encode_line(obj) for obj in lines))
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            gone.cancel()
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not sub]


def encode_line(obj: dict[str, Any]) -> bytes:
    """One line of the wire format."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


async def _write(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(encode_line(obj))
    await writer.drain()
