"""Rulebooks are data: both built-ins load, and a bad file is refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.policy import RulebookError, builtin_rulebook_ids, load_policy, rulebook_bytes
from projections.rulebook import load_rulebook, parse_rulebook

TAOBAO = rulebook_bytes("taobao-classic")


def test_both_built_in_rulebooks_load_with_their_stamps() -> None:
    assert builtin_rulebook_ids() == ["ebay-style", "taobao-classic"]
    taobao, ebay = load_rulebook("taobao-classic"), load_rulebook("ebay-style")
    assert taobao.scoring_stamp == "taobao-classic@1"
    assert ebay.scoring_stamp == "ebay-style@1"
    assert load_policy("taobao-classic").stamp == "taobao-classic@1"
    assert taobao.scoring.timezone == "Asia/Shanghai"
    assert ebay.scoring.timezone == "America/Los_Angeles"
    assert ebay.scoring.credit.cap_period == "week_monday"
    assert taobao.scoring.seller_level is None
    assert ebay.scoring.seller_level is not None


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (b"cap_min = -6", b"cap_min = 6", "$.scoring.credit"),
        (b"window_days = 15", b'window_days = "15"', "$.policy.rating.window_days"),
        (b"return_ship_days = 7", b"return_ship_days = 0", "$.policy.refund.return_ship_days"),
        (b'timezone = "Asia/Shanghai"', b'timezone = "Mars/Olympus"', "$.scoring"),
        (b"min_denominator = 20", b"min_denominatr = 20", "$.scoring.rates"),
        (b"index = 3\n", b"index = 4\n", "$.scoring"),
        (b'"same_item_14d"', b'"same_item_7d"', "$.scoring.credit.exclusions"),
    ],
)
def test_a_bad_rulebook_is_refused_with_a_message_naming_the_field(
    old: bytes, new: bytes, field: str
) -> None:
    assert old in TAOBAO
    with pytest.raises(RulebookError) as refused:
        parse_rulebook(TAOBAO.replace(old, new, 1), source="broken.toml")
    assert field in str(refused.value)
    assert "broken.toml" in str(refused.value)


def test_a_rulebook_file_on_disk_is_loaded_by_path(tmp_path: Path) -> None:
    path = tmp_path / "stricter.toml"
    path.write_bytes(
        TAOBAO.replace(b"cap_max = 6", b"cap_max = 3").replace(
            b'id = "taobao-classic"', b'id = "stricter"'
        )
    )
    rulebook = load_rulebook(str(path))
    assert rulebook.scoring.credit.cap_max == 3
    assert rulebook.scoring_stamp == "stricter@1"


def test_an_unknown_rulebook_is_refused() -> None:
    with pytest.raises(RulebookError, match="unknown rulebook"):
        load_rulebook("amazon-2030")
