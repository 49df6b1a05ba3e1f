"""`trustledger keygen` and `trustledger audit pull-tree-head`: the operator's
signing key, and an auditor's witness file of the tree heads it has seen.

A witness appends every head it pulls to a JSON-lines file::

    trustledger audit pull-tree-head --url https://ledger.example --check heads.jsonl >> heads.jsonl

With ``--check``, the new head is accepted only if its signature verifies and
the server proves (RFC 9162 consistency proof, checked here) that it extends
the latest head already in the file: a server that rewrote history cannot
produce that proof. ``trustledger verify --tree-heads heads.jsonl`` later
checks the whole store against every head in the file.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import click
import msgspec

from client.errors import TrustLedgerError
from client.sync import TrustLedger
from ledger import merkle
from ledger.tree_head import (
    TreeHead,
    TreeHeadError,
    TreeHeadVerifier,
    from_json,
    to_json,
    write_new_key,
)

API_KEY_SETTING = "TRUSTLEDGER_API_KEY"
HTTP_TIMEOUT_SECONDS = 30.0
WITNESS_LINES_MAX = 10_000_000


def register(group: click.Group) -> None:
    group.add_command(keygen)
    group.add_command(audit)


_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command(help="make an Ed25519 key that signs tree heads")
@click.argument("path", type=_FILE, help="where to write the private key (never replaced)")
def keygen(path: Path) -> int:
    return _keygen(path)


@click.group(help="an auditor's tools against a running server")
def audit() -> None:
    pass


@audit.command("pull-tree-head", help="print the server's signed tree head as one JSON line")
@click.option("--url", required=True, help="the server's base URL")
@click.option("--key", default=None, help=f"an auditor API key (default: ${API_KEY_SETTING})")
@click.option(
    "--check",
    type=_FILE,
    default=None,
    help="a witness file: accept the head only if it extends the latest head there",
)
@click.option(
    "--public-key", type=_FILE, default=None, help="the operator's public key (PEM) to trust"
)
def pull_tree_head(url: str, key: str | None, check: Path | None, public_key: Path | None) -> int:
    return _pull(url, key, check, public_key)


def _keygen(path: Path) -> int:
    try:
        signer = write_new_key(path)
    except FileExistsError:
        print(f"{path} exists; a signing key is never replaced", file=sys.stderr)
        return 2
    sys.stdout.write(signer.public_key_pem().decode())
    print(
        f"key {signer.key_id} written to {path} (mode 0600); set TRUSTLEDGER_TREE_HEAD_KEY={path}"
        " and give auditors the public key above",
        file=sys.stderr,
    )
    return 0


def _pull(url: str, given_key: str | None, check: Path | None, public_key: Path | None) -> int:
    key = given_key or os.environ.get(API_KEY_SETTING, "")
    if not key:
        print(f"give --key or set {API_KEY_SETTING}", file=sys.stderr)
        return 2
    try:
        with TrustLedger(url, key, timeout=HTTP_TIMEOUT_SECONDS) as server:
            head = server.get_tree_head()
            verifier = _verifier(server, public_key)
            if not verifier.verify(head):
                print("refused: the tree head's signature does not verify", file=sys.stderr)
                return 1
            if check is not None:
                problem = _extends_latest(server, head, _latest(check))
                if problem:
                    print(f"refused: {problem}", file=sys.stderr)
                    return 1
    except (TrustLedgerError, TreeHeadError, msgspec.DecodeError, OSError) as error:
        print(f"cannot pull a tree head: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(to_json(head).decode() + "\n")
    return 0


def _verifier(server: TrustLedger, trusted: Path | None) -> TreeHeadVerifier:
    """The auditor's own copy of the key if given; else the one the server serves."""
    if trusted is not None:
        return TreeHeadVerifier.from_pem(trusted.read_bytes())
    return TreeHeadVerifier.from_pem(server.get_public_key().public_key_pem.encode())


def _latest(witness: Path) -> TreeHead | None:
    """The largest head in a witness file (None: no file or no heads yet)."""
    if not witness.exists():
        return None
    latest: TreeHead | None = None
    with witness.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if number > WITNESS_LINES_MAX:
                raise TreeHeadError(f"{witness} has over {WITNESS_LINES_MAX:,} lines")
            if not line.strip():
                continue
            head = from_json(line)
            if latest is None or head.tree_size >= latest.tree_size:
                latest = head
    return latest


def _extends_latest(server: TrustLedger, head: TreeHead, latest: TreeHead | None) -> str:
    """Why the new head does not extend the latest witnessed one ('' when it does)."""
    if latest is None:
        return ""
    if head.tree_size < latest.tree_size:
        return f"the log shrank from {latest.tree_size} to {head.tree_size} events"
    if head.tree_size == latest.tree_size:
        same = head.root_hash == latest.root_hash
        return "" if same else f"a different root for the same {head.tree_size} events"
    proof = server.get_consistency_proof(latest.tree_size, head.tree_size)
    if merkle.verify_consistency(
        latest.tree_size, head.tree_size, latest.root_hash, head.root_hash, proof.proof
    ):
        return ""
    return (
        f"the server cannot prove the log of {head.tree_size} events extends the witnessed "
        f"log of {latest.tree_size} (root {base64.b64encode(latest.root_hash).decode()})"
    )
