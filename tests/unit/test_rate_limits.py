"""Token buckets: a burst, then one request per 1/rate seconds; bounded memory."""

from __future__ import annotations

import pytest

from api.rate_limits import Bucket, Buckets, RateLimit


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    bucket = Bucket(RateLimit(per_second=2, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [None, None, None]
    assert bucket.take(0.0) == 1  # half a second to the next token, rounded up
    assert bucket.take(0.5) is None
    assert bucket.take(0.5) == 1
    assert [bucket.take(100.0) for _ in range(4)] == [None, None, None, 1]  # never above the burst


def test_a_slow_refill_asks_for_a_longer_wait() -> None:
    bucket = Bucket(RateLimit(per_second=0.1, burst=1), now=0.0)
    assert bucket.take(0.0) is None
    assert bucket.take(1.0) == 9


def test_buckets_keep_their_names_apart_and_forget_the_least_recent() -> None:
    limit = RateLimit(per_second=1, burst=1)
    buckets = Buckets(size_max=2)
    assert buckets.take("a", limit, 0.0) is None
    assert buckets.take("a", limit, 0.0) == 1
    assert buckets.take("b", limit, 0.0) is None
    assert not buckets.peek("a", limit, 0.0)
    assert buckets.take("c", limit, 0.0) is None  # "a" is forgotten
    assert buckets.peek("a", limit, 0.0)
    assert not buckets.peek("b", limit, 0.0)


@pytest.mark.parametrize(("per_second", "burst"), [(0, 1), (-1, 5), (1, 0.5)])
def test_a_limit_that_would_refuse_everything_is_refused(per_second: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(per_second, burst)
