"""A thread of the router's with a datapath connection of its own.

The miss handlers and the revalidator each block on their own socket (an
upcall channel, a flow dump), so each owns a thread and a connection, and
stopping one means ending the thread before closing what it reads from.
"""

from __future__ import annotations

import threading

from odpctl.odp.dpif import Dpif


class DatapathWorker:
    join_timeout = 2.0  # how long `stop` waits for the thread before closing anyway

    def __init__(self, name: str, dpif: Dpif) -> None:
        self.dpif = dpif  # its own connection, closed by `stop`
        self.lost: str | None = None  # why the datapath went away, when it did
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._interrupt()
        if self._thread.is_alive():
            self._thread.join(self.join_timeout)
        self._close()

    def _interrupt(self) -> None:
        """Wake the thread where it waits on something other than the stop event."""

    def _close(self) -> None:
        self.dpif.close()

    def _run(self) -> None:
        raise NotImplementedError
