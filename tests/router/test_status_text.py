"""`router status` as people read it: where every frame and miss went."""

from __future__ import annotations

from odpctl.present.status import reasons_text, render_status


def test_the_counters_of_frames_and_misses_with_their_reasons() -> None:
    router = {
        "flows": 40,
        "max_flows": 40,
        "over_limit": 260,
        "flows_installed": 43,
        "hit": 7,
        "missed": 320,
        "lost": 2,
        "rx_dropped": 1880,
        "misses": 318,
        "no_flow": 262,
        "heartbeats_received": 10,
        "drops": 3,
        "errors": 0,
        "drop_reasons": {"hairpin": 2, "no route to peer": 1},
        "error_reasons": {},
    }
    text = render_status({"router": router})
    assert "flows:       40 (limit 40, 260 miss(es) over it)  installed: 43" in text
    assert "frames:      hit 7  missed 320  lost 2  rx dropped 1880" in text
    assert (
        "misses:      318: 43 flow(s), 262 without, 10 heartbeat(s), "
        "drops 3 (hairpin 2, no route to peer 1), errors 0"
    ) in text


def test_reasons_text() -> None:
    assert reasons_text(0, {}) == "0"
    assert reasons_text(3, {"a": 2, "b": 1}) == "3 (a 2, b 1)"
    assert reasons_text(5, None) == "5"
