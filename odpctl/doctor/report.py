"""What a check finds, and what a run of them adds up to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# Exit codes: all ok (warnings allowed), a problem found, could not run.
EXIT_OK, EXIT_PROBLEM, EXIT_COULD_NOT_RUN = 0, 1, 2


class Level(StrEnum):
    ok = "ok"
    warn = "warn"
    problem = "problem"


@dataclass(frozen=True)
class Check:
    area: str  # datapath, router, peer, port, host
    subject: str  # what it is about: "host1 (42:4f:3e:5f:21:f3)", "c0", "rp_filter"
    name: str  # what was checked: "udp", "mtu", ...
    level: Level
    evidence: str
    fix: str = ""  # one line; empty when ok


def ok(area: str, subject: str, name: str, evidence: str) -> Check:
    return Check(area, subject, name, Level.ok, evidence)


def warn(area: str, subject: str, name: str, evidence: str, fix: str) -> Check:
    return Check(area, subject, name, Level.warn, evidence, fix)


def problem(area: str, subject: str, name: str, evidence: str, fix: str) -> Check:
    return Check(area, subject, name, Level.problem, evidence, fix)


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def count(self, level: Level) -> int:
        return sum(1 for c in self.checks if c.level is level)

    @property
    def exit_code(self) -> int:
        return EXIT_PROBLEM if self.count(Level.problem) else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "checks": [{**asdict(c), "level": str(c.level)} for c in self.checks],
            "summary": {str(level): self.count(level) for level in Level},
            "exit_code": self.exit_code,
        }
