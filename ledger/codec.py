"""The only code that turns events into bytes and back.

Events are stored as msgspec JSON: readable by auditors, and decoded by one
typed decoder over the tagged union of every event type, built once. The
``topic`` tag inside the body is the same string the store keeps in its topic
column; a mismatch between the two is refused on read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)

from ledger.events import EVENT_TYPES, AnyEvent, Event, topic_of

TOPICS: dict[str, type[Event]] = {topic_of(t): t for t in EVENT_TYPES}
_TOPIC_OF: dict[type[Event], str] = {t: topic for topic, t in TOPICS.items()}

_encoder = msgspec.json.Encoder()
_event_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


StoredRow = tuple[UUID, int, str, bytes]  # originator_id, originator_version, topic, state


def stored_rows(events: Iterable[Event]) -> list[StoredRow]:
    """Events as the store's rows, for the bulk path (no ``StoredEvent`` objects:
    an import encodes a million of them on the thread that also checks)."""
    return [
        (e.originator_id, e.originator_version, _TOPIC_OF[type(e)], _encoder.encode(e))
        for e in events
    ]


def decode_event(data: bytes) -> Event:
    event: Event = _event_decoder.decode(data)
    return event


class MsgspecTranscoder(Transcoder):
    """Plain msgspec JSON for non-event values (builtins, Structs, UUIDs, datetimes)."""

    def encode(self, obj: Any) -> bytes:
        return _encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        return msgspec.json.decode(data)


class MsgspecMapper(Mapper[UUID]):
    """Maps event Structs to stored rows with their explicit topics, and back."""

    def __init__(self, transcoder: Transcoder | None = None, **_: Any) -> None:
        super().__init__(transcoder=transcoder or MsgspecTranscoder())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if not isinstance(domain_event, Event):
            raise TypeError(f"not a ledger event: {type(domain_event).__name__}")
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic_of(type(domain_event)),
            state=encode_event(domain_event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        where = f"{stored_event.originator_id} v{stored_event.originator_version}"
        return _checked_decode("event", where, stored_event.topic, stored_event.state)


def decode_stored(position: int, topic: str, state: bytes) -> Event:
    """Decode a stored body, checking it against the topic stored beside it."""
    return _checked_decode("position", position, topic, state)


def _checked_decode(kind: str, where: object, topic: str, state: bytes) -> Event:
    # Where the body came from is formatted only for an error: a rebuild
    # decodes every event of the log through here.
    try:
        event: Event = _event_decoder.decode(state)
    except msgspec.DecodeError as error:
        raise MapperDeserialisationError(
            f"{kind} {where} ({topic}) cannot be decoded: {error}"
        ) from error
    if _TOPIC_OF[type(event)] != topic:
        raise MapperDeserialisationError(
            f"{kind} {where}: stored topic {topic!r} disagrees with its body"
        )
    return event
