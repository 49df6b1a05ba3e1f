"""Signed tree heads for the verifiable (RFC 9162-style Merkle) event log.

A tree head commits the ledger to the first ``tree_size`` events: anyone
holding the public key can check that the operator vouched for this root at
this time, and two different signed roots for one size prove misbehaviour.

The Ed25519 signature covers exactly these bytes, with no field separators
because every field has a fixed width (so no two heads share a message)::

    b"trustledger-tree-head-v1\\x00"   domain tag, 25 bytes
    tree_size                          u64 big-endian
    timestamp                          u64 big-endian, microseconds since
                                       1970-01-01T00:00:00Z (not before it)
    root_hash                          32 bytes, SHA-256 Merkle root

``key_id`` is not signed: it is the first 16 hex characters of SHA-256 over
the raw 32-byte public key, a hint telling a witness which key to use.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DOMAIN_TAG = b"trustledger-tree-head-v1\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TreeHeadError(ValueError):
    """A tree head, its JSON or a key that cannot be used."""


def _check(tree_size: int, root_hash: bytes, timestamp: datetime) -> None:
    """Refuse values the fixed-width message cannot encode unambiguously."""
    if not 0 <= tree_size < 2**64:
        raise TreeHeadError(f"tree_size must fit in an unsigned 64-bit integer, got {tree_size}")
    if len(root_hash) != 32:
        raise TreeHeadError(f"root_hash must be 32 bytes, got {len(root_hash)}")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise TreeHeadError("timestamp must be timezone-aware")
    if timestamp < _EPOCH:
        raise TreeHeadError("timestamp must not be before the Unix epoch")


def signed_message(tree_size: int, root_hash: bytes, timestamp: datetime) -> bytes:
    """The exact bytes the signature covers (see the module docstring)."""
    _check(tree_size, root_hash, timestamp)
    micros = (timestamp - _EPOCH) // timedelta(microseconds=1)
    return DOMAIN_TAG + tree_size.to_bytes(8, "big") + micros.to_bytes(8, "big") + root_hash


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a key, so heads name their signer without the whole key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class TreeHead(msgspec.Struct, frozen=True):
    """A signed commitment to the log's first ``tree_size`` events."""

    tree_size: int
    root_hash: bytes
    # Aware only (also checked in __post_init__); says date-time in the API's schema.
    timestamp: Annotated[datetime, msgspec.Meta(tz=True)]
    signature: bytes
    key_id: str

    def __post_init__(self) -> None:
        """Validate on construction and on decoding, so no unusable head exists."""
        _check(self.tree_size, self.root_hash, self.timestamp)


_decoder = msgspec.json.Decoder(TreeHead)


def to_json(head: TreeHead) -> bytes:
    """One line of JSON; bytes fields are base64, the timestamp RFC 3339."""
    return msgspec.json.encode(head)


def from_json(data: bytes) -> TreeHead:
    """Decode a head, turning every kind of bad input into one error type."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as error:
        raise TreeHeadError(f"invalid tree head JSON: {error}") from error


class TreeHeadSigner:
    """Signs tree heads with the log operator's Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id_of(private_key.public_key())

    @classmethod
    def generate(cls) -> TreeHeadSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: Path) -> TreeHeadSigner:
        """Load an unencrypted PKCS#8 PEM key; refuse other key types early."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as error:
            raise TreeHeadError(f"cannot load private key from {path}: {error}") from error
        if not isinstance(key, Ed25519PrivateKey):
            raise TreeHeadError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    def private_key_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, tree_size: int, root_hash: bytes, timestamp: datetime) -> TreeHead:
        """Sign a head; the timestamp is stored in UTC so its JSON form is canonical."""
        message = signed_message(tree_size, root_hash, timestamp)
        return TreeHead(
            tree_size=tree_size,
            root_hash=root_hash,
            timestamp=timestamp.astimezone(UTC),
            signature=self._key.sign(message),
            key_id=self.key_id,
        )


def write_new_key(path: Path) -> TreeHeadSigner:
    """Create a new key file readable only by its owner; never replace a key."""
    signer = TreeHeadSigner.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(signer.private_key_pem())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return signer


class TreeHeadVerifier:
    """Checks tree heads against one operator public key."""

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self._key = public_key
        self.key_id = key_id_of(public_key)

    @classmethod
    def from_pem(cls, pem: bytes) -> TreeHeadVerifier:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as error:
            raise TreeHeadError(f"cannot load public key: {error}") from error
        if not isinstance(key, Ed25519PublicKey):
            raise TreeHeadError("not an Ed25519 public key")
        return cls(key)

    def verify(self, head: TreeHead) -> bool:
        """True only for a valid signature by this key; never raises on a forgery."""
        if head.key_id != self.key_id:
            return False
        message = signed_message(head.tree_size, head.root_hash, head.timestamp)
        try:
            self._key.verify(head.signature, message)
        except InvalidSignature:
            return False
        return True
