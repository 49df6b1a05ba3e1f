"""One event of the log as an NDJSON line: what an export writes and an import reads.

::

    {"position": P, "originator_id": "...", "originator_version": N, "topic": "...", "body": {...}}

``body`` is the stored event JSON embedded as is (``msgspec.Raw``), so an
exported body is byte-identical to the stored one and a line can be hashed
as the stored row it copies (``projections.log_verifier``).
"""

from __future__ import annotations

from uuid import UUID

import msgspec

# The longest event is a fake-trade case: 5,000 trade ids and as many item ids
# of up to 128 characters each, about 1.3 MB of JSON; texts are a few KB.
LINE_BYTES_MAX = 4 * 1024 * 1024


class LogLine(msgspec.Struct, frozen=True):
    """One exported event. Unknown fields are ignored on import."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    body: msgspec.Raw
