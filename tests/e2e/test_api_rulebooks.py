"""A rulebook read whole through HTTP: every threshold and window the figures
follow is the rulebook the server loaded, for any key; an unknown id is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from api.auth import Role
from client import errors
from projections.rulebook import Rulebook, builtin_rulebooks
from tests.e2e.support import Api, running_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api("memory:", tmp_path, rulebook="ebay-style") as client:
        yield client


@pytest.mark.parametrize("rulebook", builtin_rulebooks(), ids=lambda r: r.id)
def test_a_rulebook_is_served_as_loaded(api: Api, rulebook: Rulebook) -> None:
    answer = api.reader.get_rulebook(rulebook.id)

    assert (answer.id, answer.scoring_stamp) == (rulebook.id, rulebook.scoring_stamp)
    assert answer.default == (rulebook.id == "ebay-style")
    assert answer.scoring == rulebook.scoring
    assert answer.policy == rulebook.policy
    assert answer.header == rulebook.rulebook
    tiers = msgspec.to_builtins(answer.scoring.buyer_tiers.tiers)
    raw = api.get(f"/v1/rulebooks/{rulebook.id}").json()
    assert raw["scoring"]["buyer_tiers"]["tiers"] == list(tiers)


def test_every_role_may_read_a_rulebook(api: Api) -> None:
    for role in Role:
        assert api.ledger(role).get_rulebook("taobao-classic").id == "taobao-classic"


def test_an_unknown_rulebook_is_refused(api: Api) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        api.reader.get_rulebook("no-such-book")

    assert refused.value.code == "unknown_rulebook"
