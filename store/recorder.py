"""The rows every message leaves behind, written for a whole batch with a few statements.

Each message handled writes a journal row, its events, outbox rows (the receipt, forwards)
and an inbox (dedupe) row. Flushing them one by one through the ORM cost more than signing
did; a ``Recorder`` keeps them as plain values and ``flush`` writes them with one multi-row
INSERT per table, in the batch's transaction. Rows point at each other through ``Ref``s whose
ids are known once ``flush`` ran (INSERT … RETURNING, in the order given).

A message's rows are dropped with ``undo(mark)`` when its savepoint is rolled back, so a
refusal leaves nothing of what the message had begun to write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from store.models import Inbox, Journal, JournalEvent, Outbox

_JOURNAL = Journal.__table__  # type: ignore[attr-defined]
_EVENT = JournalEvent.__table__  # type: ignore[attr-defined]
_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
_INBOX = Inbox.__table__  # type: ignore[attr-defined]



def _blank(table: Any) -> dict[str, Any]:
    """Every column but the id, at the model's default (None where it has none)."""
    return {c.name: c.default.arg if c.default is not None and c.default.is_scalar else None
            for c in table.columns if c.name != "id"}


_JOURNAL_BLANK = _blank(_JOURNAL)
_OUTBOX_BLANK = _blank(_OUTBOX)


class Later:
    """A value known only when the rows are written: the signed bytes of a message whose
    signature the card is still computing. ``Recorder.flush`` asks for it (and waits)."""

    __slots__ = ("_known", "_make", "_value")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._value: Any = None
        self._known = False

    def get(self) -> Any:
        """The value, made once."""
        if not self._known:
            self._value, self._known = self._make(), True
            self._make = _made
        return self._value


def _made() -> Any:
    raise AssertionError("a Later value is made once")


def _settle(refs: list[Ref]) -> None:
    """Replace every ``Later`` among the rows' values by its value."""
    for ref in refs:
        values = ref.values
        for key, value in values.items():
            if type(value) is Later:
                values[key] = value.get()


@dataclass(eq=False)
class Ref:
    """A row not yet written; ``id`` is set by ``Recorder.flush``."""

    values: dict[str, Any]
    id: int | None = None


Key = int | Ref


@dataclass(frozen=True)
class Seen:
    """An inbox row, written or pending in this batch."""

    digest: str
    journal_id: Key
    receipt_outbox_id: Key | None


@dataclass
class Recorder:
    """Journal, event, outbox and inbox rows of one unit of work, written by ``flush``."""

    journal: list[Ref] = field(default_factory=list)
    events: list[tuple[Key, dict[str, Any]]] = field(default_factory=list)
    outbox: list[tuple[Key, Ref]] = field(default_factory=list)
    inbox: dict[tuple[str, str], tuple[dict[str, Any], Key, Key | None]] = field(
        default_factory=dict)
    written: dict[tuple[str, str], Seen] = field(default_factory=dict)  # inbox rows flushed
    # Rows nothing points at and the batch never reads back (an enterprise's progress).
    appended: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    def mark(self) -> tuple[int, ...]:
        """Where the rows stand now (for ``undo``)."""
        return (len(self.journal), len(self.events), len(self.outbox), len(self.inbox),
                len(self.appended))

    def undo(self, mark: tuple[int, ...]) -> None:
        """Forget every row added since ``mark``."""
        journal, events, outbox, inbox, appended = mark
        del self.journal[journal:], self.events[events:], self.outbox[outbox:]
        del self.appended[appended:]
        for key in list(self.inbox)[inbox:]:
            del self.inbox[key]

    def append(self, table: Any, values: dict[str, Any]) -> None:
        """A row for ``table`` that nothing refers to, written with the others."""
        self.appended.append((table, values))

    def add_journal(self, values: dict[str, Any]) -> Ref:
        ref = Ref({**_JOURNAL_BLANK, **values})
        self.journal.append(ref)
        return ref

    def add_event(self, journal: Key, values: dict[str, Any]) -> None:
        self.events.append((journal, values))

    def add_outbox(self, journal: Key, values: dict[str, Any]) -> Ref:
        ref = Ref({**_OUTBOX_BLANK, **values})
        self.outbox.append((journal, ref))
        return ref

    def add_inbox(self, sender_key: str, message_key: str, values: dict[str, Any],
                  journal: Key, receipt: Key | None) -> None:
        self.inbox[(sender_key, message_key)] = (values, journal, receipt)

    def pending_inbox(self, sender_key: str, message_key: str) -> Seen | None:
        """The inbox row this unit of work wrote or is about to write for the key, if any."""
        pending = self.inbox.get((sender_key, message_key))
        if pending is None:
            return self.written.get((sender_key, message_key))
        values, journal, receipt = pending
        return Seen(values["digest"], journal, receipt)

    def flush(self, session: Session) -> None:
        """Write every row (journal first: the others point at it), then forget them."""
        outbox = [ref for _, ref in self.outbox]
        _settle(self.journal)
        _settle(outbox)
        if self.journal:
            self._insert(session, _JOURNAL, self.journal)
        if self.outbox:
            for journal, ref in self.outbox:
                ref.values["journal_id"] = _id(journal)
            self._insert(session, _OUTBOX, outbox)
        if self.events:
            session.execute(insert(_EVENT), [{**values, "journal_id": _id(journal)}
                                             for journal, values in self.events])
        if self.inbox:
            self.written.update({key: Seen(values["digest"], _id(journal),
                                           None if receipt is None else _id(receipt))
                                 for key, (values, journal, receipt) in self.inbox.items()})
            session.execute(insert(_INBOX), [
                {**values, "sender_key": sender, "message_key": message,
                 "journal_id": _id(journal),
                 "receipt_outbox_id": None if receipt is None else _id(receipt)}
                for (sender, message), (values, journal, receipt) in self.inbox.items()
            ])
        tables: dict[Any, list[dict[str, Any]]] = {}
        for table, values in self.appended:
            tables.setdefault(table, []).append(values)
        for table, rows in tables.items():
            session.execute(insert(table), rows)
        self.journal, self.events, self.outbox, self.inbox = [], [], [], {}
        self.appended = []

    @staticmethod
    def _insert(session: Session, table: Any, refs: list[Ref]) -> None:
        """The rows in one executemany, under ids taken first (``_new_ids``): RETURNING
        many ids in the rows' order would cost an INSERT a row (SQLite cannot promise the
        order) or one long INSERT whose text the driver parses each time (PostgreSQL)."""
        rows = []
        for row_id, ref in zip(_new_ids(session, table, len(refs)), refs, strict=True):
            ref.id = row_id
            rows.append({**ref.values, "id": row_id})
        session.execute(insert(table), rows)


def _new_ids(session: Session, table: Any, count: int) -> list[int]:
    """``count`` unused ids of ``table``: from its sequence (PostgreSQL), or past its largest
    (SQLite, whose own choice that is: the batch holds the only write lock, BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        return list(session.execute(
            select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        ).scalars())
    last = session.execute(select(func.max(table.c.id))).scalar() or 0
    return list(range(last + 1, last + 1 + count))


def _id(key: Key) -> int:
    if isinstance(key, Ref):
        if key.id is None:
            raise RuntimeError("a row refers to one that was not written")
        return key.id
    return key
