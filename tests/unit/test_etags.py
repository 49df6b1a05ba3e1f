"""Which If-None-Match values name an answer."""

from __future__ import annotations

from api.etags import _matches, etag_of


def test_if_none_match_names_an_answer_by_its_tag_weak_or_strong_or_by_star() -> None:
    tag = etag_of(b'{"score":1}')
    assert tag.startswith(b'"') and tag != etag_of(b'{"score":2}')
    assert _matches(tag, tag)
    assert _matches(tag, b'"other", W/' + tag)
    assert _matches(tag, b"*")
    assert not _matches(tag, b'"other"')
