"""The codec: every event survives the trip to bytes and back, and bad rows are refused.

Strategies are derived from each event's msgspec fields, so a new event type or
a new field is covered (or, for a field type with no strategy here, fails
loudly) without editing this file.
"""

from __future__ import annotations

import re
import types
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import events as ev
from ledger.codec import TOPICS, MsgspecMapper, decode_event, encode_event, stored_rows
from ledger.events import EVENT_TYPES, Event, topic_of

TOPIC_PATTERN = re.compile(r"^trustledger\.[a-z_]+(\.[a-z_]+)*\.v[1-9][0-9]*$")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _type_id(event_type: type[Event]) -> str:
    return event_type.__name__


# --- Strategies from msgspec field types ------------------------------------------


def _annotated(base: Any, metas: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    bounds: dict[str, Any] = {}
    for meta in metas:
        if isinstance(meta, msgspec.Meta):
            for name in ("ge", "le", "gt", "lt", "min_length", "max_length"):
                value = getattr(meta, name)
                if value is not None:
                    bounds[name] = value
    if base is int:
        low = bounds.get("ge", bounds["gt"] + 1 if "gt" in bounds else INT64_MIN)
        high = bounds.get("le", bounds["lt"] - 1 if "lt" in bounds else INT64_MAX)
        return st.integers(low, high)
    if base is str:
        return st.text(min_size=bounds.get("min_length", 0), max_size=bounds.get("max_length", 40))
    return strategy_for(base)


def _struct(struct_type: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in msgspec.structs.fields(struct_type):
        target = required if field.required else optional
        target[field.name] = strategy_for(field.type)
    return st.fixed_dictionaries(required, optional=optional).map(
        lambda kwargs: struct_type(**kwargs)
    )


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for one msgspec field type; unknown types fail loudly."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metas = get_args(tp)
        return _annotated(base, tuple(metas))
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin in (Union, types.UnionType):
        return st.one_of(
            *(st.none() if arg is type(None) else strategy_for(arg) for arg in get_args(tp))
        )
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), max_size=5).map(tuple)
        return st.tuples(*(strategy_for(arg) for arg in args))
    if tp is datetime:
        return st.datetimes(
            min_value=datetime(1970, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.just(UTC),
        )
    if tp is UUID:
        return st.uuids()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(INT64_MIN, INT64_MAX)
    if tp is str:
        return st.text(max_size=40)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _struct(tp)
    raise TypeError(f"no strategy for field type {tp!r}: add one to tests/test_codec.py")


EVENT_STRATEGIES: dict[type[Event], st.SearchStrategy[Any]] = {t: _struct(t) for t in EVENT_TYPES}


def for_every_event_type(test: Callable[..., None]) -> Callable[..., None]:
    """A property test run once per event type (``event_type``), drawing its events
    from ``EVENT_STRATEGIES[event_type]`` with ``data``."""
    property_test: Callable[..., None] = PROPERTY_SETTINGS(given(data=st.data())(test))
    per_type: Callable[..., None] = pytest.mark.parametrize(
        "event_type", EVENT_TYPES, ids=_type_id
    )(property_test)
    return per_type


# --- Round trips -------------------------------------------------------------------


def _assert_same_event(decoded: Any, original: Event) -> None:
    assert type(decoded) is type(original)
    assert decoded == original
    assert msgspec.structs.asdict(decoded) == msgspec.structs.asdict(original)
    for field in msgspec.structs.fields(type(original)):
        value = getattr(decoded, field.name)
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)


@for_every_event_type
def test_every_event_round_trips_through_the_mapper(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(EVENT_STRATEGIES[event_type], label="event")
    mapper = MsgspecMapper()

    stored = mapper.to_stored_event(event)

    assert stored.topic == topic_of(event_type)
    assert stored.originator_id == event.originator_id
    assert stored.originator_version == event.originator_version
    decoded = mapper.to_domain_event(stored)
    _assert_same_event(decoded, event)
    assert mapper.to_stored_event(decoded).state == stored.state
    # The bulk path's rows are the mapper's, byte for byte.
    assert stored_rows([event]) == [
        (stored.originator_id, stored.originator_version, stored.topic, stored.state)
    ]


@for_every_event_type
def test_every_event_round_trips_through_encode_and_decode(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(EVENT_STRATEGIES[event_type], label="event")

    encoded = encode_event(event)

    decoded = decode_event(encoded)
    _assert_same_event(decoded, event)
    assert encode_event(decoded) == encoded
    assert msgspec.json.decode(encoded)["topic"] == topic_of(event_type)


@for_every_event_type
def test_an_event_body_with_an_unknown_extra_field_still_decodes(
    event_type: type[Event], data: st.DataObject
) -> None:
    """Forward compatibility: fields are only ever added, so old readers skip new ones."""
    event = data.draw(EVENT_STRATEGIES[event_type], label="event")
    extra = data.draw(st.one_of(st.integers(), st.text(), st.lists(st.booleans())), label="extra")
    body = msgspec.json.decode(encode_event(event))
    body["field_from_the_future"] = extra
    state = msgspec.json.encode(body)

    _assert_same_event(decode_event(state), event)
    stored = StoredEvent(
        originator_id=event.originator_id,
        originator_version=event.originator_version,
        topic=topic_of(event_type),
        state=state,
    )
    _assert_same_event(MsgspecMapper().to_domain_event(stored), event)


def test_shop_scores_with_an_unknown_extra_field_still_decode() -> None:
    event = ev.RatingGiven(
        originator_id=uuid.uuid4(),
        originator_version=1,
        recorded_at=datetime(2026, 3, 2, tzinfo=UTC),
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
        policy_version="taobao-classic@1",
        trade_id="T1",
        buyer_id="b",
        seller_id="s",
        rater="buyer",
        score="positive",
        item_id="i",
        amount_minor=100,
        currency="CNY",
        order_created_at=datetime(2026, 3, 1, tzinfo=UTC),
        succeeded_at=datetime(2026, 3, 2, tzinfo=UTC),
        dsr=ev.Dsr(as_described=5, service=5, shipping_speed=5, logistics=5),
    )
    body = msgspec.json.decode(encode_event(event))
    body["dsr"]["packaging"] = 4

    assert decode_event(msgspec.json.encode(body)) == event


# --- Topics ---------------------------------------------------------------------------


def _concrete_event_classes() -> set[type[Event]]:
    """The leaves of the event class tree in ledger.events (bases have subclasses)."""
    found: set[type[Event]] = set()
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        children = [c for c in cls.__subclasses__() if c.__module__ == ev.__name__]
        pending.extend(children)
        if not children:
            found.add(cls)
    return found


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=_type_id)
def test_every_topic_is_explicit_and_versioned(event_type: type[Event]) -> None:
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str)
    assert tag != event_type.__name__  # not msgspec's default tag (the class name)
    assert tag == topic_of(event_type)
    assert tag.startswith("trustledger.")
    assert TOPIC_PATTERN.match(tag), tag
    assert event_type.__struct_config__.tag_field == "topic"


def test_topics_are_unique_and_every_tagged_event_is_listed() -> None:
    topics = [topic_of(t) for t in EVENT_TYPES]
    assert len(topics) == len(set(topics))
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES))
    assert set(TOPICS) == set(topics)
    assert all(TOPICS[topic_of(t)] is t for t in EVENT_TYPES)
    assert _concrete_event_classes() == set(EVENT_TYPES)
    assert set(get_args(ev.AnyEvent)) == set(EVENT_TYPES)


def test_topic_of_refuses_an_event_declared_without_an_explicit_topic() -> None:
    class ForgotItsTopic(ev.TradeEvent, frozen=True):
        pass

    with pytest.raises(TypeError):
        topic_of(ForgotItsTopic)


# --- Refusals ----------------------------------------------------------------------------


@for_every_event_type
def test_a_row_whose_topic_disagrees_with_its_body_is_refused(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(EVENT_STRATEGIES[event_type], label="event")
    other_topics = sorted(set(TOPICS) - {topic_of(event_type)})
    wrong_topic = data.draw(
        st.one_of(
            st.sampled_from(other_topics),
            st.just(topic_of(event_type).replace(".v1", ".v2")),
            st.just(""),
        ),
        label="wrong_topic",
    )
    stored = StoredEvent(
        originator_id=event.originator_id,
        originator_version=event.originator_version,
        topic=wrong_topic,
        state=encode_event(event),
    )

    with pytest.raises(MapperDeserialisationError, match="disagrees"):
        MsgspecMapper().to_domain_event(stored)


GARBAGE = [
    b"",
    b"\x00\xff\xfe garbage",
    b"not json",
    b"{",
    b"null",
    b"[]",
    b"{}",
    b'{"topic": "trustledger.unknown.v1"}',
    b'{"topic": "trustledger.trade.shipped.v1"}',
    b'{"topic": 7}',
]


def _stored(state: bytes, topic: str = "trustledger.trade.shipped.v1") -> StoredEvent:
    return StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic=topic, state=state)


@pytest.mark.parametrize("state", GARBAGE)
def test_garbage_is_refused(state: bytes) -> None:
    with pytest.raises(MapperDeserialisationError):
        MsgspecMapper().to_domain_event(_stored(state))


@PROPERTY_SETTINGS
@given(state=st.binary(max_size=200), topic=st.sampled_from(sorted(TOPICS)))
def test_random_bytes_are_refused(state: bytes, topic: str) -> None:
    with pytest.raises(MapperDeserialisationError):
        MsgspecMapper().to_domain_event(_stored(state, topic))


@for_every_event_type
def test_a_body_with_a_field_of_the_wrong_type_is_refused(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(EVENT_STRATEGIES[event_type], label="event")
    body = msgspec.json.decode(encode_event(event))
    field = data.draw(st.sampled_from(["occurred_at", "originator_id", "originator_version"]))
    body[field] = "yesterday" if field != "originator_version" else "one"
    with pytest.raises(MapperDeserialisationError):
        MsgspecMapper().to_domain_event(_stored(msgspec.json.encode(body), topic_of(event_type)))


def test_the_mapper_refuses_to_store_a_non_event() -> None:
    with pytest.raises(TypeError):
        MsgspecMapper().to_stored_event({"topic": "trustledger.trade.shipped.v1"})
