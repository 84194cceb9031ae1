"""Persistence records: the tables of the adapter's SQL store.

These are records, not domain objects. Times are stored in UTC (timezone-aware where the
database keeps the zone, naive UTC on SQLite: read them through ``store.db.as_utc``). Money,
when it arrives with the business issue, is ``Numeric(18, 2)``, never float.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel


def _ts(*, index: bool = False, nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), index=index, nullable=nullable)


def _money(*, nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(Numeric(18, 2), nullable=nullable)


def _rate() -> Column:  # type: ignore[type-arg]
    return Column(Numeric(12, 6), nullable=True)


class Partner(SQLModel, table=True):
    """A registered party: who may send to us, who we publish to, in which dialect."""

    __tablename__ = "partner"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    dialect: str = Field(default="canonical", max_length=32)
    enabled: bool = True
    broker_user: str | None = Field(default=None, max_length=64)
    allow_sha1_until: date | None = None
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class PartnerCert(SQLModel, table=True):
    """A certificate a partner signs with; only these are trusted for that sender."""

    __tablename__ = "partner_cert"
    __table_args__ = (UniqueConstraint("partner_id", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: str = Field(foreign_key="partner.id", index=True, max_length=32)
    fingerprint: str = Field(max_length=64)
    subject: str = Field(max_length=500)
    pem: str = Field(sa_column=Column(Text, nullable=False))
    not_before: datetime = Field(sa_column=_ts())
    not_after: datetime = Field(sa_column=_ts())
    added_at: datetime = Field(sa_column=_ts())


UNANSWERED = "direction = 'OUT' AND status = 'SENT' AND message_type <> 'CDGI900'"
"""Our messages that wait for their partner's receipt (a receipt of ours is never answered):
the predicate of the partial index ``ix_journal_unanswered`` (migration 0005). A query that
repeats it word for word is answered from that index on SQLite as on PostgreSQL."""


class Journal(SQLModel, table=True):
    """Every message in and out, kept whole: what ``cdgi log``, ``why`` and ``replay`` read."""

    __tablename__ = "journal"
    __table_args__ = (
        Index("ix_journal_type_created", "message_type", "created_at"),
        Index("ix_journal_sender_created", "sender_id", "created_at"),
        Index("ix_journal_receiver_created", "receiver_id", "created_at"),
        Index("ix_journal_status_created", "status", "created_at"),
        Index("ix_journal_unanswered", "status", "updated_at",
              sqlite_where=text(UNANSWERED), postgresql_where=text(UNANSWERED)),
    )

    id: int | None = Field(default=None, primary_key=True)
    direction: str = Field(max_length=3)
    message_id: str | None = Field(default=None, index=True, max_length=64)
    message_type: str | None = Field(default=None, max_length=16)
    sender_id: str | None = Field(default=None, max_length=32)
    receiver_id: str | None = Field(default=None, max_length=32)
    correlation_id: str | None = Field(default=None, index=True, max_length=64)
    uscc: str | None = Field(default=None, index=True, max_length=18)
    routing_key: str | None = Field(default=None, max_length=255)
    digest: str | None = Field(default=None, max_length=64)
    size: int = 0
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    canonical: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status: str = Field(max_length=24)
    code: str | None = Field(default=None, max_length=4)
    info: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=_ts(index=True))
    updated_at: datetime = Field(sa_column=_ts())


class JournalEvent(SQLModel, table=True):
    """One step of a message's story: a stage passed, a refusal, a publish, a partner receipt."""

    __tablename__ = "journal_event"

    id: int | None = Field(default=None, primary_key=True)
    journal_id: int = Field(foreign_key="journal.id", index=True)
    at: datetime = Field(sa_column=_ts())
    stage: str = Field(max_length=24)
    status: str = Field(max_length=24)
    code: str | None = Field(default=None, max_length=4)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Inbox(SQLModel, table=True):
    """Dedupe: one row per inbound message, written in the same transaction as its effect.

    ``sender_key``/``message_key`` are (SenderId, MessageId) for a message whose envelope
    signature verified, and (routing key, ``sha256:<raw digest>``) for one that could not be
    trusted, so that a redelivered bad message gets its original receipt again too.
    """

    __tablename__ = "inbox"

    sender_key: str = Field(primary_key=True, max_length=64)
    message_key: str = Field(primary_key=True, max_length=80)
    digest: str = Field(max_length=64)
    journal_id: int = Field(foreign_key="journal.id")
    receipt_outbox_id: int | None = None
    received_at: datetime = Field(sa_column=_ts())


class Waiting(SQLModel, table=True):
    """An inbound message that came before the one it depends on (a restore before its
    deduction): kept whole, not yet answered, handled again from ``retry_at`` on; once
    ``until`` has passed it is handled as it stands (a restore then is flagged 2802)."""

    __tablename__ = "waiting"
    __table_args__ = (UniqueConstraint("sender_id", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    journal_id: int = Field(foreign_key="journal.id")
    sender_id: str = Field(max_length=32)
    message_id: str = Field(max_length=64)
    routing_key: str = Field(max_length=255)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = 0
    first_seen: datetime = Field(sa_column=_ts())
    retry_at: datetime = Field(sa_column=_ts(index=True))
    until: datetime = Field(sa_column=_ts())


class Outbox(SQLModel, table=True):
    """Signed bytes waiting for (or past) the broker's confirm; resends are byte-identical."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    journal_id: int = Field(foreign_key="journal.id", index=True)
    message_id: str = Field(index=True, max_length=64)
    message_type: str = Field(max_length=16)
    receiver_id: str = Field(max_length=32)
    correlation_id: str | None = Field(default=None, max_length=64)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(default="PENDING", max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=_ts())
    next_attempt_at: datetime = Field(sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Enterprise(SQLModel, table=True):
    """An importer known through its card bindings and credit information."""

    __tablename__ = "enterprise"

    uscc: str = Field(primary_key=True, max_length=18)
    name: str = Field(max_length=200)
    customs_code: str = Field(max_length=10)
    updated_at: datetime = Field(sa_column=_ts())


class BoundCard(SQLModel, table=True):
    """An enterprise IC card bound through the portal (CDGI101)."""

    __tablename__ = "bound_card"

    card_no: str = Field(primary_key=True, max_length=32)
    uscc: str = Field(foreign_key="enterprise.uscc", index=True, max_length=18)
    role: str = Field(max_length=16)
    certificate_pem: str = Field(sa_column=Column(Text, nullable=False))
    fingerprint: str = Field(max_length=64)
    valid_from: date
    valid_to: date
    revoked: bool = False
    permissions: str = Field(default="", max_length=200)  # comma-separated, granted by CDGI103
    message_id: str = Field(max_length=64)
    updated_at: datetime = Field(sa_column=_ts())


class Seal(SQLModel, table=True):
    """An electronic seal made for a card's holder (印章制作)."""

    __tablename__ = "seal"

    seal_id: str = Field(primary_key=True, max_length=64)
    card_no: str = Field(foreign_key="bound_card.card_no", index=True, max_length=32)
    holder_name: str = Field(max_length=100)
    valid_from: date
    valid_to: date


class Credit(SQLModel, table=True):
    """The customs credit rating of an enterprise (CDGI401), latest wins by RatedDate."""

    __tablename__ = "credit"

    uscc: str = Field(primary_key=True, max_length=18)
    customs_code: str = Field(max_length=10)
    rating: str = Field(max_length=16)
    rated_date: date
    records: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=64)
    updated_at: datetime = Field(sa_column=_ts())


class Agreement(SQLModel, table=True):
    """A tripartite agreement (enterprise, bank, customs) forwarded to the bank (CDGI105)."""

    __tablename__ = "agreement"

    agreement_no: str = Field(primary_key=True, max_length=50)
    uscc: str = Field(index=True, max_length=18)
    bank_code: str = Field(max_length=16)
    customs_district: str = Field(max_length=4)
    status: str = Field(max_length=16)
    effective_date: date | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class Authorization(SQLModel, table=True):
    """An authorization letter to an insurer (CDGI107)."""

    __tablename__ = "authorization"

    auth_no: str = Field(primary_key=True, max_length=50)
    uscc: str = Field(index=True, max_length=18)
    insurer_code: str = Field(max_length=16)
    scopes: str = Field(max_length=200)  # comma-separated
    valid_to: date
    status: str = Field(max_length=16)
    message_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class Quota(SQLModel, table=True):
    """A guarantee-insurance quota (额度) applied for through the portal (CDGI109)."""

    __tablename__ = "quota"
    __table_args__ = (Index("ix_quota_status_valid_to", "status", "valid_to"),)

    quota_no: str = Field(primary_key=True, max_length=50)
    uscc: str = Field(index=True, max_length=18)
    insurer_code: str = Field(max_length=16)
    status: str = Field(max_length=16)
    applied_amount: Decimal = Field(sa_column=_money())
    term_start: date
    term_end: date
    prev_quota_no: str | None = Field(default=None, max_length=50)
    contact_name: str | None = Field(default=None, max_length=100)
    contact_phone: str | None = Field(default=None, max_length=30)
    approved_amount: Decimal | None = Field(default=None, sa_column=_money(nullable=True))
    rate: Decimal | None = Field(default=None, sa_column=_rate())
    valid_from: date | None = None
    valid_to: date | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class Increase(SQLModel, table=True):
    """An increase of an approved quota (额度追加, CDGI111)."""

    __tablename__ = "increase"

    increase_no: str = Field(primary_key=True, max_length=50)
    quota_no: str = Field(index=True, max_length=50)
    amount: Decimal = Field(sa_column=_money())
    status: str = Field(max_length=16)
    approved_amount: Decimal | None = Field(default=None, sa_column=_money(nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class Policy(SQLModel, table=True):
    """An insurance application and, once issued, the electronic policy (CDGI113/305/403)."""

    __tablename__ = "policy"
    __table_args__ = (Index("ix_policy_status_term_end", "status", "term_end"),)

    apply_no: str = Field(primary_key=True, max_length=50)
    policy_no: str | None = Field(default=None, unique=True, max_length=50)
    quota_no: str = Field(index=True, max_length=50)
    uscc: str = Field(index=True, max_length=18)
    insurer_code: str = Field(max_length=16)
    insured_amount: Decimal = Field(sa_column=_money())
    term_start: date
    term_end: date
    insured_customs: str = Field(max_length=200)  # comma-separated districts, first = registration
    coverage: str = Field(max_length=200)  # comma-separated
    invoice: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    status: str = Field(max_length=16)
    premium: Decimal | None = Field(default=None, sa_column=_money(nullable=True))
    rate: Decimal | None = Field(default=None, sa_column=_rate())
    epolicy_file_name: str | None = Field(default=None, max_length=255)
    epolicy_media_type: str | None = Field(default=None, max_length=64)
    epolicy_sha256: str | None = Field(default=None, max_length=64)
    epolicy_content: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    guarantee_record_no: str | None = Field(default=None, unique=True, max_length=50)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class LedgerEntry(SQLModel, table=True):
    """A customs deduction or restoration against a recorded policy's guarantee."""

    __tablename__ = "ledger_entry"

    id: int | None = Field(default=None, primary_key=True)
    guarantee_record_no: str = Field(index=True, max_length=50)
    policy_no: str = Field(max_length=50)
    entry_id: str = Field(index=True, max_length=18)
    kind: str = Field(max_length=8)  # DEDUCT / RESTORE
    amount: Decimal = Field(sa_column=_money())
    declaration_type: str | None = Field(default=None, max_length=4)
    customs_district: str | None = Field(default=None, max_length=4)
    tax_items: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON
    at: datetime = Field(sa_column=_ts())
    due_date: date | None = None
    available_after: Decimal = Field(sa_column=_money())
    discrepancy: str | None = Field(default=None, max_length=4)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class Claim(SQLModel, table=True):
    """A customs claim against a policy and its settlement (CDGI409/307)."""

    __tablename__ = "claim"

    claim_no: str = Field(primary_key=True, max_length=50)
    policy_no: str = Field(index=True, max_length=50)
    guarantee_record_no: str = Field(max_length=50)
    uscc: str = Field(index=True, max_length=18)
    insurer_code: str = Field(max_length=16)
    cause: str = Field(max_length=16)
    entries: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    total: Decimal = Field(sa_column=_money())
    notice_date: date
    status: str = Field(max_length=16)
    paid_amount: Decimal | None = Field(default=None, sa_column=_money(nullable=True))
    paid_time: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class Progress(SQLModel, table=True):
    """Every status an enterprise's agreement, authorization, quota, increase, policy or claim
    took, in order: the user guide's progress view (``cdgi show``) and the CDGI505 notices."""

    __tablename__ = "progress"
    __table_args__ = (Index("ix_progress_subject", "subject", "subject_no"),)

    id: int | None = Field(default=None, primary_key=True)
    uscc: str = Field(index=True, max_length=18)
    subject: str = Field(max_length=16)
    subject_no: str = Field(max_length=50)
    status: str = Field(max_length=24)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str | None = Field(default=None, max_length=64)
    at: datetime = Field(sa_column=_ts())
