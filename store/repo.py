"""Repositories: every query the adapter makes, so that only ``store`` speaks SQL.

``Repo`` works inside a unit of work's session; the module-level functions open their own
short transactions (the outbox relay, the partner registry, the operator queries).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import delete, event, func, insert, inspect, or_, text, union, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from store.db import translating, utcnow
from store.models import (
    UNANSWERED,
    Agreement,
    Authorization,
    BoundCard,
    Claim,
    Credit,
    Enterprise,
    Inbox,
    Increase,
    Journal,
    JournalEvent,
    LedgerEntry,
    Outbox,
    Partner,
    PartnerCert,
    Policy,
    Progress,
    Quota,
    Seal,
    Waiting,
)
from store.recorder import Recorder, Ref, Seen

T = TypeVar("T", bound=SQLModel)

_PROGRESS = Progress.__table__  # type: ignore[attr-defined]

__all__ = ["Engine", "JournalFilter", "Ref", "Repo", "Seen"]


def resend_of(original: Outbox) -> Outbox:
    """A new outbox row with the same message: same MessageId, same signed bytes."""
    now = utcnow()
    return Outbox(
        journal_id=original.journal_id,
        message_id=original.message_id,
        message_type=original.message_type,
        receiver_id=original.receiver_id,
        correlation_id=original.correlation_id,
        body=original.body,
        created_at=now,
        next_attempt_at=now,
    )


class Repo:
    """Queries and writes inside one session (one unit of work).

    Journal, event, outbox and inbox rows are buffered in a ``Recorder`` and written by
    ``flush``, which runs by itself before the session commits (call it earlier to learn the
    rows' ids); business state goes through the ORM session, and ``add`` leaves its rows to
    that same flush (or to the next query that needs them: the session's autoflush).

    ``read_ahead`` loads and locks, one query per table, the rows a batch's handlers will ask
    for by key; ``get`` then answers those keys from the session without a query of its own.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.recorder = Recorder()
        self._absent: set[tuple[str, str]] = set()
        # Of the keys ``look_ahead`` was told, those that wait (their waiting and journal ids),
        # and those it learnt do not:
        self._waiting: dict[tuple[str, str], tuple[int, int]] = {}
        self._not_waiting: set[tuple[str, str]] = set()
        # What ``read_ahead`` loaded: the keys it asked for (found or not), per model and key
        # column (None: the primary key), and the lists it read whole. Every row read or added
        # is kept here too, per model, for the session's identity map holds rows weakly (a
        # lookup must not take a row the session let go for one never written).
        self._held: dict[tuple[type[SQLModel], str | None], set[Any]] = {}
        self._lists: dict[tuple[type[SQLModel], str, Any], list[Any]] = {}
        self._list_columns: dict[type[SQLModel], set[str]] = {}
        self._kept: dict[type[SQLModel], dict[int, Any]] = {}
        event.listen(session, "after_soft_rollback", self._after_rollback)
        # Buffered rows are written before any commit of this session: none can be forgotten.
        # (SQLAlchemy calls the hook when a savepoint is released too; those are skipped.)
        event.listen(session, "before_commit", self._before_commit)

    def _before_commit(self, session: Session) -> None:
        if not session.in_nested_transaction():
            self.flush()

    def _after_rollback(self, session: Session, previous: Any) -> None:
        self._lists.clear()  # a list may hold rows the savepoint took back

    def flush(self) -> None:
        """Write the business rows added so far, then the buffered journal, event, outbox and
        inbox rows."""
        self.session.flush()
        self.recorder.flush(self.session)

    def mark(self) -> tuple[int, ...]:
        """A point to ``undo`` back to (taken with a savepoint)."""
        return self.recorder.mark()

    def undo(self, mark: tuple[int, ...]) -> None:
        """Drop the buffered rows added since ``mark`` (the savepoint was rolled back)."""
        self.recorder.undo(mark)

    # -- journal -------------------------------------------------------------------------
    def add_journal(self, **values: Any) -> Ref:
        """A new journal row (written at ``flush``; its id known then)."""
        now = values.pop("at", None) or utcnow()
        return self.recorder.add_journal({"created_at": now, "updated_at": now, **values})

    def add_event(
        self,
        journal_id: int | Ref,
        stage: str,
        status: str,
        code: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append a step to a message's story."""
        self.recorder.add_event(journal_id, {"at": at or utcnow(), "stage": stage,
                                             "status": status, "code": code, "detail": detail})

    def set_status(
        self, row: Journal, status: str, code: str | None = None, info: str | None = None
    ) -> None:
        """Move a journal row to ``status`` (the event is recorded separately)."""
        row.status = status
        row.code = code
        row.info = info
        row.updated_at = utcnow()
        self.session.add(row)

    def outbound_message(self, message_id: str, receiver_id: str) -> Journal | None:
        """The message we sent with ``message_id`` to ``receiver_id``."""
        return self.session.exec(
            select(Journal).where(
                Journal.direction == "OUT",
                Journal.message_id == message_id,
                Journal.receiver_id == receiver_id,
            )
        ).first()

    # -- inbox ---------------------------------------------------------------------------
    def inbox(self, sender_key: str, message_key: str) -> Seen | None:
        """The dedupe row of an inbound message, if it was processed before (or in this unit)."""
        pending = self.recorder.pending_inbox(sender_key, message_key)
        if pending is not None or (sender_key, message_key) in self._absent:
            return pending
        # Straight through the connection: the ORM's pending state never touches the inbox,
        # so there is nothing to autoflush first.
        row = self.session.connection().execute(
            select(Inbox.digest, Inbox.journal_id, Inbox.receipt_outbox_id).where(
                Inbox.sender_key == sender_key, Inbox.message_key == message_key)
        ).first()
        return None if row is None else Seen(*row)

    def look_ahead(self, keys: Iterable[tuple[str, str]],
                   messages: Iterable[tuple[str, str]] = ()) -> None:
        """Learn with one query each which of ``keys`` the inbox lacks (``inbox`` skips
        those), and which of the ``(sender, MessageId)`` pairs wait (``waiting_for``)."""
        wanted, asked = set(keys), set(messages)
        connection = self.session.connection()
        if wanted:
            found = set(connection.execute(
                select(Inbox.sender_key, Inbox.message_key).where(
                    col(Inbox.sender_key).in_({k[0] for k in wanted}),
                    col(Inbox.message_key).in_({k[1] for k in wanted}))
            ).all())
            self._absent |= wanted - {(sender, message) for sender, message in found}
        if asked:
            for sender, message, waiting_id, journal_id in connection.execute(
                select(Waiting.sender_id, Waiting.message_id, Waiting.id, Waiting.journal_id)
                .where(col(Waiting.sender_id).in_({k[0] for k in asked}),
                       col(Waiting.message_id).in_({k[1] for k in asked}))
            ):
                self._waiting[(sender, message)] = (waiting_id, journal_id)
            self._not_waiting |= asked - self._waiting.keys()

    def add_inbox(self, *, sender_key: str, message_key: str, digest: str,
                  journal_id: int | Ref, receipt_outbox_id: int | Ref | None = None,
                  received_at: datetime | None = None) -> None:
        """Record an inbound message as processed (unique: a race surfaces at ``flush``)."""
        self.recorder.add_inbox(sender_key, message_key,
                                {"digest": digest, "received_at": received_at or utcnow()},
                                journal_id, receipt_outbox_id)

    # -- outbox --------------------------------------------------------------------------
    def add_outbox(self, *, journal_id: int | Ref, **values: Any) -> Ref:
        """A new outbound row (written at ``flush``)."""
        now = utcnow()
        return self.recorder.add_outbox(journal_id,
                                        {"created_at": now, "next_attempt_at": now, **values})

    def resend(self, outbox_id: int | Ref, owner: str, lease_s: float) -> Ref | None:
        """Queue the same bytes (same MessageId) once more: an identical re-send."""
        if isinstance(outbox_id, Ref):
            values = dict(outbox_id.values)
            journal_id: int | Ref = values.pop("journal_id") or next(
                j for j, ref in self.recorder.outbox if ref is outbox_id)
        else:
            original = self.session.get(Outbox, outbox_id)
            if original is None:
                return None
            values = resend_of(original).model_dump(exclude={"id"})
            journal_id = values.pop("journal_id")
        now = utcnow()
        values.update(created_at=now, next_attempt_at=now, state="PENDING", attempts=0,
                      last_error=None, sent_at=None, claimed_by=owner,
                      lease_until=now + timedelta(seconds=lease_s))
        return self.add_outbox(journal_id=journal_id, **values)

    def mark_published(self, results: Sequence[PublishResult], retry_after_s: float) -> None:
        """What the broker answered for earlier batches' messages, in this unit of work."""
        mark_published(self.session.connection(), results, retry_after_s)

    # -- messages waiting for the one they depend on ---------------------------------------
    def update_journal(self, journal_id: int, **values: Any) -> None:
        """Change a journal row written earlier (a waiting message's, when it is handled)."""
        self.session.execute(update(Journal).where(col(Journal.id) == journal_id)
                             .values(updated_at=utcnow(), **values))

    def waiting_for(self, sender_id: str, message_id: str) -> int | None:
        """The journal row of a message that waits (parked before or in this unit), if it
        does; from what ``look_ahead`` learnt where it can."""
        key = (sender_id, message_id)
        if key in self._waiting:
            return self._waiting[key][1]
        if key in self._not_waiting:
            return None
        row = self.session.connection().execute(
            select(Waiting.id, Waiting.journal_id).where(
                Waiting.sender_id == sender_id, Waiting.message_id == message_id)
        ).first()
        if row is None:
            self._not_waiting.add(key)
            return None
        self._waiting[key] = (row[0], row[1])
        return row[1]

    def park(self, row: Waiting) -> None:
        """Keep a message to handle again later (buffered rows are written first)."""
        self.flush()
        self.session.add(row)
        self.session.flush()
        assert row.id is not None
        key = (row.sender_id, row.message_id)
        self._waiting[key] = (row.id, row.journal_id)
        self._not_waiting.discard(key)

    def take_waiting(self, waiting_id: int) -> bool:
        """Take a waiting message to handle it: True if this unit of work got it first."""
        result = self.session.execute(delete(Waiting).where(col(Waiting.id) == waiting_id))
        for key, (known, _) in list(self._waiting.items()):
            if known == waiting_id:
                del self._waiting[key]
                self._not_waiting.add(key)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- business state ------------------------------------------------------------------

    def save_enterprise(self, uscc: str, name: str, customs_code: str) -> Enterprise:
        """Create or update an enterprise."""
        row = self.get(Enterprise, uscc, lock=False) or Enterprise(
            uscc=uscc, name=name, customs_code=customs_code, updated_at=utcnow()
        )
        row.name, row.customs_code, row.updated_at = name, customs_code, utcnow()
        self.session.add(row)
        self.session.flush()
        self._keep((row,))
        return row

    def card(self, card_no: str) -> BoundCard | None:
        """A bound card by number, locked (as ``get``)."""
        return self.get(BoundCard, card_no)

    def save_card(self, card: BoundCard, seals: Iterable[Seal]) -> None:
        """Create or replace a card binding and the seals made for its holder."""
        stored = self.get(BoundCard, card.card_no, lock=False)
        if stored is not None and stored.uscc != card.uscc:  # the card changed hands
            listed = self._lists.get((BoundCard, "uscc", stored.uscc))
            if listed is not None:
                listed[:] = [c for c in listed if c is not stored]
        self._put(card, card.card_no)  # (and into the list of its enterprise, as ``add`` does)
        self.session.flush()
        for old in self._many(Seal, "card_no", card.card_no, lambda: self.session.exec(
                select(Seal).where(Seal.card_no == card.card_no)).all()):
            self.session.delete(old)
        self._lists.pop((Seal, "card_no", card.card_no), None)
        self.session.flush()
        for seal in seals:
            self._put(seal, seal.seal_id)

    def _put(self, row: T, key: Any) -> None:
        """Insert ``row``, or copy it onto the row stored under ``key`` (a merge that knows,
        from what was read ahead, whether the row exists)."""
        stored = self.get(type(row), key, lock=False)
        if stored is None:
            self.add(row)
            return
        for name in type(row).model_fields:
            setattr(stored, name, getattr(row, name))
        self.add(stored)

    def cards_of(self, uscc: str) -> Sequence[BoundCard]:
        """Every card bound to an enterprise."""
        return self._many(BoundCard, "uscc", uscc, lambda: self.session.exec(
            select(BoundCard).where(BoundCard.uscc == uscc)).all())


    def credit(self, uscc: str) -> Credit | None:
        """The credit rating on file, locked (as ``get``)."""
        return self.get(Credit, uscc)

    def save_credit(
        self,
        *,
        uscc: str,
        customs_code: str,
        rating: str,
        rated_date: date,
        records: list[dict[str, str]],
        message_id: str,
    ) -> Credit:
        """Create or replace the credit rating of an enterprise."""
        row = self.get(Credit, uscc, lock=False) or Credit(
            uscc=uscc,
            customs_code=customs_code,
            rating=rating,
            rated_date=rated_date,
            message_id=message_id,
            updated_at=utcnow(),
        )
        row.customs_code, row.rating, row.rated_date = customs_code, rating, rated_date
        row.records = json.dumps(records, ensure_ascii=False)
        row.message_id, row.updated_at = message_id, utcnow()
        self.session.add(row)
        self._keep((row,))
        return row


    # -- generic -------------------------------------------------------------------------
    def get(self, model: type[T], key: Any, *, lock: bool = True) -> T | None:
        """A row by primary key, locked until the unit of work ends (PostgreSQL; SQLite has
        one writer at a time anyway): a process that decides on the row's state is the only
        one doing so, and another waits to see what it decided. ``lock=False`` for a row
        only written (an upsert), whose unique key settles any race."""
        return self._one(model, None, key, lambda: self.session.get(
            model, key, with_for_update=True if lock else None))

    def read_ahead(self, rows: Mapping[tuple[type[SQLModel], str | None], Iterable[Any]],
                   lists: Mapping[tuple[type[SQLModel], str], Iterable[Any]] | None = None
                   ) -> None:
        """Load what a batch's handlers will look up, one query per table and key column:
        ``rows`` by a unique key (``(Quota, None)``: by primary key; ``(Policy, "policy_no")``),
        locked as ``get`` locks them, in key order (every process takes them in that order, so
        two never wait for each other); ``lists`` whole (``(LedgerEntry,
        "guarantee_record_no")``: a guarantee's lines).

        The keys are hints (read off the bytes before any check): a key not looked up later
        costs a row read, a key missed costs the query the lookup would have made anyway.
        """
        for (model, column), wanted in rows.items():
            held = self._held.setdefault((model, column), set())
            new = sorted({k for k in wanted if k} - held)
            if not new:
                continue
            (key,) = inspect(model).primary_key
            by = getattr(model, column) if column else key
            self._keep(self.session.execute(
                select(model).where(by.in_(new)).order_by(key).with_for_update()).scalars())
            held.update(new)
        for (model, column), wanted in (lists or {}).items():
            new = sorted({k for k in wanted if k and (model, column, k) not in self._lists})
            if not new:
                continue
            (key,) = inspect(model).primary_key
            found: dict[Any, list[Any]] = {k: [] for k in new}
            for row in self.session.execute(
                    select(model).where(getattr(model, column).in_(new)).order_by(key)).scalars():
                found[getattr(row, column)].append(row)
                self._keep((row,))
            self._lists.update({(model, column, k): found[k] for k in new})
            self._list_columns.setdefault(model, set()).add(column)

    def held_values(self, model: type[SQLModel], column: str) -> set[Any]:
        """The values of ``column`` in the rows of ``model`` this unit of work holds (the keys
        of rows to read ahead after them: a policy's enterprise)."""
        return {getattr(row, column) for row in self._kept.get(model, {}).values()
                if row in self.session}

    def _keep(self, rows: Iterable[T]) -> list[T]:
        kept = list(rows)
        for row in kept:
            self._kept.setdefault(type(row), {})[id(row)] = row
        return kept

    def _one(self, model: type[T], column: str | None, value: Any,
             query: Callable[[], T | None]) -> T | None:
        """The row whose ``column`` is ``value``: as this unit of work sees it if it was read
        ahead (changed, added or deleted by an earlier message of the batch, or taken back
        with a savepoint), else by ``query``."""
        if value not in self._held.get((model, column), ()):
            found = query()
            return self._keep((found,))[0] if found is not None else None
        if column is None:  # by primary key: the session's identity map, else a row added
            found = self.session.identity_map.get(self.session.identity_key(model, value))
            if found is not None:
                return found if found in self.session else None  # type: ignore[no-any-return]
            mapper = inspect(model)
            return next((row for row in self.session.new if isinstance(row, model)
                         and tuple(mapper.primary_key_from_instance(row)) == (value,)), None)
        for row in self._kept.get(model, {}).values():
            if row in self.session and getattr(row, column) == value:
                return row  # type: ignore[no-any-return]
        return None

    def _many(self, model: type[T], column: str, value: Any,
              query: Callable[[], Sequence[T]]) -> list[T]:
        """Every row whose ``column`` is ``value``: the list read ahead (with the rows added
        since), else by ``query``."""
        listed = self._lists.get((model, column, value))
        return list(listed) if listed is not None else self._keep(query())

    def add(self, row: SQLModel) -> None:
        """Insert or update a row in this unit of work (written at the next flush, or before
        the next query that could see it)."""
        self.session.add(row)
        self._keep((row,))
        for column in self._list_columns.get(type(row), ()):
            listed = self._lists.get((type(row), column, getattr(row, column)))
            if listed is not None and not any(r is row for r in listed):
                listed.append(row)

    # -- business queries ------------------------------------------------------------------
    def agreement_effective(self, uscc: str) -> bool:
        """Whether the enterprise has an EFFECTIVE tripartite agreement (from its list of
        agreements when it was read ahead)."""
        listed = self._lists.get((Agreement, "uscc", uscc))
        if listed is not None:
            return any(a.status == "EFFECTIVE" for a in listed)
        return self.session.exec(
            select(Agreement.agreement_no).where(
                Agreement.uscc == uscc, Agreement.status == "EFFECTIVE"
            )
        ).first() is not None

    def authorizations(self, uscc: str, insurer_code: str) -> Sequence[Authorization]:
        """The enterprise's authorizations to an insurer, newest first (from the enterprise's
        list when it was read ahead)."""
        every = self._many(Authorization, "uscc", uscc, lambda: self.session.exec(
            select(Authorization).where(Authorization.uscc == uscc)
            .order_by(Authorization.auth_no)).all())
        return sorted((a for a in every if a.insurer_code == insurer_code),
                      key=lambda a: a.valid_to, reverse=True)

    def quotas_of(self, uscc: str) -> Sequence[Quota]:
        """Every quota of an enterprise."""
        return self._many(Quota, "uscc", uscc, lambda: self.session.exec(
            select(Quota).where(Quota.uscc == uscc)).all())

    def increases_of(self, quota_no: str) -> Sequence[Increase]:
        """Every increase of a quota."""
        return self._many(Increase, "quota_no", quota_no, lambda: self.session.exec(
            select(Increase).where(Increase.quota_no == quota_no)).all())

    def live_insured(self, quota_no: str, live: Sequence[str]) -> Decimal:
        """The insured amounts of a quota's policies in one of the ``live`` statuses (from
        the quota's list of policies when it was read ahead)."""
        listed = self._lists.get((Policy, "quota_no", quota_no))
        if listed is not None:
            return sum((Decimal(p.insured_amount) for p in listed if p.status in live),
                       Decimal(0))
        rows = self.session.exec(
            select(Policy.insured_amount).where(
                Policy.quota_no == quota_no, col(Policy.status).in_(list(live))
            )
        ).all()
        return sum((Decimal(r) for r in rows), Decimal(0))

    def policy_by_no(self, policy_no: str) -> Policy | None:
        """A policy by its PolicyNo."""
        return self._one(Policy, "policy_no", policy_no, lambda: self.session.exec(
            select(Policy).where(Policy.policy_no == policy_no).with_for_update()).first())

    def policy_by_record(self, guarantee_record_no: str) -> Policy | None:
        """A policy by the customs GuaranteeRecordNo, locked: the lines of one guarantee are
        computed one after the other, each on the ledger the previous one left."""
        return self._one(Policy, "guarantee_record_no", guarantee_record_no,
                         lambda: self.session.exec(
                             select(Policy)
                             .where(Policy.guarantee_record_no == guarantee_record_no)
                             .with_for_update()).first())

    def ledger(self, guarantee_record_no: str) -> Sequence[LedgerEntry]:
        """A guarantee's ledger lines, oldest first."""
        return self._many(LedgerEntry, "guarantee_record_no", guarantee_record_no,
                          lambda: self.session.exec(
                              select(LedgerEntry)
                              .where(LedgerEntry.guarantee_record_no == guarantee_record_no)
                              .order_by(col(LedgerEntry.id))).all())

    def claims_of(self, uscc: str) -> Sequence[Claim]:
        """Every claim on an enterprise's policies."""
        return self._keep(self.session.exec(
            select(Claim).where(Claim.uscc == uscc).order_by(col(Claim.created_at))))

    def progress(self, uscc: str, subject: str, subject_no: str, status: str,
                 reason: str | None, message_id: str | None, at: datetime) -> None:
        """Record a status an enterprise's subject took."""
        self.recorder.append(_PROGRESS, {"uscc": uscc, "subject": subject,
                                         "subject_no": subject_no, "status": status,
                                         "reason": reason, "message_id": message_id, "at": at})

    def transition(self, model: type[SQLModel], key_column: Any, key: str, expected: str,
                   new: str, at: datetime) -> bool:
        """``UPDATE … SET status=new WHERE key AND status=expected``: True if this call won.

        Used where two processes could race to apply the same transition (expiry).
        """
        result = self.session.execute(
            update(model).where(key_column == key, model.status == expected)  # type: ignore[attr-defined]
            .values(status=new, updated_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


@translating
def expiry_candidates(engine: Engine, on: date) -> tuple[list[str], list[str]]:
    """Quota numbers APPROVED past ValidTo and policy numbers RECORDED past TermEnd."""
    with Session(engine) as session:
        quotas = session.exec(
            select(Quota.quota_no).where(Quota.status == "APPROVED", col(Quota.valid_to) < on)
        ).all()
        policies = session.exec(
            select(Policy.apply_no).where(Policy.status == "RECORDED", col(Policy.term_end) < on)
        ).all()
    return list(quotas), list(policies)


@translating
def due_waiting(engine: Engine, now: datetime, *, limit: int) -> list[Waiting]:
    """Waiting messages whose next try is due, oldest first."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(Waiting).where(col(Waiting.retry_at) <= now)
                                 .order_by(col(Waiting.retry_at)).limit(limit)).all())


@translating
def waiting_count(engine: Engine) -> int:
    """How many messages wait for the one they depend on."""
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Waiting)).one())


# -- partners -----------------------------------------------------------------------------
@translating
def load_partners(engine: Engine) -> list[tuple[Partner, list[str]]]:
    """Every partner with the PEM texts of its certificates."""
    with Session(engine, expire_on_commit=False) as session:
        partners = session.exec(select(Partner)).all()
        certs = session.exec(select(PartnerCert)).all()
    pems: dict[str, list[str]] = {}
    for cert in certs:
        pems.setdefault(cert.partner_id, []).append(cert.pem)
    return [(p, pems.get(p.id, [])) for p in partners]


@translating
def partner_certs(engine: Engine) -> list[PartnerCert]:
    """Every registered certificate."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(PartnerCert).order_by(PartnerCert.partner_id)).all())


@translating
def save_partner(engine: Engine, partner: Partner, cert: PartnerCert | None) -> None:
    """Create or update a partner and add a certificate (idempotent on its fingerprint)."""
    with Session(engine, expire_on_commit=False) as session:
        existing = session.get(Partner, partner.id)
        if existing is not None:
            partner.created_at = existing.created_at
        session.merge(partner)
        session.flush()
        if cert is not None:
            known = session.exec(
                select(PartnerCert).where(
                    PartnerCert.partner_id == partner.id,
                    PartnerCert.fingerprint == cert.fingerprint,
                )
            ).first()
            if known is None:
                session.add(cert)
        session.commit()


@translating
def set_partner_enabled(engine: Engine, party_id: str, enabled: bool) -> bool:
    """Enable or disable a partner; False when there is no such partner."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(Partner, party_id)
        if row is None:
            return False
        row.enabled, row.updated_at = enabled, utcnow()
        session.add(row)
        session.commit()
        return True


# -- outbox relay -------------------------------------------------------------------------
@translating
def claim_outbox(
    engine: Engine, owner: str, *, limit: int, lease_s: float, ids: Sequence[int] | None = None
) -> list[Outbox]:
    """Claim PENDING rows to publish: ours by id, or any whose lease ran out.

    A conditional UPDATE per row (works on SQLite and PostgreSQL alike): a row is ours only
    if the update matched it, so two relays never publish the same row at the same moment.
    """
    now = utcnow()
    until = now + timedelta(seconds=lease_s)
    claimed: list[Outbox] = []
    with Session(engine, expire_on_commit=False) as session:
        query = select(Outbox.id).where(Outbox.state == "PENDING")
        if ids is not None:
            query = query.where(col(Outbox.id).in_(list(ids)))
        else:
            query = query.where(Outbox.next_attempt_at <= now).where(
                or_(
                    col(Outbox.lease_until).is_(None),
                    col(Outbox.lease_until) < now,
                    Outbox.claimed_by == owner,
                )
            )
        candidates = session.exec(query.order_by(Outbox.id).limit(limit)).all()
        for row_id in candidates:
            guard = update(Outbox).where(col(Outbox.id) == row_id, Outbox.state == "PENDING")
            if ids is None:
                guard = guard.where(
                    or_(
                        col(Outbox.lease_until).is_(None),
                        col(Outbox.lease_until) < now,
                        Outbox.claimed_by == owner,
                    )
                )
            result = session.execute(guard.values(claimed_by=owner, lease_until=until))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(row_id)  # type: ignore[arg-type]
        session.commit()
        if not claimed:
            return []
        return list(
            session.exec(select(Outbox).where(col(Outbox.id).in_(claimed)).order_by(Outbox.id))
        )


@translating
def release_leases_of_dead(engine: Engine, host: str, alive: Callable[[int], bool]) -> int:
    """Release the leases of PENDING outbox rows held by processes of ``host`` that are gone
    (owners are ``host:pid``); returns how many rows were released."""
    with Session(engine) as session:
        owners = session.exec(select(Outbox.claimed_by).where(
            Outbox.state == "PENDING", col(Outbox.claimed_by).startswith(f"{host}:"),
            col(Outbox.lease_until) > utcnow()).distinct()).all()
        dead = [o for o in owners if o and o.rsplit(":", 1)[1].isdigit()
                and not alive(int(o.rsplit(":", 1)[1]))]
        if not dead:
            return 0
        result = session.execute(update(Outbox).where(
            Outbox.state == "PENDING", col(Outbox.claimed_by).in_(dead))
            .values(lease_until=None))
        session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PublishResult:
    """What the broker said about one outbox row (and the outbound journal row it tells)."""

    outbox_id: int
    state: str  # SENT, UNROUTABLE, PENDING (retry later)
    detail: str | None = None
    journal_id: int | None = None  # the outbound journal row (a re-send shares it)


@translating
def record_publish(engine: Engine, results: Sequence[PublishResult], retry_after_s: float) -> None:
    """``mark_published`` in a transaction of its own (an idle relay, a sweep, a stop)."""
    if not results:
        return
    with engine.begin() as conn:
        mark_published(conn, results, retry_after_s)


def mark_published(conn: Any, results: Sequence[PublishResult], retry_after_s: float) -> None:
    """Mark rows sent (only on the broker's ack), unroutable, or due for another attempt,
    with their outbound journal rows and a publish event each.

    A handful of statements whatever the number of rows (rows with the same answer are
    updated together); the daemon runs them in its next batch's transaction."""
    if not results:
        return
    now = utcnow()
    outbox, journal, events = Outbox.__table__, Journal.__table__, JournalEvent.__table__  # type: ignore[attr-defined]
    owners = {r.outbox_id: r.journal_id for r in results if r.journal_id is not None}
    answers: dict[tuple[str, str | None], list[int]] = {}
    for r in results:
        answers.setdefault((r.state, r.detail), []).append(r.outbox_id)
    for (state, detail), ids in answers.items():
        values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "state": state,
                                  "last_error": detail, "claimed_by": None,
                                  "lease_until": None}
        if state == "SENT":
            values["sent_at"] = now
        else:
            values["next_attempt_at"] = now + timedelta(seconds=retry_after_s)
        conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(**values))
        journals = sorted({owners[i] for i in ids if i in owners})
        if journals:
            conn.execute(update(journal).where(
                journal.c.id.in_(journals),
                journal.c.status.in_(("PENDING", "UNROUTABLE", "SENT")),
            ).values(status=state, updated_at=now))
    rows = [{"journal_id": owners[r.outbox_id], "at": now, "stage": "publish",
             "status": r.state, "detail": r.detail}
            for r in results if r.outbox_id in owners]
    if rows:
        conn.execute(insert(events), rows)


@translating
def outbox_backlog(engine: Engine) -> dict[str, Any]:
    """Counts of outbox rows by state and the age of the oldest pending one."""
    with Session(engine, expire_on_commit=False) as session:
        counts = dict(
            session.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all()  # type: ignore[arg-type]
        )
        oldest = session.exec(
            select(func.min(Outbox.created_at)).where(Outbox.state == "PENDING")
        ).first()
    return {"counts": counts, "oldest_pending": oldest}


@translating
def alert_counts(engine: Engine, *, unanswered_after_s: float) -> dict[str, int]:
    """What operators must look at: unroutable messages, ledger discrepancies, partner
    refusals, and our messages no partner receipt answered in time."""
    cutoff = utcnow() - timedelta(seconds=unanswered_after_s)
    with Session(engine) as session:
        unroutable = session.exec(
            select(func.count()).select_from(Outbox).where(Outbox.state == "UNROUTABLE")
        ).one()
        discrepancies = session.exec(  # the last day's: older ones were seen and handled
            select(func.count()).select_from(LedgerEntry)
            .where(col(LedgerEntry.discrepancy).is_not(None),
                   LedgerEntry.created_at >= utcnow() - timedelta(days=1))
        ).one()
        refused = session.exec(
            select(func.count()).select_from(Journal)
            .where(Journal.direction == "OUT", Journal.status == "REFUSED_BY_PARTNER")
        ).one()
        unanswered = session.exec(  # from the partial index alone (migration 0005)
            select(func.count()).select_from(Journal)
            .where(text(UNANSWERED), Journal.updated_at < cutoff)
        ).one()
    return {"unroutable": int(unroutable), "ledger_discrepancies": int(discrepancies),
            "refused_by_partner": int(refused), "unanswered": int(unanswered)}


# -- operator queries ---------------------------------------------------------------------
@dataclass(frozen=True)
class JournalFilter:
    """What ``cdgi log`` and ``cdgi replay`` select by."""

    message_id: str | None = None
    message_type: str | None = None
    partner: str | None = None
    status: str | None = None
    direction: str | None = None
    uscc: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None
    limit: int = 50


@translating
def find_journal(engine: Engine, f: JournalFilter) -> list[Journal]:
    """Journal rows matching ``f``, newest first (or oldest first after ``after_id``).

    Newest first is by ``created_at`` then id, the order of the journal's indexes (each ends
    in the time; SQLite's and PostgreSQL's then in the row): the newest 50 of a type, status
    or partner are read off an index's end. Ordered by id alone, SQLite sorted every row of a
    type for them (400 ms over a million rows). An enterprise's or a message's rows are few:
    they are found by their own index and sorted by id. A partner is a sender or a receiver:
    each side's newest rows come from its own index and the newest of both are kept."""
    with Session(engine, expire_on_commit=False) as session:
        common = []
        if f.message_id:
            common.append(_about(f.message_id))
        if f.message_type:
            common.append(Journal.message_type == f.message_type)
        if f.status:
            common.append(Journal.status == f.status.upper())
        if f.direction:
            common.append(Journal.direction == f.direction.upper())
        if f.uscc:
            common.append(Journal.uscc == f.uscc)
        if f.since:
            common.append(Journal.created_at >= f.since)
        if f.until:
            common.append(Journal.created_at < f.until)
        if f.after_id is not None:
            query = select(Journal).where(*common, col(Journal.id) > f.after_id)
            if f.partner:
                query = query.where(
                    or_(Journal.sender_id == f.partner, Journal.receiver_id == f.partner))
            return list(session.exec(query.order_by(col(Journal.id)).limit(f.limit)).all())
        # An enterprise or a message has few rows, found by their own index and sorted.
        by_id = bool(f.uscc or f.message_id)
        newest = ((col(Journal.id).desc(),) if by_id
                  else (col(Journal.created_at).desc(), col(Journal.id).desc()))
        if not f.partner:
            return list(session.exec(
                select(Journal).where(*common).order_by(*newest).limit(f.limit)).all())
        found: dict[int, Journal] = {}
        for side in (Journal.sender_id, Journal.receiver_id):
            for row in session.exec(select(Journal).where(*common, side == f.partner)
                                    .order_by(*newest).limit(f.limit)).all():
                assert row.id is not None
                found[row.id] = row
        return sorted(found.values(), key=lambda r: (r.id,) if by_id else (r.created_at, r.id),
                      reverse=True)[:f.limit]


def _about(message_id: str) -> Any:
    """Journal rows with this MessageId or answering it: each side on its own index (an OR
    has SQLite scan the whole table in id order when the query is ordered by id)."""
    ids = union(select(Journal.id).where(Journal.message_id == message_id),
                select(Journal.id).where(Journal.correlation_id == message_id))
    return col(Journal.id).in_(select(ids.subquery().c.id))


@translating
def journal_story(engine: Engine, key: str) -> list[tuple[Journal, list[JournalEvent]]]:
    """Every journal row of a message id (or journal id), with its events, oldest first."""
    with Session(engine, expire_on_commit=False) as session:
        rows: list[Journal] = []
        if key.isdigit():
            row = session.get(Journal, int(key))
            rows = [row] if row else []
        if not rows:
            rows = list(
                session.exec(
                    select(Journal).where(_about(key)).order_by(col(Journal.id))
                ).all()
            )
        story = []
        for row in rows:
            events = session.exec(
                select(JournalEvent)
                .where(JournalEvent.journal_id == row.id)
                .order_by(col(JournalEvent.id))
            ).all()
            story.append((row, list(events)))
        return story




@translating
def requeue_outbound(engine: Engine, journal_id: int, note: str) -> int | None:
    """Publish an outbound message again, byte-identical; returns the new outbox id."""
    with Session(engine, expire_on_commit=False) as session:
        original = session.exec(
            select(Outbox).where(Outbox.journal_id == journal_id).order_by(col(Outbox.id).desc())
        ).first()
        if original is None:
            return None
        session.execute(  # the copies no queue took are replaced by this one
            update(Outbox)
            .where(col(Outbox.journal_id) == journal_id, Outbox.state == "UNROUTABLE")
            .values(state="REPLACED")
        )
        row = resend_of(original)
        now = row.created_at
        session.add(row)
        session.add(
            JournalEvent(
                journal_id=journal_id, at=now, stage="replay", status="PENDING", detail=note
            )
        )
        session.commit()
        return row.id
