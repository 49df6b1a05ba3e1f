"""Tally timelines stored in SQL: the month and day rows of ``projections.timeline``.

Two tables per view version, ``tally_months (tally, month, body)`` and
``tally_days (tally, day, body)``, each keyed by (tally, month or day), bodies
msgpack-encoded rows; beside them the rulebooks a view claimed (``tallied``)
and the members it tallies (``tally_members``). A query reads at most two rows by primary key
(``month_at_or_before`` is one index seek). The fold prefetches, for the
tallies a batch moves, their month rows and the day rows of the days it
touches, computes the writes in memory and stores them in the batch's
transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import msgspec
import psycopg
from psycopg import sql

from projections.connections import chunks
from projections.tallies import Moves
from projections.timeline import (
    DayRow,
    MemoryTimeline,
    MonthRow,
    TimelineWrites,
    day_of,
    micros,
)
from projections.violations import ViolationYear

_encoder = msgspec.msgpack.Encoder()
_month_decoder = msgspec.msgpack.Decoder(MonthRow)
_day_decoder = msgspec.msgpack.Decoder(DayRow)
_year_decoder = msgspec.msgpack.Decoder(ViolationYear)
TALLY_TABLES = ("tally_months", "tally_days", "tallied", "tally_members", "violation_years")


class TallyRows(Protocol):
    """One dialect's reads and writes of tally rows, inside a transaction."""

    def month_at_or_before(self, key: str, month: int) -> MonthRow | None: ...

    def months_from(self, key: str, month: int) -> list[MonthRow]: ...

    def day(self, key: str, day: int) -> DayRow | None: ...

    def month_after(self, key: str, month: int) -> MonthRow | None: ...

    def month_and_day(
        self, key: str, month: int, day: int
    ) -> tuple[MonthRow | None, DayRow | None]: ...

    def months_of(self, keys: Sequence[str]) -> list[MonthRow]: ...

    def days_of(self, wanted: Mapping[str, Sequence[int]]) -> list[DayRow]:
        """The day rows of each key's days that exist."""
        ...

    def store(self, writes: Sequence[TimelineWrites]) -> None: ...

    def violation_year(self, key: str, year: int) -> ViolationYear | None:
        """The row ``violations.year_row`` picks among the key's rows."""
        ...

    def store_violation_years(self, rows: Sequence[tuple[str, ViolationYear]]) -> None: ...


def move_tallies(rows: TallyRows, moves: Moves) -> None:
    """Apply a batch's moves: prefetch the rows they touch, compute, store."""
    moves = {key: (added, removed) for key, (added, removed) in moves.items() if added or removed}
    if not moves:
        return
    keys = sorted(moves)
    days = {
        key: sorted({day_of(micros(change.at)) for change in (*added, *removed)})
        for key, (added, removed) in moves.items()
    }
    memory = MemoryTimeline()
    memory.preload(rows.months_of(keys), rows.days_of(days))
    writes = [memory.apply(key, added, removed) for key, (added, removed) in moves.items()]
    rows.store(writes)


def _month_and_day(found: Iterable[tuple[int, bytes]]) -> tuple[MonthRow | None, DayRow | None]:
    """The rows of a ``month_and_day`` read, each tagged 0 (month) or 1 (day)."""
    month = day = None
    for kind, body in found:
        if kind == 0:
            month = _month_decoder.decode(body)
        else:
            day = _day_decoder.decode(body)
    return month, day


def _month_rows(writes: Iterable[TimelineWrites]) -> list[tuple[str, int, bytes]]:
    return [(row.key, row.month, _encoder.encode(row)) for w in writes for row in w.months]


def _day_rows(writes: Iterable[TimelineWrites]) -> list[tuple[str, int, bytes]]:
    return [(row.key, row.day, _encoder.encode(row)) for w in writes for row in w.days]


def _deleted(writes: Iterable[TimelineWrites], kind: str) -> list[tuple[str, int]]:
    if kind == "months":
        return [(w.key, month) for w in writes for month in w.deleted_months]
    return [(w.key, day) for w in writes for day in w.deleted_days]


def sqlite_tables(prefix: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {prefix}tally_months (tally TEXT NOT NULL, "
        "month INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tally, month)) WITHOUT ROWID",
        f"CREATE TABLE IF NOT EXISTS {prefix}tally_days (tally TEXT NOT NULL, "
        "day INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tally, day)) WITHOUT ROWID",
        f"CREATE TABLE IF NOT EXISTS {prefix}violation_years (tally TEXT NOT NULL, "
        "year INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tally, year)) WITHOUT ROWID",
        f"CREATE TABLE IF NOT EXISTS {prefix}tallied (stamp TEXT PRIMARY KEY, body BLOB NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {prefix}tally_members "
        "(member_id TEXT PRIMARY KEY, body BLOB NOT NULL)",
    ]


class SQLiteTallyRows:
    def __init__(self, cursor: sqlite3.Cursor, prefix: str) -> None:
        self.cursor, self.months, self.days = cursor, f"{prefix}tally_months", f"{prefix}tally_days"
        self.years = f"{prefix}violation_years"

    def violation_year(self, key: str, year: int) -> ViolationYear | None:
        for condition in ("year <= ? ORDER BY year DESC", "year > ? ORDER BY year"):
            row = self.cursor.execute(
                f"SELECT body FROM {self.years} WHERE tally = ? AND {condition} LIMIT 1",
                (key, year),
            ).fetchone()
            if row:
                return _year_decoder.decode(row[0])
        return None

    def store_violation_years(self, rows: Sequence[tuple[str, ViolationYear]]) -> None:
        self.cursor.executemany(
            f"INSERT OR REPLACE INTO {self.years} VALUES (?, ?, ?)",
            [(key, row.year, _encoder.encode(row)) for key, row in rows],
        )

    def month_at_or_before(self, key: str, month: int) -> MonthRow | None:
        row = self.cursor.execute(
            f"SELECT body FROM {self.months} WHERE tally = ? AND month <= ? "
            "ORDER BY month DESC LIMIT 1",
            (key, month),
        ).fetchone()
        return _month_decoder.decode(row[0]) if row else None

    def month_after(self, key: str, month: int) -> MonthRow | None:
        row = self.cursor.execute(
            f"SELECT body FROM {self.months} WHERE tally = ? AND month > ? ORDER BY month LIMIT 1",
            (key, month),
        ).fetchone()
        return _month_decoder.decode(row[0]) if row else None

    def month_and_day(
        self, key: str, month: int, day: int
    ) -> tuple[MonthRow | None, DayRow | None]:
        found = self.cursor.execute(
            f"SELECT * FROM (SELECT 0, body FROM {self.months} WHERE tally = ? AND month <= ? "
            f"ORDER BY month DESC LIMIT 1) UNION ALL "
            f"SELECT 1, body FROM {self.days} WHERE tally = ? AND day = ?",
            (key, month, key, day),
        ).fetchall()
        return _month_and_day(found)

    def months_from(self, key: str, month: int) -> list[MonthRow]:
        found = self.cursor.execute(
            f"SELECT body FROM {self.months} WHERE tally = ? AND month >= ? ORDER BY month",
            (key, month),
        ).fetchall()
        return [_month_decoder.decode(body) for (body,) in found]

    def day(self, key: str, day: int) -> DayRow | None:
        row = self.cursor.execute(
            f"SELECT body FROM {self.days} WHERE tally = ? AND day = ?", (key, day)
        ).fetchone()
        return _day_decoder.decode(row[0]) if row else None

    def months_of(self, keys: Sequence[str]) -> list[MonthRow]:
        found = []
        for chunk in chunks(keys):
            marks = ",".join("?" * len(chunk))
            rows = self.cursor.execute(
                f"SELECT body FROM {self.months} WHERE tally IN ({marks})", chunk
            ).fetchall()
            found += [_month_decoder.decode(body) for (body,) in rows]
        return found

    def days_of(self, wanted: Mapping[str, Sequence[int]]) -> list[DayRow]:
        found = []
        for key, days in wanted.items():  # one index range per tally, filtered by day
            for chunk in chunks(days):
                marks = ",".join("?" * len(chunk))
                rows = self.cursor.execute(
                    f"SELECT body FROM {self.days} WHERE tally = ? AND day IN ({marks})",
                    [key, *chunk],
                ).fetchall()
                found += [_day_decoder.decode(body) for (body,) in rows]
        return found

    def store(self, writes: Sequence[TimelineWrites]) -> None:
        cursor = self.cursor
        cursor.executemany(
            f"INSERT OR REPLACE INTO {self.months} VALUES (?, ?, ?)", _month_rows(writes)
        )
        cursor.executemany(
            f"INSERT OR REPLACE INTO {self.days} VALUES (?, ?, ?)", _day_rows(writes)
        )
        cursor.executemany(
            f"DELETE FROM {self.months} WHERE tally = ? AND month = ?", _deleted(writes, "months")
        )
        cursor.executemany(
            f"DELETE FROM {self.days} WHERE tally = ? AND day = ?", _deleted(writes, "days")
        )


def postgres_tables(table: Any) -> list[sql.Composed]:
    """``table(name)``: the qualified name of one of the view version's tables."""
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (tally text NOT NULL, month integer NOT NULL, "
            "body bytea NOT NULL, PRIMARY KEY (tally, month))"
        ).format(table("tally_months")),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (tally text NOT NULL, day integer NOT NULL, "
            "body bytea NOT NULL, PRIMARY KEY (tally, day))"
        ).format(table("tally_days")),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (tally text NOT NULL, year integer NOT NULL, "
            "body bytea NOT NULL, PRIMARY KEY (tally, year))"
        ).format(table("violation_years")),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (stamp text PRIMARY KEY, body bytea NOT NULL)"
        ).format(table("tallied")),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (member_id text PRIMARY KEY, body bytea NOT NULL)"
        ).format(table("tally_members")),
    ]


class PostgresTallyRows:
    def __init__(self, cursor: psycopg.Cursor[Any], table: Any) -> None:
        self.cursor = cursor
        self.months, self.days = table("tally_months"), table("tally_days")
        self.years = table("violation_years")

    def violation_year(self, key: str, year: int) -> ViolationYear | None:
        for condition in ("year <= %s ORDER BY year DESC", "year > %s ORDER BY year"):
            found = self._bodies(
                sql.SQL(
                    "SELECT body FROM {} WHERE tally = %s AND " + condition + " LIMIT 1"
                ).format(self.years),
                (key, year),
            )
            if found:
                return _year_decoder.decode(found[0])
        return None

    def store_violation_years(self, rows: Sequence[tuple[str, ViolationYear]]) -> None:
        if not rows:
            return
        self.cursor.execute(
            sql.SQL(
                "INSERT INTO {} SELECT * FROM unnest(%s::text[], %s::integer[], %s::bytea[]) "
                "ON CONFLICT (tally, year) DO UPDATE SET body = EXCLUDED.body"
            ).format(self.years),
            (
                [key for key, _ in rows],
                [row.year for _, row in rows],
                [_encoder.encode(row) for _, row in rows],
            ),
        )

    def _bodies(self, statement: sql.Composed, params: Sequence[Any]) -> list[bytes]:
        self.cursor.execute(statement, params)
        return [bytes(body) for (body,) in self.cursor.fetchall()]

    def month_at_or_before(self, key: str, month: int) -> MonthRow | None:
        found = self._bodies(
            sql.SQL(
                "SELECT body FROM {} WHERE tally = %s AND month <= %s ORDER BY month DESC LIMIT 1"
            ).format(self.months),
            (key, month),
        )
        return _month_decoder.decode(found[0]) if found else None

    def month_after(self, key: str, month: int) -> MonthRow | None:
        found = self._bodies(
            sql.SQL(
                "SELECT body FROM {} WHERE tally = %s AND month > %s ORDER BY month LIMIT 1"
            ).format(self.months),
            (key, month),
        )
        return _month_decoder.decode(found[0]) if found else None

    def month_and_day(
        self, key: str, month: int, day: int
    ) -> tuple[MonthRow | None, DayRow | None]:
        self.cursor.execute(
            sql.SQL(
                "(SELECT 0, body FROM {} WHERE tally = %s AND month <= %s "
                "ORDER BY month DESC LIMIT 1) UNION ALL "
                "(SELECT 1, body FROM {} WHERE tally = %s AND day = %s)"
            ).format(self.months, self.days),
            (key, month, key, day),
        )
        return _month_and_day([(kind, bytes(body)) for kind, body in self.cursor.fetchall()])

    def months_from(self, key: str, month: int) -> list[MonthRow]:
        found = self._bodies(
            sql.SQL("SELECT body FROM {} WHERE tally = %s AND month >= %s ORDER BY month").format(
                self.months
            ),
            (key, month),
        )
        return [_month_decoder.decode(body) for body in found]

    def day(self, key: str, day: int) -> DayRow | None:
        found = self._bodies(
            sql.SQL("SELECT body FROM {} WHERE tally = %s AND day = %s").format(self.days),
            (key, day),
        )
        return _day_decoder.decode(found[0]) if found else None

    def months_of(self, keys: Sequence[str]) -> list[MonthRow]:
        found = self._bodies(
            sql.SQL("SELECT body FROM {} WHERE tally = ANY(%s)").format(self.months), (list(keys),)
        )
        return [_month_decoder.decode(body) for body in found]

    def days_of(self, wanted: Mapping[str, Sequence[int]]) -> list[DayRow]:
        pairs = [(key, day) for key, days in wanted.items() for day in days]
        if not pairs:
            return []
        keys, days = (list(column) for column in zip(*pairs, strict=True))
        found = self._bodies(
            sql.SQL(
                "SELECT body FROM {} WHERE (tally, day) IN "
                "(SELECT * FROM unnest(%s::text[], %s::integer[]))"
            ).format(self.days),
            (keys, days),
        )
        return [_day_decoder.decode(body) for body in found]

    def store(self, writes: Sequence[TimelineWrites]) -> None:
        for table, column, rows in (
            (self.months, "month", _month_rows(writes)),
            (self.days, "day", _day_rows(writes)),
        ):
            if rows:
                keys, numbers, bodies = (
                    list(column_values) for column_values in zip(*rows, strict=True)
                )
                self.cursor.execute(
                    sql.SQL(
                        "INSERT INTO {table} SELECT * FROM unnest(%s::text[], %s::integer[], %s::bytea[]) "
                        "ON CONFLICT (tally, {column}) DO UPDATE SET body = EXCLUDED.body"
                    ).format(table=table, column=sql.Identifier(column)),
                    (keys, numbers, bodies),
                )
        for table, column, kind in ((self.months, "month", "months"), (self.days, "day", "days")):
            deleted = _deleted(writes, kind)
            if deleted:
                keys, numbers = (list(values) for values in zip(*deleted, strict=True))
                self.cursor.execute(
                    sql.SQL(
                        "DELETE FROM {table} WHERE (tally, {column}) IN "
                        "(SELECT * FROM unnest(%s::text[], %s::integer[]))"
                    ).format(table=table, column=sql.Identifier(column)),
                    (keys, numbers),
                )
