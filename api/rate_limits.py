"""Token buckets: requests per API key by its role, failed sign-ins per address.

A bucket holds up to ``burst`` tokens and gains ``per_second`` a second; a
request takes one. An empty bucket refuses with the seconds until a token is
back, which the caller gets as 429 with Retry-After. Buckets live in the
process (each server counts its own requests) and run on the event loop, so
they need no lock; buckets of client addresses are bounded by
``ADDRESS_BUCKETS_MAX``, the least recently used going first.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from api.auth import Role

ADDRESS_BUCKETS_MAX = 10_000


@dataclass(frozen=True)
class RateLimit:
    """A token bucket's size (``burst``) and refill (``per_second``); a dataclass
    so the settings can read it from the environment as JSON."""

    per_second: float
    burst: float

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")


# Generous: they stop a runaway or abusive caller, not the expected load
# (the ranking engine asks thousands of times a second).
RATE_LIMITS_DEFAULT: dict[Role, RateLimit] = {
    Role.SERVICE: RateLimit(2_000, 4_000),
    Role.RANKING: RateLimit(10_000, 20_000),
    Role.READER: RateLimit(1_000, 2_000),
    Role.AUDITOR: RateLimit(200, 400),
    Role.ADMIN: RateLimit(200, 400),
}
# Requests with a missing or unknown key, per client address.
FAILED_AUTH_LIMIT_DEFAULT = RateLimit(per_second=1, burst=30)


class Bucket:
    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit, self.tokens, self.updated = limit, limit.burst, now

    def take(self, now: float) -> int | None:
        """Take a token; None when one was there, else the whole seconds to wait."""
        self.tokens = min(
            self.limit.burst, self.tokens + (now - self.updated) * self.limit.per_second
        )
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return max(1, math.ceil((1 - self.tokens) / self.limit.per_second))


class Buckets:
    """One bucket per name (a key id, a client address), at most ``size_max``."""

    def __init__(self, size_max: int) -> None:
        self.size_max = size_max
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, name: str, limit: RateLimit, now: float) -> int | None:
        bucket = self._buckets.get(name)
        if bucket is None or bucket.limit != limit:
            bucket = self._buckets[name] = Bucket(limit, now)
            if len(self._buckets) > self.size_max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(name)
        return bucket.take(now)

    def peek(self, name: str, limit: RateLimit, now: float) -> bool:
        """Whether a token is there, taking none."""
        bucket = self._buckets.get(name)
        if bucket is None:
            return True
        held = min(limit.burst, bucket.tokens + (now - bucket.updated) * limit.per_second)
        return held >= 1
