"""Streamed dump lines go out in batches, whatever stdout's buffering."""

from __future__ import annotations

import io

import pytest

from odpctl.commands.flow import _LINES_PER_WRITE, _write_lines


class CountingOut(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.parametrize("count", [0, 1, _LINES_PER_WRITE, 2 * _LINES_PER_WRITE + 3])
def test_every_line_once_in_order_a_batch_per_write(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = CountingOut()
    monkeypatch.setattr("sys.stdout", out)
    lines = [f"flow {i}" for i in range(count)]
    _write_lines(iter(lines))
    assert out.getvalue() == "".join(line + "\n" for line in lines)
    assert out.writes == -(-count // _LINES_PER_WRITE)
