"""Progress for long commands: a rich bar on a terminal, plain periodic lines
otherwise (a log file or a pipe gets a line every few seconds, not a redraw)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

LINE_EVERY_SECONDS = 5.0
COUNT_CHUNK_BYTES = 1 << 20


class Progress:
    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._last_line = -math.inf  # the first update draws a line at once
        self._last_done: int | None = None
        self._bar: Bar | None = None
        if self.stream.isatty():
            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}/s"),
                TimeRemainingColumn(),
                console=Console(file=self.stream, force_terminal=True),
            )
            self._task = self._bar.add_task(label, total=total, rate="0")
            self._bar.start()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(self._task, completed=done, rate=f"{self._rate(done, now):,.0f}")
            return
        if now - self._last_line < LINE_EVERY_SECONDS:
            return
        self._last_line, self._last_done = now, done
        self.stream.write(self._line(done, now) + "\n")
        self.stream.flush()

    def finish(self, done: int) -> None:
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(self._task, completed=done, rate=f"{self._rate(done, now):,.0f}")
            self._bar.stop()
            return
        if done == self._last_done:
            return
        self.stream.write(self._line(done, now) + "\n")
        self.stream.flush()

    def _rate(self, done: int, now: float) -> float:
        return done / max(now - self.started, 1e-9)

    def _line(self, done: int, now: float) -> str:
        rate = self._rate(done, now)
        if self.total:
            left = (self.total - done) / rate if rate > 0 else 0.0
            return f"{self.label} {done:,}/{self.total:,} {rate:,.0f}/s ETA {left:,.0f}s"
        return f"{self.label} {done:,} {rate:,.0f}/s"


def count_lines(path: Path) -> int:
    """How many lines a file holds: the total of a bar over an NDJSON export (an event a line)."""
    count = 0
    with path.open("rb") as source:
        while chunk := source.read(COUNT_CHUNK_BYTES):
            count += chunk.count(b"\n")
    return count
