"""The chaos suite's scale (``--chaos-long``) and its counts, summed up at the end
of the run and written to ``--chaos-report`` when given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

_COUNTS = pytest.StashKey[list[dict[str, Any]]]()


class ChaosRun:
    def __init__(self, config: pytest.Config, test: str) -> None:
        self.long: bool = config.getoption("--chaos-long")
        self._counts = config.stash.setdefault(_COUNTS, [])
        self._test = test

    def scaled(self, short: float, long: float) -> float:
        return long if self.long else short

    def record(self, **counts: Any) -> None:
        """What a test did and saw: requests sent, faults injected, lost, doubled, 5xx."""
        self._counts.append({"test": self._test, **counts})


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> ChaosRun:
    return ChaosRun(request.config, request.node.name)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    counts = config.stash.get(_COUNTS, [])
    if not counts:
        return
    terminalreporter.section("chaos suite")
    for entry in counts:
        terminalreporter.write_line(", ".join(f"{k}={v}" for k, v in entry.items()))
    target = config.getoption("--chaos-report")
    if target:
        Path(target).write_text(json.dumps(counts, indent=2) + "\n")
