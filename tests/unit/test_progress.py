"""Progress of long commands: a bar on a terminal, a plain line now and then
elsewhere, and always a last line with the count."""

from __future__ import annotations

import io

import pytest

from tools import progress as p


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_plain_line_every_few_seconds_and_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([0.0, 1.0, 2.0, 7.0, 8.0])
    monkeypatch.setattr("tools.progress.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = p.Progress("import", 100, stream=out)  # started at 0
    bar.update(10)  # 1 s: the first line is drawn at once
    bar.update(20)  # 2 s: too soon after the last line
    bar.update(70)  # 7 s: a line
    bar.finish(100)  # 8 s: the last line
    lines = out.getvalue().splitlines()
    assert lines == [
        "import 10/100 10/s ETA 9s",
        "import 70/100 10/s ETA 3s",
        "import 100/100 12/s ETA 0s",
    ]


def test_on_a_terminal_a_bar_that_ends_at_the_count() -> None:
    screen = Terminal()
    bar = p.Progress("replay", 40, stream=screen)
    bar.update(10)
    bar.finish(40)
    shown = screen.getvalue()
    assert "replay" in shown and "40/40" in shown
    assert "\x1b[" in shown  # drawn for a terminal, not as plain lines
