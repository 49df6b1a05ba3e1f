"""Over HTTP, the batch's entry for a seller is the single penalty call's answer.

For sellers registered before and after ``as_of`` (with and without facts),
one registered a minute ahead of the server's clock, and one never
registered, at several business times and now: a 200 single answer is the
batch entry byte for byte, and a 404 single answer is the batch's
unknown-seller entry.

The ledger is filled through the typed client; the batch and the single
answers are read raw, as their bytes are what is compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.auth import Role
from client import TrustLedger
from ledger import commands as c
from tests.e2e.support import Api, at, running_api, when
from tests.support import T0, new_trade

NOW = T0 + timedelta(days=30)
LATE_HOURS = 24 * 10
SELLERS = ["early", "quiet", "late", "ahead", "nobody"]
# as_of (None: now) and the sellers known then.
KNOWN: dict[str | None, set[str]] = {
    at(-24): set(),
    at(0): {"early", "quiet"},
    at(LATE_HOURS - 1): {"early", "quiet"},
    at(LATE_HOURS): {"early", "quiet", "late"},
    at(LATE_HOURS + 100): {"early", "quiet", "late"},
    None: {"early", "quiet", "late"},
}


def register(service: TrustLedger, member_id: str, occurred_at: datetime) -> None:
    service.register_member(c.RegisterMember(member_id=member_id, occurred_at=occurred_at))


def trade(service: TrustLedger, trade_id: str, seller: str, hours: float) -> None:
    created = new_trade(trade_id, seller=seller, item="teapot", amount_minor=12_800, at=when(hours))
    service.create_trade(created)
    service.pay_into_escrow(c.PayIntoEscrow(trade_id=trade_id, occurred_at=when(hours + 1)))


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path, now=NOW) as client:
        service = client.service
        for member in ("buyer-1", "early", "quiet"):
            register(service, member, when(0))
        trade(service, "T1", "early", 1)
        register(service, "late", when(LATE_HOURS))
        trade(service, "T2", "late", LATE_HOURS + 1)
        register(service, "ahead", NOW + timedelta(minutes=1))
        client.ranking.get_seller_penalty("early", min_position=service.written)  # caught up
        yield client


def ranking(api: Api, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {api.keys[Role.RANKING]}"}
    return api.client.request(method, path, headers=headers, **kwargs)


@pytest.mark.parametrize("as_of", list(KNOWN))
def test_each_batch_entry_is_the_single_answer(api: Api, as_of: str | None) -> None:
    query = {} if as_of is None else {"as_of": as_of}
    batch = ranking(api, "POST", "/v1/penalties/batch", json={"seller_ids": SELLERS, **query})
    assert batch.status_code == 200, batch.text
    entries = batch.json()["penalties"]
    known = set()
    for seller, entry in zip(SELLERS, entries, strict=True):
        single = ranking(api, "GET", f"/v1/sellers/{seller}/penalty", params=query)
        if single.status_code == 404:
            assert single.json()["code"] == "unknown_member"
            assert entry == {"seller_id": seller, "unknown": True}
        else:
            assert single.status_code == 200, single.text
            assert entry == single.json()
            assert single.content in batch.content  # the same bytes, stamps included
            known.add(seller)
    assert known == KNOWN[as_of]


def test_the_bytes_of_a_batch_are_its_entries_in_order(api: Api) -> None:
    batch = ranking(api, "POST", "/v1/penalties/batch", json={"seller_ids": SELLERS})
    singles = [ranking(api, "GET", f"/v1/sellers/{s}/penalty").content for s in SELLERS[:3]]
    unknown = [
        json.dumps({"seller_id": s, "unknown": True}, separators=(",", ":")) for s in SELLERS[3:]
    ]
    expected = b'{"penalties":[' + b",".join([*singles, *(u.encode() for u in unknown)]) + b"]}"
    assert batch.content == expected
