"""An outside auditor's verifier, written from docs/audit.md alone, run against
a live server: it uses Python's standard library and an Ed25519 check, and
nothing of TrustLedger's code, so a gap in the document fails here."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.auth import Role
from tests.e2e.support import Api, at, running_api

# --- The verifier (docs/audit.md, sections 1-6) ----------------------------------------

DOMAIN_TAG = b"trustledger-tree-head-v1\x00"
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
BODY_MEMBER = b',"body":'


def leaf_of_line(line: bytes) -> tuple[int, bytes]:
    """(position, leaf hash) of one NDJSON line of the log (sections 1 and 2)."""
    fields = json.loads(line)
    start = line.index(BODY_MEMBER) + len(BODY_MEMBER)
    body = line[start : line.rstrip(b"\n").rindex(b"}")]
    topic = fields["topic"].encode("utf-8")
    canonical = (
        b"\x01"
        + struct.pack(">Q", fields["position"])
        + uuid.UUID(fields["originator_id"]).bytes
        + struct.pack(">Q", fields["originator_version"])
        + struct.pack(">I", len(topic))
        + topic
        + struct.pack(">I", len(body))
        + body
    )
    return fields["position"], hashlib.sha256(b"\x00" + canonical).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaves: list[bytes]) -> bytes:
    """RFC 9162's Merkle Tree Hash (section 3)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(root_of(leaves[:k]), root_of(leaves[k:]))


def micros_of(timestamp: str) -> int:
    """An RFC 3339 UTC time as microseconds since the Unix epoch (section 4)."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def raw_public_key(pem: str) -> bytes:
    der = base64.b64decode("".join(line for line in pem.splitlines() if "-----" not in line))
    if len(der) != 44 or not der.startswith(SPKI_PREFIX):
        raise ValueError("not an Ed25519 SubjectPublicKeyInfo")
    return der[-32:]


def key_id_of(raw_key: bytes) -> str:
    return hashlib.sha256(raw_key).hexdigest()[:16]


def head_is_signed(head: dict[str, Any], raw_key: bytes) -> bool:
    """The head's signature over the 73-byte message of section 4."""
    message = (
        DOMAIN_TAG
        + struct.pack(">Q", head["tree_size"])
        + struct.pack(">Q", micros_of(head["timestamp"]))
        + base64.b64decode(head["root_hash"])
    )
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(
            base64.b64decode(head["signature"]), message
        )
    except InvalidSignature:
        return False
    return bool(head["key_id"] == key_id_of(raw_key))


def _shift_while(fn: int, sn: int, keep_going: bool) -> tuple[int, int]:
    while keep_going and fn % 2 == 0 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def inclusion_holds(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 (section 5)."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            fn, sn = _shift_while(fn, sn, fn % 2 == 0)
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def consistency_holds(
    first: int, second: int, proof: list[bytes], first_root: bytes, second_root: bytes
) -> bool:
    """RFC 9162 §2.1.4.2 (section 6)."""
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if first & (first - 1) == 0:
        proof = [first_root, *proof]
    if not proof:
        return False
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            fn, sn = _shift_while(fn, sn, fn % 2 == 0)
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


# --- Against a live server --------------------------------------------------------------


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path) as client:
        yield client


def story(api: Api, n: int) -> None:
    for member in (f"b-{n}", f"s-{n}"):
        api.ok("/v1/members", {"member_id": member, "occurred_at": at(0)})
    trade = {
        "trade_id": f"t-{n}",
        "buyer_id": f"b-{n}",
        "seller_id": f"s-{n}",
        "item_id": f"i-{n}",
        "amount_minor": 12_500,
        "currency": "CNY",
        "goods_kind": "physical",
        "shipping": "express",
        "occurred_at": at(1),
    }
    api.ok("/v1/trades", trade)
    api.ok(f"/v1/trades/t-{n}/payment", {"occurred_at": at(2)})
    api.ok(f"/v1/trades/t-{n}/shipment", {"occurred_at": at(3)})


def audited(api: Api, path: str, **params: Any) -> Any:
    response = api.get(path, role=Role.AUDITOR, **params)
    assert response.status_code == 200, response.text
    return response


def log_lines(api: Api, page: int) -> list[bytes]:
    """The whole log, ``page`` lines at a time, paged as section 1 says."""
    lines: list[bytes] = []
    after = 0
    while True:
        body = audited(api, "/v1/log", after=after, limit=page).content
        got = body.splitlines(keepends=True)
        lines += got
        if len(got) < page:
            return lines
        after = json.loads(got[-1])["position"]


def signed_head(api: Api, raw_key: bytes) -> dict[str, Any]:
    head: dict[str, Any] = json.loads(audited(api, "/v1/audit/tree-head").content)
    assert head_is_signed(head, raw_key)
    return head


def operator_key(api: Api) -> bytes:
    answer = audited(api, "/v1/audit/public-key").json()
    raw = raw_public_key(answer["public_key_pem"])
    assert answer["key_id"] == key_id_of(raw)
    return raw


def test_the_whole_log_hashes_to_the_signed_root_and_every_event_is_proved_in_it(
    api: Api,
) -> None:
    for n in range(3):
        story(api, 20_001 + n)
    raw_key = operator_key(api)
    head = signed_head(api, raw_key)
    leaves = [leaf_of_line(line) for line in log_lines(api, page=4)]
    assert head["tree_size"] == len(leaves) == 15
    assert root_of([leaf for _, leaf in leaves]) == base64.b64decode(head["root_hash"])
    for index, (position, leaf) in enumerate(leaves):
        proof = audited(
            api, "/v1/audit/inclusion", position=position, tree_size=head["tree_size"]
        ).json()
        assert (proof["position"], proof["leaf_index"]) == (position, index)
        assert base64.b64decode(proof["leaf_hash"]) == leaf
        hashes = [base64.b64decode(h) for h in proof["proof"]]
        assert inclusion_holds(
            leaf, index, head["tree_size"], hashes, base64.b64decode(head["root_hash"])
        )


def test_a_later_head_is_proved_consistent_with_each_earlier_one(api: Api) -> None:
    raw_key = operator_key(api)
    heads = []
    for n in range(5):
        story(api, 30_001 + n)
        heads.append(signed_head(api, raw_key))
    latest = heads[-1]
    for earlier in heads:
        proof = audited(
            api, "/v1/audit/consistency", first=earlier["tree_size"], second=latest["tree_size"]
        ).json()
        assert consistency_holds(
            earlier["tree_size"],
            latest["tree_size"],
            [base64.b64decode(h) for h in proof["proof"]],
            base64.b64decode(earlier["root_hash"]),
            base64.b64decode(latest["root_hash"]),
        )


def test_a_changed_byte_a_changed_proof_or_a_changed_head_is_caught(api: Api) -> None:
    story(api, 40_001)
    raw_key = operator_key(api)
    head = signed_head(api, raw_key)
    root = base64.b64decode(head["root_hash"])
    lines = log_lines(api, page=1_000)
    # The copy of occurred_at before the body is a convenience, not hashed;
    # one more byte inside the stored body changes the leaf and the root.
    convenience = lines[2].replace(b'"occurred_at":"', b'"occurred_at": "', 1)
    assert leaf_of_line(convenience) == leaf_of_line(lines[2])
    head_part, member, stored = lines[2].rpartition(b'"occurred_at":"')
    flipped = head_part + member.replace(b":", b": ") + stored
    assert flipped.index(b'"occurred_at": "') > flipped.index(BODY_MEMBER)
    tampered = [leaf_of_line(line)[1] for line in [*lines[:2], flipped, *lines[3:]]]
    assert root_of(tampered) != root
    position, leaf = leaf_of_line(lines[2])
    proof = audited(api, "/v1/audit/inclusion", position=position, tree_size=5).json()
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    assert inclusion_holds(leaf, 2, 5, hashes, root)
    assert not inclusion_holds(leaf, 2, 5, [hashes[0][::-1], *hashes[1:]], root)
    assert not inclusion_holds(leaf, 3, 5, hashes, root)
    assert not head_is_signed({**head, "tree_size": head["tree_size"] + 1}, raw_key)
    assert not head_is_signed({**head, "key_id": "0" * 16}, raw_key)


def test_the_documents_worked_figures_hold() -> None:
    doc = Path(__file__).parents[2] / "docs" / "audit.md"
    text = doc.read_text()
    assert "1,796,578,280,104,522" in text
    assert micros_of("2026-12-06T17:31:20.104522Z") == 1_796_578_280_104_522
    assert micros_of("2026-12-06T17:26:17Z") % 1_000_000 == 0
    assert len(DOMAIN_TAG) + 8 + 8 + 32 == 73 and "73 bytes" in text
