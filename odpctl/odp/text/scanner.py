"""A cursor over ODP text, with errors that point at the column.

Open vSwitch parses its ODP syntax with hand-written scanners rather than a
grammar: what a value looks like depends on the field it belongs to (a MAC, an
IPv6 address with colons, a percentage).  `Scanner` follows that shape: the
structure (names, parentheses, commas, ``=`` and ``/``) is read here, and each
field's value text is handed to a value parser from `odpctl.odp.text.values`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from odpctl.errors import ParseError

T = TypeVar("T")

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class Scanner:
    """Reads ``text`` from ``pos``; every error carries a 1-based column."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos

    def error(self, message: str, pos: int | None = None) -> ParseError:
        at = self.pos if pos is None else pos
        return ParseError(message, self.text, at + 1)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        """The next character, or '' at the end."""
        return self.text[self.pos : self.pos + 1]

    def looking_at(self, literal: str) -> bool:
        return self.text.startswith(literal, self.pos)

    def accept(self, literal: str) -> bool:
        """Consume ``literal`` if it is next."""
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, context: str = "") -> None:
        if not self.accept(literal):
            where = f" in {context}" if context else ""
            found = self.peek()
            found_text = f"'{found}'" if found else "end of text"
            raise self.error(f"expected '{literal}'{where}, found {found_text}")

    def skip_spaces(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        self.pos = pos

    def name(self, what: str = "a name") -> str:
        """An identifier: letters, digits and underscores."""
        text, start = self.text, self.pos
        end = start
        while end < len(text) and text[end] in _NAME_CHARS:
            end += 1
        if end == start:
            found = self.peek()
            raise self.error(f"expected {what}, found {repr(found) if found else 'end of text'}")
        self.pos = end
        return text[start:end]

    def token(self, stops: str = ",)/") -> tuple[str, int]:
        """The raw text up to the next stop character outside brackets.

        Returns the text and where it started, so a value parser's complaint
        can point at the value.  Square brackets are skipped over whole
        because IPv6 addresses in NAT ranges are written ``[addr]:port``.
        """
        text, start = self.text, self.pos
        pos, depth = start, 0
        while pos < len(text):
            ch = text[pos]
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
            elif depth <= 0 and ch in stops:
                break
            pos += 1
        self.pos = pos
        return text[start:pos], start

    def value(self, parse: Callable[[str], T], what: str, stops: str = ",)/") -> T:
        """Read a token and convert it with ``parse``; ValueError points at it."""
        token, start = self.token(stops)
        if not token:
            raise self.error(f"expected {what}", start)
        try:
            return parse(token)
        except ValueError as exc:
            detail = f": {exc}" if str(exc) else ""
            raise self.error(f"invalid {what} '{token}'{detail}", start) from None
