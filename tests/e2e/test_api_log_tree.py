"""End to end through HTTP: signed tree heads, inclusion and consistency proofs,
the public key, and a witness pulling heads with ``trustledger audit``.

Auditors and the platform service call through the typed client; the roles'
refusals are checked over raw HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.auth import KeyRing, Role
from api.main import create_app
from api.settings import Settings
from client import NotFound, TrustLedger, Unavailable
from ledger import commands as c
from ledger import merkle
from ledger.tree_head import TreeHeadVerifier, from_json, to_json, write_new_key
from tests.e2e.support import Api, in_process, running_api, when
from tools.cli import main


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path) as client:
        yield client


def register(ledger: TrustLedger, *members: str) -> list[int]:
    """Members registered by the platform service; the positions written."""
    positions: list[int] = []
    for member in members:
        command = c.RegisterMember(member_id=member, occurred_at=when(0))
        positions += ledger.register_member(command).positions
    return positions


def test_a_signed_head_covers_every_event_and_proves_each_one_in_it(api: Api) -> None:
    positions = register(api.service, "m-1", "m-2", "m-3")
    auditor = api.auditor
    key = auditor.get_public_key()
    verifier = TreeHeadVerifier.from_pem(key.public_key_pem.encode())
    head = auditor.get_tree_head()
    assert verifier.verify(head)
    assert head.key_id == key.key_id
    assert head.tree_size == len(positions)
    for index, position in enumerate(positions):
        proof = auditor.get_inclusion_proof(position, head.tree_size)
        assert proof.leaf_index == index
        assert merkle.verify_inclusion(
            proof.leaf_hash, index, head.tree_size, proof.proof, head.root_hash
        )


def test_a_later_head_is_proved_to_extend_an_earlier_one(api: Api) -> None:
    auditor = api.auditor
    register(api.service, "m-1", "m-2")
    first = auditor.get_tree_head()
    again = auditor.get_tree_head()
    assert again == first  # nothing new: the same head, not a new row
    register(api.service, "m-3", "m-4", "m-5")
    second = auditor.get_tree_head()
    assert second.tree_size == first.tree_size + 3
    hashes = auditor.get_consistency_proof(first.tree_size, second.tree_size).proof
    assert merkle.verify_consistency(
        first.tree_size, second.tree_size, first.root_hash, second.root_hash, hashes
    )
    assert not merkle.verify_consistency(
        first.tree_size, second.tree_size, second.root_hash, second.root_hash, hashes
    )


def test_the_heads_kept_are_listed_newest_first_a_page_at_a_time(api: Api) -> None:
    auditor = api.auditor
    heads = []
    for member in ("m-1", "m-2", "m-3"):
        register(api.service, member)
        heads.append(auditor.get_tree_head())
    verifier = TreeHeadVerifier.from_pem(auditor.get_public_key().public_key_pem.encode())

    first = auditor.list_tree_heads(limit=2)
    assert first.next_cursor is not None
    rest = auditor.list_tree_heads(limit=2, cursor=first.next_cursor)
    raw = api.get("/v1/audit/tree-heads", role=Role.AUDITOR, limit=2)

    assert [*first.heads, *rest.heads] == heads[::-1]
    assert rest.next_cursor is None
    assert all(verifier.verify(head) for head in first.heads + rest.heads)
    assert raw.headers["Link"] == (
        f'</v1/audit/tree-heads?cursor={first.next_cursor}&limit=2>; rel="next"'
    )
    # Any two of them are consistent: the later tree extends the earlier one.
    older, newer = rest.heads[0], first.heads[0]
    hashes = auditor.get_consistency_proof(older.tree_size, newer.tree_size).proof
    assert merkle.verify_consistency(
        older.tree_size, newer.tree_size, older.root_hash, newer.root_hash, hashes
    )
    refused = api.get("/v1/audit/tree-heads", role=Role.AUDITOR, cursor="bm90LWEtaGVhZA")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_cursor")


def test_proofs_refuse_what_the_tree_does_not_hold(api: Api) -> None:
    auditor = api.auditor
    register(api.service, "m-1")
    head = auditor.get_tree_head()
    with pytest.raises(NotFound) as beyond:
        auditor.get_inclusion_proof(1, head.tree_size + 5)
    assert beyond.value.code == "unknown_tree_size"
    with pytest.raises(NotFound) as nowhere:
        auditor.get_inclusion_proof(999, head.tree_size)
    assert nowhere.value.code == "unknown_position"
    with pytest.raises(NotFound):
        auditor.get_consistency_proof(1, 0)


def test_only_auditors_see_the_tree(api: Api) -> None:
    # Raw: the status each role's key is answered with is the subject.
    for role in (Role.SERVICE, Role.RANKING, Role.READER):
        assert api.get("/v1/audit/tree-head", role=role).status_code == 403
        assert api.get("/v1/audit/tree-heads", role=role).status_code == 403


def test_without_a_signing_key_heads_are_refused_not_signed(tmp_path: Path) -> None:
    with running_api("memory:", tmp_path, tree_head_key=False) as api:
        with pytest.raises(Unavailable) as unsigned:
            api.auditor.get_tree_head()
        assert (unsigned.value.status, unsigned.value.code) == (503, "signing_key_missing")
        with pytest.raises(Unavailable) as keyless:
            api.auditor.get_public_key()
        assert keyless.value.status == 503


# --- A witness against a live server ---------------------------------------------------


class Live(msgspec.Struct):
    url: str
    key: str  # an auditor's
    service_key: str
    public_key: Path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    ring = KeyRing([])
    auditor = ring.add(Role.AUDITOR)
    service = ring.add(Role.SERVICE)
    ring.save(tmp_path / "keys.json")
    signer = write_new_key(tmp_path / "tree-head.pem")
    public_key = tmp_path / "public.pem"
    public_key.write_bytes(signer.public_key_pem())
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        keys_file=tmp_path / "keys.json",
        deadline_worker=False,
        tree_head_key=tmp_path / "tree-head.pem",
    )
    app = create_app(settings, background=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Live(f"http://127.0.0.1:{port}", auditor, service, public_key)
    server.should_exit = True
    thread.join(timeout=10)


def pull(live: Live, witness: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(
        [
            "audit",
            "pull-tree-head",
            "--url",
            live.url,
            "--key",
            live.key,
            "--public-key",
            str(live.public_key),
            "--check",
            str(witness),
        ]
    )
    out = capsys.readouterr().out
    if code == 0:
        with witness.open("a") as file:
            file.write(out)
    return code, out


def append_member(live: Live, member: str) -> None:
    with TrustLedger(live.url, live.service_key, timeout=30) as service:
        appended = service.register_member(
            c.RegisterMember(member_id=member, occurred_at=when(0)), idempotency_key=f"k-{member}"
        )
    assert not appended.replayed


def test_a_witness_accepts_heads_that_extend_what_it_saw(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witness = tmp_path / "heads.jsonl"
    append_member(live, "m-1")
    assert pull(live, witness, capsys)[0] == 0
    append_member(live, "m-2")
    append_member(live, "m-3")
    assert pull(live, witness, capsys)[0] == 0
    heads = [from_json(line.encode()) for line in witness.read_text().splitlines()]
    assert [h.tree_size for h in heads] == [1, 3]


def test_a_witness_refuses_a_head_that_rewrote_what_it_saw(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witness = tmp_path / "heads.jsonl"
    append_member(live, "m-1")
    append_member(live, "m-2")
    assert pull(live, witness, capsys)[0] == 0
    # The witness's record is of another history than the server's: as if the
    # operator rewrote the first events after the witness saw them.
    seen = from_json(witness.read_text().strip().encode())
    forged = seen.__class__(
        tree_size=seen.tree_size,
        root_hash=bytes(32),
        timestamp=seen.timestamp,
        signature=seen.signature,
        key_id=seen.key_id,
    )
    witness.write_bytes(to_json(forged) + b"\n")
    append_member(live, "m-3")
    code, out = pull(live, witness, capsys)
    assert code == 1
    assert out == ""


def test_a_witness_that_cannot_pull_says_why_and_writes_nothing(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witness = tmp_path / "heads.jsonl"
    append_member(live, "m-1")
    code = main(["audit", "pull-tree-head", "--url", live.url, "--key", "tl_0_not-a-key"])
    assert code == 2
    said = capsys.readouterr()
    assert (said.out, "cannot pull a tree head" in said.err) == ("", True)
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{unused.getsockname()[1]}"
    assert pull(Live(nowhere, live.key, live.service_key, live.public_key), witness, capsys)[0] == 2
    assert not witness.exists()


def test_keygen_never_replaces_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "signing.pem"
    assert main(["keygen", str(path)]) == 0
    assert "BEGIN PUBLIC KEY" in capsys.readouterr().out
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_bytes()
    assert main(["keygen", str(path)]) == 2
    assert path.read_bytes() == first


def test_heads_are_signed_periodically_as_the_log_grows(tmp_path: Path) -> None:
    write_new_key(tmp_path / "tree-head.pem")
    ring = KeyRing([])
    service_key = ring.add(Role.SERVICE)
    ring.save(tmp_path / "keys.json")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        keys_file=tmp_path / "keys.json",
        deadline_worker=False,
        tree_head_key=tmp_path / "tree-head.pem",
        tree_head_interval_seconds=0.05,
        projection_poll_seconds=0.05,
    )
    app = create_app(settings)
    with TestClient(app) as client, in_process(client, service_key) as service:
        service.register_member(c.RegisterMember(member_id="m-1", occurred_at=when(0)))
        tree = app.state.service.tree
        deadline = time.monotonic() + 10
        # A head of the empty log may come first; one covering the append must follow.
        head = tree.latest_head()
        while (head is None or head.tree_size < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
            head = tree.latest_head()
        assert head is not None and head.tree_size == 1
