"""The full-screen loop of a live view on a terminal (rich.live).

The screen is redrawn at each refresh, at once when a key changes the view
(sort order), and when the view's own events arrive (port events); between
refreshes the loop sleeps in select(), so it costs nothing while idle.  The
alternate screen is used, as top does: on exit the terminal shows what it
showed before.  ``q`` quits; so does Ctrl-C, which the caller catches.
"""

from __future__ import annotations

import select
from typing import Generic, Protocol, TypeVar

from rich.console import Console, RenderableType
from rich.live import Live

from .keys import Keys
from .sampler import Ticker

F = TypeVar("F")

QUIT_KEYS = frozenset("qQ")


class View(Protocol[F]):
    def sample(self) -> F: ...

    def render(self, frame: F, rows: int) -> RenderableType: ...

    def key(self, key: str) -> bool: ...

    def fileno(self) -> int | None: ...

    def ready(self) -> bool: ...


class LiveLoop(Generic[F]):
    def __init__(self, view: View[F], ticker: Ticker, console: Console | None = None) -> None:
        self.view = view
        self.ticker = ticker
        self.console = console or Console(highlight=False)

    def _draw(self, live: Live, frame: F) -> None:
        live.update(self.view.render(frame, self.console.size.height), refresh=True)

    def run(self) -> None:
        """Until ``count`` refreshes are done or a quit key is pressed."""
        with (
            Keys() as keys,
            Live(
                console=self.console,
                screen=True,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live,
        ):
            for _ in self.ticker:
                frame = self.view.sample()
                self._draw(live, frame)
                if self._wait(live, frame, keys):
                    return

    def _wait(self, live: Live, frame: F, keys: Keys) -> bool:
        """Sleep until the next refresh, answering keys and events; True to quit."""
        while not self.ticker.finished:
            left = self.ticker.remaining()
            if left <= 0:
                return False
            fds = [fd for fd in (keys.fd, self.view.fileno()) if fd is not None]
            ready = select.select(fds, [], [], left)[0]  # with no fds: a sleep
            redraw = False
            if keys.fd is not None and keys.fd in ready:
                typed = keys.read()
                if not typed:  # end of input: stop listening to it
                    keys.fd = None
                if any(k in QUIT_KEYS for k in typed):
                    return True
                redraw = any([self.view.key(k) for k in typed])
            events = self.view.fileno()
            if events is not None and events in ready:
                redraw = self.view.ready() or redraw
            if redraw:
                self._draw(live, frame)
        return False
