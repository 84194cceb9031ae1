"""Store maintenance: exporting the journal and purging what retention allows.

Both walk the journal by primary key in small batches (keyset pagination: ``id > last``,
``ORDER BY id``, ``LIMIT n``), each batch in a short transaction of its own, so that neither
holds a lock or a snapshot for long, memory stays flat however large the journal is, and an
interruption between two batches leaves the store exactly as consistent as it was.

What purge may delete
---------------------
A journal row goes only when all of these hold:

* it was created before the cutoff;
* it is finished: inbound ``PROCESSED, FORWARDED, FLAGGED, REFUSED, DUPLICATE, UNMATCHED``,
  outbound ``SENT, ACCEPTED, REFUSED_BY_PARTNER``;
* every outbox row of it is ``SENT`` (one still ``PENDING`` or ``UNROUTABLE`` is work an
  operator or the relay has yet to finish; such rows keep their journal row);
* the dedupe does not need it (below).

With the row go its events and its (sent) outbox rows: both reference ``journal.id`` with a
foreign key (enforced on PostgreSQL, and on SQLite where the adapter turns
``PRAGMA foreign_keys`` on), so they cannot outlive it.

Why the inbox is never purged, and what it pins
-----------------------------------------------
The inbox is the dedupe: a partner may resend a message months later (a retry after its own
restore from backup, say), and it must be recognised and answered with the original receipt,
byte for byte, instead of being applied twice. Dedupe must therefore outlive the journal; the
inbox rows are small (keys and a digest) and purge never touches them.

The schema ties each inbox row to the journal: ``inbox.journal_id`` is a NOT NULL foreign key
to ``journal.id`` (it cannot be set to NULL), the duplicate path appends a ``dedupe`` event to
that journal row, and ``inbox.receipt_outbox_id`` names the outbox row whose bytes are sent
again (which itself references the receipt's outbound journal row). So purge keeps, whole:

* every journal row an inbox row names (``inbox.journal_id``), and
* the outbound journal row and the outbox rows of every receipt an inbox row names.

Keeping them whole (rather than blanking their ``raw``) is deliberate: ``cdgi replay`` and
``cdgi why`` read ``raw``, and replaying an emptied row would send the partner a refusal of
bytes it never sent. What retention reclaims is therefore the outbound traffic other than
receipts of recorded messages (forwards, notices, partner receipts' originals...) and their
events, plus inbound rows no inbox row names (e.g. replays of bytes refused before).
``purge_plan`` reports how many old rows are kept for each reason.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, not_, or_
from sqlalchemy.engine import Engine
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from store.db import as_utc, translating
from store.models import Inbox, Journal, JournalEvent, Outbox

__all__ = [
    "FINISHED_IN",
    "FINISHED_OUT",
    "ExportFilter",
    "PurgePlan",
    "count_export",
    "export_batch",
    "iter_export",
    "purge",
    "purge_batch",
    "purge_plan",
]

FINISHED_IN: tuple[str, ...] = (
    "PROCESSED",
    "FORWARDED",
    "FLAGGED",
    "REFUSED",
    "DUPLICATE",
    "UNMATCHED",
)
FINISHED_OUT: tuple[str, ...] = ("SENT", "ACCEPTED", "REFUSED_BY_PARTNER")

EXPORT_BATCH = 1000
PURGE_BATCH = 500


def _utc(moment: datetime) -> datetime:
    """A bound as aware UTC: SQLite compares the stored (UTC) text, so the zone must match."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- export -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportFilter:
    """Which journal rows ``cdgi export`` writes (every field optional; all must match)."""

    since: datetime | None = None
    until: datetime | None = None
    message_type: str | None = None
    partner: str | None = None
    status: str | None = None
    direction: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        """The WHERE conditions of this filter."""
        where: list[ColumnElement[bool]] = []
        if self.since is not None:
            where.append(col(Journal.created_at) >= _utc(self.since))
        if self.until is not None:
            where.append(col(Journal.created_at) < _utc(self.until))
        if self.message_type:
            where.append(col(Journal.message_type) == self.message_type)
        if self.partner:
            where.append(
                or_(col(Journal.sender_id) == self.partner, col(Journal.receiver_id) == self.partner)
            )
        if self.status:
            where.append(col(Journal.status) == self.status.upper())
        if self.direction:
            where.append(col(Journal.direction) == self.direction.upper())
        return where


@translating
def count_export(engine: Engine, f: ExportFilter) -> tuple[int, int]:
    """How many rows match ``f`` and the highest matching id (0 when none).

    The export stops at that id, so the count is exactly what gets written even while the
    daemon keeps journaling (unless a purge runs at the same time).
    """
    with Session(engine) as session:
        count, top = session.exec(
            select(func.count(), func.max(Journal.id)).where(*f.clauses())  # type: ignore[call-overload]
        ).one()
    return int(count), int(top or 0)


@translating
def export_batch(
    engine: Engine,
    f: ExportFilter,
    *,
    after_id: int,
    up_to_id: int,
    limit: int = EXPORT_BATCH,
    with_raw: bool = False,
) -> list[dict[str, Any]]:
    """The next ``limit`` matching rows with ``after_id < id <= up_to_id``, oldest first, as
    JSON-ready dicts: every journal column (times ISO-8601 UTC), ``events`` oldest first,
    and with ``with_raw`` the bytes ``raw`` and ``canonical`` in base64 (else neither is read).
    """
    query = (
        select(Journal)
        .where(col(Journal.id) > after_id, col(Journal.id) <= up_to_id, *f.clauses())
        .order_by(col(Journal.id))
        .limit(limit)
    )
    if not with_raw:
        query = query.options(defer(Journal.raw), defer(Journal.canonical))  # type: ignore[arg-type]
    with Session(engine) as session:
        rows = list(session.exec(query).all())
        ids = [r.id for r in rows]
        events: dict[int, list[dict[str, Any]]] = {i: [] for i in ids if i is not None}
        if ids:
            for e in session.exec(
                select(JournalEvent)
                .where(col(JournalEvent.journal_id).in_(ids))
                .order_by(col(JournalEvent.journal_id), col(JournalEvent.id))
            ).all():
                events[e.journal_id].append(
                    {
                        "id": e.id,
                        "at": _iso(e.at),
                        "stage": e.stage,
                        "status": e.status,
                        "code": e.code,
                        "detail": e.detail,
                    }
                )
        return [_exported(r, events.get(r.id or 0, []), with_raw) for r in rows]


def _iso(value: datetime | None) -> str | None:
    moment = as_utc(value)
    return moment.isoformat() if moment is not None else None


def _exported(row: Journal, events: list[dict[str, Any]], with_raw: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": row.id,
        "direction": row.direction,
        "message_id": row.message_id,
        "message_type": row.message_type,
        "sender_id": row.sender_id,
        "receiver_id": row.receiver_id,
        "correlation_id": row.correlation_id,
        "uscc": row.uscc,
        "routing_key": row.routing_key,
        "digest": row.digest,
        "size": row.size,
        "status": row.status,
        "code": row.code,
        "info": row.info,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }
    if with_raw:
        record["raw"] = base64.b64encode(row.raw).decode("ascii")
        record["canonical"] = (
            base64.b64encode(row.canonical).decode("ascii") if row.canonical is not None else None
        )
    record["events"] = events
    return record


def iter_export(
    engine: Engine,
    f: ExportFilter,
    *,
    up_to_id: int,
    batch_size: int = EXPORT_BATCH,
    with_raw: bool = False,
) -> Iterator[dict[str, Any]]:
    """Every matching row up to ``up_to_id``, oldest first, one batch query at a time.

    Nothing is held between batches: no transaction, no cursor, no more than one batch of
    rows in memory. Stopping the iteration at any point is harmless.
    """
    last = 0
    while True:
        batch = export_batch(
            engine, f, after_id=last, up_to_id=up_to_id, limit=batch_size, with_raw=with_raw
        )
        if not batch:
            return
        yield from batch
        last = batch[-1]["id"]


# -- purge --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PurgePlan:
    """What a purge with this cutoff would do, counted (``cdgi purge --dry-run``)."""

    cutoff: datetime
    eligible: int  # old, finished, all outbox rows sent, not needed by the dedupe: deleted
    kept_for_dedupe: int  # old and finished, but an inbox row (or its receipt) needs it
    kept_unsent: int  # old and finished, but an outbox row is still PENDING or UNROUTABLE
    unfinished: int  # old but not in a finished status (PENDING, UNROUTABLE, ...)

    @property
    def old(self) -> int:
        """Every row created before the cutoff."""
        return self.eligible + self.kept_for_dedupe + self.kept_unsent + self.unfinished


def _old(cutoff: datetime) -> ColumnElement[bool]:
    return col(Journal.created_at) < _utc(cutoff)


def _finished() -> ColumnElement[bool]:
    return or_(
        and_(col(Journal.direction) == "IN", col(Journal.status).in_(FINISHED_IN)),
        and_(col(Journal.direction) == "OUT", col(Journal.status).in_(FINISHED_OUT)),
    )


def _unsent() -> ColumnElement[bool]:
    """An outbox row of this journal row is not SENT (PENDING, UNROUTABLE or anything else)."""
    return col(Journal.id).in_(select(Outbox.journal_id).where(col(Outbox.state) != "SENT"))


def _pinned() -> ColumnElement[bool]:
    """The dedupe needs this row: an inbox row names it, or names a receipt of it.

    Uncorrelated ``IN (subquery)``: both databases build the set once per statement (there
    is no index on ``inbox.journal_id`` to make a correlated lookup cheap).
    """
    receipts = select(Inbox.receipt_outbox_id).where(col(Inbox.receipt_outbox_id).is_not(None))
    return or_(
        col(Journal.id).in_(select(Inbox.journal_id)),
        col(Journal.id).in_(select(Outbox.journal_id).where(col(Outbox.id).in_(receipts))),
    )


def _deletable(cutoff: datetime) -> list[ColumnElement[bool]]:
    return [_old(cutoff), _finished(), not_(_unsent()), not_(_pinned())]


@translating
def purge_plan(engine: Engine, cutoff: datetime) -> PurgePlan:
    """Count what a purge at ``cutoff`` would delete and what it would keep, and why."""
    with Session(engine) as session:

        def count(*where: ColumnElement[bool]) -> int:
            return int(
                session.exec(select(func.count()).select_from(Journal).where(*where)).one()
            )

        old, done = _old(cutoff), _finished()
        return PurgePlan(
            cutoff=_utc(cutoff),
            eligible=count(*_deletable(cutoff)),
            kept_for_dedupe=count(old, done, not_(_unsent()), _pinned()),
            kept_unsent=count(old, done, _unsent()),
            unfinished=count(old, not_(done)),
        )


@translating
def purge_batch(
    engine: Engine, cutoff: datetime, *, after_id: int = 0, limit: int = PURGE_BATCH
) -> tuple[int, int | None]:
    """Delete up to ``limit`` deletable rows with ``id > after_id`` in ONE transaction.

    Returns (journal rows deleted, the highest id looked at), or (0, None) when nothing is
    left after ``after_id``. The rows are chosen and locked (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL; SQLite's writer transaction is exclusive) in the same transaction that deletes
    them, so a row the daemon is touching right now is skipped, not half-deleted: its events,
    its outbox rows and the row itself go together or not at all.
    """
    with Session(engine) as session:
        ids = list(
            session.exec(
                select(Journal.id)
                .where(col(Journal.id) > after_id, *_deletable(cutoff))
                .order_by(col(Journal.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
        )
        if not ids:
            session.rollback()
            return 0, None
        session.execute(delete(JournalEvent).where(col(JournalEvent.journal_id).in_(ids)))
        session.execute(
            delete(Outbox).where(col(Outbox.journal_id).in_(ids), col(Outbox.state) == "SENT")
        )
        result = session.execute(delete(Journal).where(col(Journal.id).in_(ids)))
        session.commit()
        return int(result.rowcount), max(i for i in ids if i is not None)  # type: ignore[attr-defined]


def purge(
    engine: Engine,
    cutoff: datetime,
    *,
    batch_size: int = PURGE_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete every deletable row older than ``cutoff``, batch by batch; the total deleted.

    ``on_batch(n)`` is called after each committed batch with the rows it deleted. Interrupted
    (KeyboardInterrupt, a lost connection), the batch in hand rolls back and everything
    committed before stays deleted: running it again continues where it stopped, and running
    it again after it finished deletes nothing more (idempotent).
    """
    total, last = 0, 0
    while True:
        deleted, seen = purge_batch(engine, cutoff, after_id=last, limit=batch_size)
        if seen is None:
            return total
        total, last = total + deleted, seen
        if on_batch is not None:
            on_batch(deleted)

