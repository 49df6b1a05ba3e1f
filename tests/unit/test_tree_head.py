"""Signed tree heads: signatures bind every field, JSON round-trips, keys stay private."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.tree_head import (
    DOMAIN_TAG,
    TreeHead,
    TreeHeadError,
    TreeHeadSigner,
    TreeHeadVerifier,
    from_json,
    signed_message,
    to_json,
    write_new_key,
)

SIGNER = TreeHeadSigner.generate()
VERIFIER = TreeHeadVerifier.from_pem(SIGNER.public_key_pem())
ROOT = bytes(range(32))
AT = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)

sizes = st.integers(min_value=0, max_value=2**64 - 1)
roots = st.binary(min_size=32, max_size=32)
times = st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC))


def test_sign_verify_round_trip() -> None:
    head = SIGNER.sign(7, ROOT, AT)
    assert VERIFIER.verify(head)
    assert head.key_id == SIGNER.key_id == VERIFIER.key_id
    assert len(head.key_id) == 16


def test_signed_message_layout() -> None:
    message = signed_message(1, ROOT, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert message == DOMAIN_TAG + (1).to_bytes(8, "big") + (10**6).to_bytes(8, "big") + ROOT
    assert len(message) == 25 + 8 + 8 + 32


def test_offset_timestamp_is_stored_in_utc() -> None:
    local = AT.astimezone(timezone(timedelta(hours=5)))
    head = SIGNER.sign(1, ROOT, local)
    assert head.timestamp.utcoffset() == timedelta(0)
    assert head.timestamp == AT
    assert VERIFIER.verify(head)


@given(sizes, roots, times)
def test_json_round_trip(tree_size: int, root: bytes, at: datetime) -> None:
    head = SIGNER.sign(tree_size, root, at)
    data = to_json(head)
    assert b"\n" not in data
    decoded = from_json(data)
    assert decoded == head
    assert VERIFIER.verify(decoded)


@given(sizes, roots, times)
def test_any_change_breaks_the_signature(tree_size: int, root: bytes, at: datetime) -> None:
    head = SIGNER.sign(tree_size, root, at)
    flipped = bytes([root[0] ^ 1]) + root[1:]
    signature = bytes([head.signature[0] ^ 1]) + head.signature[1:]
    other_size = tree_size + 1 if tree_size < 2**64 - 1 else tree_size - 1
    other_time = (
        at + timedelta(microseconds=1) if at.year < 9999 else at - timedelta(microseconds=1)
    )
    for changed in (
        msgspec.structs.replace(head, tree_size=other_size),
        msgspec.structs.replace(head, root_hash=flipped),
        msgspec.structs.replace(head, timestamp=other_time),
        msgspec.structs.replace(head, signature=signature),
        msgspec.structs.replace(head, signature=head.signature[:-1]),
    ):
        assert not VERIFIER.verify(changed)


def test_head_from_another_key_fails() -> None:
    other = TreeHeadSigner.generate()
    head = other.sign(3, ROOT, AT)
    assert not VERIFIER.verify(head)
    # Even a claimed key_id of the expected signer does not help a forger.
    assert not VERIFIER.verify(msgspec.structs.replace(head, key_id=SIGNER.key_id))


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "tree-head.key"
    signer = write_new_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = TreeHeadSigner.from_file(path)
    assert loaded.key_id == signer.key_id
    assert TreeHeadVerifier.from_pem(signer.public_key_pem()).verify(loaded.sign(1, ROOT, AT))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_new_key(path)
    assert path.read_bytes() == before


def test_bad_key_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.key"
    path.write_bytes(b"not a key")
    with pytest.raises(TreeHeadError):
        TreeHeadSigner.from_file(path)
    with pytest.raises(TreeHeadError):
        TreeHeadVerifier.from_pem(b"not a key")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"[]",
        b'{"tree_size": 1}',
        b'{"tree_size": -1, "root_hash": "", "timestamp": "2025-01-01T00:00:00Z",'
        b' "signature": "", "key_id": ""}',
        b'{"tree_size": 1, "root_hash": "AAAA", "timestamp": "2025-01-01T00:00:00Z",'
        b' "signature": "", "key_id": ""}',
        b'{"tree_size": 1, "root_hash": "!!", "timestamp": "2025-01-01T00:00:00Z",'
        b' "signature": "", "key_id": ""}',
    ],
)
def test_from_json_garbage_raises(data: bytes) -> None:
    with pytest.raises(TreeHeadError):
        from_json(data)


def test_naive_timestamp_refused() -> None:
    naive = datetime(2025, 1, 1)
    with pytest.raises(TreeHeadError, match="timezone-aware"):
        SIGNER.sign(1, ROOT, naive)
    with pytest.raises(TreeHeadError, match="timezone-aware"):
        TreeHead(tree_size=1, root_hash=ROOT, timestamp=naive, signature=b"", key_id="")
    fields = msgspec.to_builtins(SIGNER.sign(1, ROOT, AT))
    data = msgspec.json.encode({**fields, "timestamp": "2025-01-01T00:00:00"})
    with pytest.raises(TreeHeadError):
        from_json(data)


@pytest.mark.parametrize(
    ("tree_size", "root", "at"),
    [
        (-1, ROOT, AT),
        (2**64, ROOT, AT),
        (1, ROOT[:31], AT),
        (1, ROOT, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_unencodable_fields_refused(tree_size: int, root: bytes, at: datetime) -> None:
    with pytest.raises(TreeHeadError):
        SIGNER.sign(tree_size, root, at)
