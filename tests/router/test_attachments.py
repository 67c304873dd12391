"""The record of containers attached by namespace: persistence and subscribers (DNS's hook)."""

from __future__ import annotations

from pathlib import Path

from odpctl.overlay.attachments import ATTACH, DETACH, Attachment, Attachments


def sample(ident: str = "c1", name: str | None = "web1") -> Attachment:
    return Attachment(
        ident,
        "web",
        4026532999,
        "eth0",
        "vodp0000000001",
        "10.32.0.5/12",
        "02:00:00:00:00:01",
        3,
        name,
    )


def test_subscribers_hear_of_attach_and_detach_with_the_hostname(tmp_path: Path) -> None:
    attachments = Attachments(tmp_path / "a.json")
    heard: list[tuple[str, str | None, str]] = []

    def broken(_event: str, _a: Attachment) -> None:
        raise RuntimeError("a subscriber's bug")

    attachments.subscribe(broken)  # must not keep the others from hearing
    unsubscribe = attachments.subscribe(lambda e, a: heard.append((e, a.name, a.ip)))
    attachments.add(sample())
    assert attachments.remove("c1") == sample()
    assert attachments.remove("c1") is None  # gone already: nobody told twice
    assert heard == [(ATTACH, "web1", "10.32.0.5/12"), (DETACH, "web1", "10.32.0.5/12")]
    unsubscribe()
    attachments.add(sample("c2"))
    assert len(heard) == 2


def test_attachments_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    first = Attachments(path)
    first.add(sample("c1"))
    first.add(sample("c2", None))
    again = Attachments(path)
    assert again.get("c2") == sample("c2", None)
    assert [a.id for a in again.by_netns(4026532999)] == ["c1", "c2"]
    path.write_text("not json")
    assert len(Attachments(path)) == 0  # a damaged file is ignored, with a warning
