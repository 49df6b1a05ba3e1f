"""Write ``client/asynchronous.py``: ``client/sync.py`` made asynchronous.

The two clients differ only in ``await``, ``async`` and the httpx classes, so
one is written and the other derived by these textual rules (as httpcore
derives its sync code), and ``tests/unit/test_client.py`` checks that the
committed file is what this script writes. Run it after changing the sync
client: ``.venv/bin/python scripts/async_client.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYNC = ROOT / "client" / "sync.py"
ASYNC = ROOT / "client" / "asynchronous.py"

HEADER = '''"""The asynchronous client: one coroutine per operation of TrustLedger's HTTP API.

Written by ``scripts/async_client.py`` from ``client/sync.py``; change that
file and run the script, never this one.
"""
'''

# (pattern, replacement), applied in order to the sync client's text.
RULES: list[tuple[str, str]] = [
    (r"^import random\nimport time$", "import asyncio\nimport random"),
    (r"from collections\.abc import Iterator", "from collections.abc import AsyncIterator"),
    (r"\bIterator\[", "AsyncIterator["),
    (r"\bclass TrustLedger\b", "class AsyncTrustLedger"),
    (r"-> TrustLedger:", "-> AsyncTrustLedger:"),
    (r"httpx\.Client\(", "httpx.AsyncClient("),
    (r"httpx\.BaseTransport", "httpx.AsyncBaseTransport"),
    (r"self\._http\.close\(\)", "await self._http.aclose()"),
    (r"def __enter__\(", "def __aenter__("),
    (r"def __exit__\(", "def __aexit__("),
    (r"        self\.close\(\)", "        await self.close()"),
    # Every method becomes a coroutine but the ones that do no I/O.
    (r"^    def (?!__init__|_prepare|_batch)", "    async def "),
    (r"self\._http\.request\(", "await self._http.request("),
    (r"time\.sleep\(", "await asyncio.sleep("),
    (r"return self\.append\(", "return await self.append("),
    (r"return self\._figure\(", "return await self._figure("),
    (r"self\._answer\(", "await self._answer("),
    (r"self\.send\(", "await self.send("),
    (r"with self\._http\.stream\(", "async with self._http.stream("),
    (r"response\.read\(\)", "await response.aread()"),
    (r"for line in response\.iter_lines\(\)", "async for line in response.aiter_lines()"),
]


def asynchronous(sync_source: str) -> str:
    body = sync_source[sync_source.index('"""', 3) + 3 :]
    for pattern, replacement in RULES:
        body = re.sub(pattern, replacement, body, flags=re.MULTILINE)
    return HEADER + body


def formatted(source: str) -> str:
    """The source as ``ruff format`` leaves it (the rules lengthen lines)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(ASYNC), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def main() -> int:
    ASYNC.write_text(formatted(asynchronous(SYNC.read_text())))
    print(f"wrote {ASYNC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
