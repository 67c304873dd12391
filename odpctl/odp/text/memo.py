"""Texts remembered across a dump, and the immutable stand-ins they are kept by.

A dump repeats itself: weave's 100,000 flows have two masks, 64 tunnels and
64 action lists between them, so the formatters keep what they printed, keyed
by the value printed.  The key must be immutable, or a value changed after it
was printed would find its old text: `Tunnel` (a mutable dataclass) stands in
by a tuple of its fields (`tunnel_fields`), and any other mutable value (an
`Nsh`, an ``encap`` `FlowKey`, a bytearray) is unhashable, so the caller gets
TypeError from the lookup and formats it without the memo.

Keys compare as Python values do, so values of the declared field types
print alike when equal (``True`` in an integer field, which would print as
"True" and equal 1, is no valid value).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

from odpctl.odp.keys import Tunnel


def _fields_getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """A function of one instance of the dataclass ``cls``: the tuple of its
    fields, in order.

    Written out as ``lambda v: (v.a, v.b, ...)`` and compiled: attribute
    loads the interpreter specialises are four times as fast as
    ``operator.attrgetter`` or ``dataclasses.astuple``, and made from the
    class's fields it follows any field added to it.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    # The code holds the class's field names only.
    getter: Callable[[Any], tuple[Any, ...]] = eval(  # noqa: S307
        "lambda v: (" + "".join(f"v.{name}, " for name in names) + ")"
    )
    return getter


tunnel_fields: Callable[[Tunnel], tuple[Any, ...]] = _fields_getter(Tunnel)
"""Every field of a `Tunnel`, in order: the immutable stand-in for it."""


class TextMemo(dict[Hashable, Any]):
    """A bounded dict of texts (or plans) by immutable key.

    When full it is emptied rather than evicting one entry at a time: a dump
    either repeats few values (they come back at once) or many (nothing kept
    would be used again), and a plain dict keeps each lookup at C speed.
    """

    __slots__ = ("size",)

    def __init__(self, size: int = 4096) -> None:
        super().__init__()
        self.size = size

    def text(self, key: Hashable, make: Callable[..., str], *args: Any) -> str:
        """The text kept under ``key``, else ``make(*args)`` (kept, unless
        ``key`` is unhashable: it holds a mutable value, never kept)."""
        try:
            text: str | None = self.get(key)
        except TypeError:
            return make(*args)
        if text is None:
            text = self.put(key, make(*args))
        return text

    def put(self, key: Hashable, text: Any) -> Any:
        """Remember ``text`` under ``key``; returns ``text``."""
        if len(self) >= self.size:
            self.clear()
        self[key] = text
        return text
