"""Progress for long commands: a bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

BAR_WIDTH = 30
LINE_EVERY_SECONDS = 5.0
# A terminal bar is redrawn at most this often, however often it is updated.
BAR_EVERY_SECONDS = 0.1
COUNT_CHUNK_BYTES = 1 << 20


class Progress:
    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._last_line = 0.0
        self._last_done: int | None = None
        self._tty = self.stream.isatty()

    def update(self, done: int) -> None:
        now = time.monotonic()
        every = BAR_EVERY_SECONDS if self._tty else LINE_EVERY_SECONDS
        if now - self._last_line < every:
            return
        self._last_line, self._last_done = now, done
        self.stream.write(self._render(done, now) + ("\r" if self._tty else "\n"))
        self.stream.flush()

    def finish(self, done: int) -> None:
        if not self._tty and done == self._last_done:
            return
        self.stream.write(self._render(done, time.monotonic()) + "\n")
        self.stream.flush()

    def _render(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        if self.total:
            share = min(done / self.total, 1.0)
            filled = int(share * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            left = (self.total - done) / rate if rate > 0 else 0.0
            return f"{self.label} [{bar}] {done:,}/{self.total:,} {rate:,.0f}/s ETA {left:,.0f}s"
        return f"{self.label} {done:,} {rate:,.0f}/s"


def count_lines(path: Path) -> int:
    """How many lines a file holds: the total of a bar over an NDJSON export (an event a line)."""
    count = 0
    with path.open("rb") as source:
        while chunk := source.read(COUNT_CHUNK_BYTES):
            count += chunk.count(b"\n")
    return count
