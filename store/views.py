"""Read-only views of the business for ``cdgi show``: what operators and auditors look at.

Every function opens its own short read transaction and returns plain dataclasses (no
session-bound rows), or None when the thing asked for is not in the store. Amounts come
back as ``Decimal`` with exactly two fraction digits, rates as ``Decimal`` with at least
four, times as aware UTC ``datetime``; presentation is the caller's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store.db import as_utc, translating
from store.models import (
    Agreement,
    Authorization,
    BoundCard,
    Claim,
    Credit,
    Enterprise,
    Increase,
    LedgerEntry,
    Partner,
    Policy,
    Progress,
    Quota,
    Seal,
)

__all__ = [
    "LIVE_POLICY_STATUSES",
    "ClaimView",
    "EPolicyFile",
    "EnterpriseView",
    "LedgerView",
    "NoLedger",
    "PolicyView",
    "QuotaView",
    "claim_view",
    "enterprise_view",
    "epolicy_file",
    "ledger_view",
    "policy_view",
    "quota_view",
]

#: Policies whose insured amount is taken out of their quota (CONTRACT §6).
LIVE_POLICY_STATUSES = ("SUBMITTED", "ISSUED", "RECORDED")

_CENT = Decimal("0.01")


def _money(value: Any) -> Decimal:
    return Decimal(value).quantize(_CENT)


def _money_opt(value: Any) -> Decimal | None:
    return None if value is None else _money(value)


def _rate(value: Any) -> Decimal | None:
    """A rate as stored, trailing zeros trimmed down to four fraction digits (0.0080)."""
    if value is None:
        return None
    d = Decimal(value)
    trimmed = d.normalize()
    exponent = trimmed.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -4:
        return d.quantize(Decimal("0.0001"))
    return trimmed


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value)


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


# -- the shapes ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Step:
    """One status a subject took (a Progress row)."""

    at: datetime
    subject: str
    subject_no: str
    status: str
    reason: str | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class SealView:
    seal_id: str
    holder_name: str
    valid_from: date
    valid_to: date


@dataclass(frozen=True, slots=True)
class CardView:
    card_no: str
    role: str
    valid_from: date
    valid_to: date
    revoked: bool
    permissions: list[str]
    fingerprint: str
    seals: list[SealView]


@dataclass(frozen=True, slots=True)
class CreditRecord:
    date: str
    kind: str
    description: str


@dataclass(frozen=True, slots=True)
class CreditView:
    rating: str
    rated_date: date
    customs_code: str
    records: list[CreditRecord]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AgreementRow:
    agreement_no: str
    bank_code: str
    bank_name: str | None
    customs_district: str
    status: str
    effective_date: date | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationRow:
    auth_no: str
    insurer_code: str
    insurer_name: str | None
    scopes: list[str]
    valid_to: date
    status: str


@dataclass(frozen=True, slots=True)
class QuotaRow:
    quota_no: str
    insurer_code: str
    insurer_name: str | None
    status: str
    applied_amount: Decimal
    approved_amount: Decimal | None
    term_start: date
    term_end: date
    valid_from: date | None
    valid_to: date | None


@dataclass(frozen=True, slots=True)
class PolicyRow:
    apply_no: str
    policy_no: str | None
    quota_no: str
    insurer_code: str
    status: str
    insured_amount: Decimal
    term_start: date
    term_end: date
    guarantee_record_no: str | None
    live: bool


@dataclass(frozen=True, slots=True)
class ClaimRow:
    claim_no: str
    policy_no: str
    insurer_code: str
    cause: str
    status: str
    total: Decimal
    paid_amount: Decimal | None
    paid_time: datetime | None


@dataclass(frozen=True, slots=True)
class EnterpriseView:
    uscc: str
    name: str
    customs_code: str
    updated_at: datetime
    credit: CreditView | None
    cards: list[CardView]
    agreements: list[AgreementRow]
    authorizations: list[AuthorizationRow]
    quotas: list[QuotaRow]
    policies: list[PolicyRow]
    claims: list[ClaimRow]


@dataclass(frozen=True, slots=True)
class IncreaseRow:
    increase_no: str
    amount: Decimal
    status: str
    approved_amount: Decimal | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QuotaView:
    quota_no: str
    uscc: str
    enterprise_name: str | None
    insurer_code: str
    insurer_name: str | None
    status: str
    applied_amount: Decimal
    approved_amount: Decimal | None
    rate: Decimal | None
    term_start: date
    term_end: date
    valid_from: date | None
    valid_to: date | None
    prev_quota_no: str | None
    contact_name: str | None
    contact_phone: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    increases: list[IncreaseRow]
    policies: list[PolicyRow]
    approved_increases: Decimal
    live_insured: Decimal
    available: Decimal
    history: list[Step]


@dataclass(frozen=True, slots=True)
class EPolicyMeta:
    file_name: str | None
    media_type: str | None
    sha256: str | None
    size: int | None  # bytes of content kept in the store; None when only the hash came


@dataclass(frozen=True, slots=True)
class LedgerSummary:
    guarantee_record_no: str
    insured_amount: Decimal
    deducted: Decimal
    restored: Decimal
    available: Decimal
    lines: int
    discrepancies: int


@dataclass(frozen=True, slots=True)
class PolicyView:
    apply_no: str
    policy_no: str | None
    quota_no: str
    uscc: str
    enterprise_name: str | None
    insurer_code: str
    insurer_name: str | None
    status: str
    insured_amount: Decimal
    premium: Decimal | None
    rate: Decimal | None
    term_start: date
    term_end: date
    insured_customs: list[str]
    coverage: list[str]
    invoice: dict[str, Any]
    epolicy: EPolicyMeta | None
    guarantee_record_no: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    ledger: LedgerSummary | None
    claims: list[ClaimRow]
    history: list[Step]


@dataclass(frozen=True, slots=True)
class EPolicyFile:
    """The stored e-policy of a policy, for ``--save-epolicy``."""

    apply_no: str
    policy_no: str | None
    file_name: str | None
    media_type: str | None
    sha256: str | None
    content: bytes | None


@dataclass(frozen=True, slots=True)
class ClaimEntry:
    entry_id: str
    tax: Decimal
    due_date: str
    overdue_days: int | None
    late_fee: Decimal


@dataclass(frozen=True, slots=True)
class ClaimView:
    claim_no: str
    policy_no: str
    guarantee_record_no: str
    uscc: str
    enterprise_name: str | None
    insurer_code: str
    insurer_name: str | None
    cause: str
    notice_date: date
    total: Decimal
    entries: list[ClaimEntry]
    entries_total: Decimal
    status: str
    paid_amount: Decimal | None
    paid_time: datetime | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    history: list[Step]


@dataclass(frozen=True, slots=True)
class LedgerLine:
    at: datetime
    entry_id: str
    kind: str
    amount: Decimal
    declaration_type: str | None
    customs_district: str | None
    tax_items: list[tuple[str, Decimal]]
    due_date: date | None
    available_after: Decimal
    discrepancy: str | None
    note: str | None
    message_id: str


@dataclass(frozen=True, slots=True)
class LedgerView:
    guarantee_record_no: str
    policy_no: str | None
    apply_no: str
    uscc: str
    status: str
    insured_amount: Decimal
    term_start: date
    term_end: date
    lines: list[LedgerLine]
    deducted: Decimal
    restored: Decimal
    available: Decimal
    discrepancies: int


# -- helpers -------------------------------------------------------------------------------
def _names(session: Session, kind: str, prefix: str) -> dict[str, str]:
    rows = session.exec(select(Partner.id, Partner.name).where(Partner.kind == kind)).all()
    return {pid.removeprefix(prefix): name for pid, name in rows}


def _enterprise_name(session: Session, uscc: str) -> str | None:
    row = session.get(Enterprise, uscc)
    return row.name if row is not None else None


def _history(session: Session, pairs: Iterable[tuple[str, str]]) -> list[Step]:
    conditions = [
        (col(Progress.subject) == subject) & (col(Progress.subject_no) == no)
        for subject, no in pairs
    ]
    if not conditions:
        return []
    rows = session.exec(
        select(Progress).where(or_(*conditions)).order_by(col(Progress.at), col(Progress.id))
    ).all()
    return [
        Step(
            at=_utc(r.at),  # type: ignore[arg-type]
            subject=r.subject,
            subject_no=r.subject_no,
            status=r.status,
            reason=r.reason,
            message_id=r.message_id,
        )
        for r in rows
    ]


def _policy_row(p: Policy) -> PolicyRow:
    return PolicyRow(
        apply_no=p.apply_no,
        policy_no=p.policy_no,
        quota_no=p.quota_no,
        insurer_code=p.insurer_code,
        status=p.status,
        insured_amount=_money(p.insured_amount),
        term_start=p.term_start,
        term_end=p.term_end,
        guarantee_record_no=p.guarantee_record_no,
        live=p.status in LIVE_POLICY_STATUSES,
    )


def _claim_row(c: Claim) -> ClaimRow:
    return ClaimRow(
        claim_no=c.claim_no,
        policy_no=c.policy_no,
        insurer_code=c.insurer_code,
        cause=c.cause,
        status=c.status,
        total=_money(c.total),
        paid_amount=_money_opt(c.paid_amount),
        paid_time=_utc(c.paid_time),
    )


def _find_policy(session: Session, no: str) -> Policy | None:
    found = session.exec(select(Policy).where(Policy.policy_no == no)).first()
    return found if found is not None else session.get(Policy, no)


def _ledger_lines(rows: Sequence[LedgerEntry]) -> list[LedgerLine]:
    lines = []
    for r in rows:
        items = []
        for item in _json(r.tax_items, []):
            try:
                kind, amount = item
                items.append((str(kind), _money(amount)))
            except (TypeError, ValueError, InvalidOperation):
                continue
        lines.append(
            LedgerLine(
                at=_utc(r.at),  # type: ignore[arg-type]
                entry_id=r.entry_id,
                kind=r.kind,
                amount=_money(r.amount),
                declaration_type=r.declaration_type,
                customs_district=r.customs_district,
                tax_items=items,
                due_date=r.due_date,
                available_after=_money(r.available_after),
                discrepancy=r.discrepancy,
                note=r.note,
                message_id=r.message_id,
            )
        )
    return lines


def _totals(insured: Decimal, lines: Sequence[LedgerLine]) -> tuple[Decimal, Decimal, Decimal]:
    """Deducted, restored, and available = insured − deducted + restored."""
    deducted = sum((x.amount for x in lines if x.kind == "DEDUCT"), Decimal("0.00"))
    restored = sum((x.amount for x in lines if x.kind == "RESTORE"), Decimal("0.00"))
    return deducted, restored, insured - deducted + restored


def _ledger_rows(session: Session, guarantee_record_no: str) -> Sequence[LedgerEntry]:
    return session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.guarantee_record_no == guarantee_record_no)
        .order_by(col(LedgerEntry.id))  # processing order: what available_after followed
    ).all()


# -- the views -----------------------------------------------------------------------------
@translating
def enterprise_view(engine: Engine, uscc: str) -> EnterpriseView | None:
    """An enterprise and everything it has in the store, or None."""
    with Session(engine) as session:
        ent = session.get(Enterprise, uscc)
        if ent is None:
            return None
        insurers = _names(session, "INSURER", "INS.")
        banks = _names(session, "BANK", "BANK.")
        credit_row = session.get(Credit, uscc)
        credit = None
        if credit_row is not None:
            records = [
                CreditRecord(
                    date=str(r.get("date", "")),
                    kind=str(r.get("kind", "")),
                    description=str(r.get("description", "")),
                )
                for r in _json(credit_row.records, [])
                if isinstance(r, dict)
            ]
            credit = CreditView(
                rating=credit_row.rating,
                rated_date=credit_row.rated_date,
                customs_code=credit_row.customs_code,
                records=records,
                updated_at=_utc(credit_row.updated_at),  # type: ignore[arg-type]
            )
        cards = session.exec(
            select(BoundCard).where(BoundCard.uscc == uscc).order_by(col(BoundCard.card_no))
        ).all()
        seals: dict[str, list[SealView]] = {}
        if cards:
            for s in session.exec(
                select(Seal)
                .where(col(Seal.card_no).in_([c.card_no for c in cards]))
                .order_by(col(Seal.seal_id))
            ).all():
                seals.setdefault(s.card_no, []).append(
                    SealView(s.seal_id, s.holder_name, s.valid_from, s.valid_to)
                )
        agreements = session.exec(
            select(Agreement)
            .where(Agreement.uscc == uscc)
            .order_by(col(Agreement.created_at), col(Agreement.agreement_no))
        ).all()
        auths = session.exec(
            select(Authorization)
            .where(Authorization.uscc == uscc)
            .order_by(col(Authorization.created_at), col(Authorization.auth_no))
        ).all()
        quotas = session.exec(
            select(Quota)
            .where(Quota.uscc == uscc)
            .order_by(col(Quota.created_at), col(Quota.quota_no))
        ).all()
        policies = session.exec(
            select(Policy)
            .where(Policy.uscc == uscc)
            .order_by(col(Policy.created_at), col(Policy.apply_no))
        ).all()
        claims = session.exec(
            select(Claim)
            .where(Claim.uscc == uscc)
            .order_by(col(Claim.created_at), col(Claim.claim_no))
        ).all()
        return EnterpriseView(
            uscc=ent.uscc,
            name=ent.name,
            customs_code=ent.customs_code,
            updated_at=_utc(ent.updated_at),  # type: ignore[arg-type]
            credit=credit,
            cards=[
                CardView(
                    card_no=c.card_no,
                    role=c.role,
                    valid_from=c.valid_from,
                    valid_to=c.valid_to,
                    revoked=bool(c.revoked),
                    permissions=_split(c.permissions),
                    fingerprint=c.fingerprint,
                    seals=seals.get(c.card_no, []),
                )
                for c in cards
            ],
            agreements=[
                AgreementRow(
                    agreement_no=a.agreement_no,
                    bank_code=a.bank_code,
                    bank_name=banks.get(a.bank_code),
                    customs_district=a.customs_district,
                    status=a.status,
                    effective_date=a.effective_date,
                    reason=a.reason,
                )
                for a in agreements
            ],
            authorizations=[
                AuthorizationRow(
                    auth_no=a.auth_no,
                    insurer_code=a.insurer_code,
                    insurer_name=insurers.get(a.insurer_code),
                    scopes=_split(a.scopes),
                    valid_to=a.valid_to,
                    status=a.status,
                )
                for a in auths
            ],
            quotas=[
                QuotaRow(
                    quota_no=q.quota_no,
                    insurer_code=q.insurer_code,
                    insurer_name=insurers.get(q.insurer_code),
                    status=q.status,
                    applied_amount=_money(q.applied_amount),
                    approved_amount=_money_opt(q.approved_amount),
                    term_start=q.term_start,
                    term_end=q.term_end,
                    valid_from=q.valid_from,
                    valid_to=q.valid_to,
                )
                for q in quotas
            ],
            policies=[_policy_row(p) for p in policies],
            claims=[_claim_row(c) for c in claims],
        )


@translating
def quota_view(engine: Engine, quota_no: str) -> QuotaView | None:
    """A quota, its increases, its policies, what it still allows and its history, or None."""
    with Session(engine) as session:
        q = session.get(Quota, quota_no)
        if q is None:
            return None
        increases = session.exec(
            select(Increase)
            .where(Increase.quota_no == quota_no)
            .order_by(col(Increase.created_at), col(Increase.increase_no))
        ).all()
        policies = session.exec(
            select(Policy)
            .where(Policy.quota_no == quota_no)
            .order_by(col(Policy.created_at), col(Policy.apply_no))
        ).all()
        approved_increases = sum(
            (
                _money(i.approved_amount)
                for i in increases
                if i.status == "APPROVED" and i.approved_amount is not None
            ),
            Decimal("0.00"),
        )
        live_insured = sum(
            (_money(p.insured_amount) for p in policies if p.status in LIVE_POLICY_STATUSES),
            Decimal("0.00"),
        )
        approved = _money_opt(q.approved_amount)
        history = _history(
            session,
            [("QUOTA", quota_no)] + [("INCREASE", i.increase_no) for i in increases],
        )
        return QuotaView(
            quota_no=q.quota_no,
            uscc=q.uscc,
            enterprise_name=_enterprise_name(session, q.uscc),
            insurer_code=q.insurer_code,
            insurer_name=_names(session, "INSURER", "INS.").get(q.insurer_code),
            status=q.status,
            applied_amount=_money(q.applied_amount),
            approved_amount=approved,
            rate=_rate(q.rate),
            term_start=q.term_start,
            term_end=q.term_end,
            valid_from=q.valid_from,
            valid_to=q.valid_to,
            prev_quota_no=q.prev_quota_no,
            contact_name=q.contact_name,
            contact_phone=q.contact_phone,
            reason=q.reason,
            created_at=_utc(q.created_at),  # type: ignore[arg-type]
            updated_at=_utc(q.updated_at),  # type: ignore[arg-type]
            increases=[
                IncreaseRow(
                    increase_no=i.increase_no,
                    amount=_money(i.amount),
                    status=i.status,
                    approved_amount=_money_opt(i.approved_amount),
                    reason=i.reason,
                    created_at=_utc(i.created_at),  # type: ignore[arg-type]
                )
                for i in increases
            ],
            policies=[_policy_row(p) for p in policies],
            approved_increases=approved_increases,
            live_insured=live_insured,
            available=(approved or Decimal("0.00")) + approved_increases - live_insured,
            history=history,
        )


@translating
def policy_view(engine: Engine, no: str) -> PolicyView | None:
    """A policy by PolicyNo or ApplyNo, with its e-policy metadata, ledger and history."""
    with Session(engine) as session:
        p = _find_policy(session, no)
        if p is None:
            return None
        size = session.exec(
            select(func.length(Policy.epolicy_content)).where(Policy.apply_no == p.apply_no)
        ).first()
        epolicy = None
        if p.epolicy_sha256 or p.epolicy_file_name or size is not None:
            epolicy = EPolicyMeta(
                file_name=p.epolicy_file_name,
                media_type=p.epolicy_media_type,
                sha256=p.epolicy_sha256,
                size=int(size) if size is not None else None,
            )
        summary = None
        if p.guarantee_record_no:
            insured = _money(p.insured_amount)
            lines = _ledger_lines(_ledger_rows(session, p.guarantee_record_no))
            deducted, restored, available = _totals(insured, lines)
            summary = LedgerSummary(
                guarantee_record_no=p.guarantee_record_no,
                insured_amount=insured,
                deducted=deducted,
                restored=restored,
                available=available,
                lines=len(lines),
                discrepancies=sum(1 for x in lines if x.discrepancy),
            )
        claims = (
            session.exec(
                select(Claim)
                .where(Claim.policy_no == p.policy_no)
                .order_by(col(Claim.created_at), col(Claim.claim_no))
            ).all()
            if p.policy_no
            else []
        )
        invoice = _json(p.invoice, {})
        subjects = [("POLICY", p.apply_no)] + ([("POLICY", p.policy_no)] if p.policy_no else [])
        return PolicyView(
            apply_no=p.apply_no,
            policy_no=p.policy_no,
            quota_no=p.quota_no,
            uscc=p.uscc,
            enterprise_name=_enterprise_name(session, p.uscc),
            insurer_code=p.insurer_code,
            insurer_name=_names(session, "INSURER", "INS.").get(p.insurer_code),
            status=p.status,
            insured_amount=_money(p.insured_amount),
            premium=_money_opt(p.premium),
            rate=_rate(p.rate),
            term_start=p.term_start,
            term_end=p.term_end,
            insured_customs=_split(p.insured_customs),
            coverage=_split(p.coverage),
            invoice=invoice if isinstance(invoice, dict) else {},
            epolicy=epolicy,
            guarantee_record_no=p.guarantee_record_no,
            reason=p.reason,
            created_at=_utc(p.created_at),  # type: ignore[arg-type]
            updated_at=_utc(p.updated_at),  # type: ignore[arg-type]
            ledger=summary,
            claims=[_claim_row(c) for c in claims],
            history=_history(session, subjects),
        )


@translating
def epolicy_file(engine: Engine, no: str) -> EPolicyFile | None:
    """The stored e-policy (bytes and declared hash) of a policy by PolicyNo or ApplyNo."""
    with Session(engine) as session:
        p = _find_policy(session, no)
        if p is None:
            return None
        return EPolicyFile(
            apply_no=p.apply_no,
            policy_no=p.policy_no,
            file_name=p.epolicy_file_name,
            media_type=p.epolicy_media_type,
            sha256=p.epolicy_sha256,
            content=bytes(p.epolicy_content) if p.epolicy_content is not None else None,
        )


@translating
def claim_view(engine: Engine, claim_no: str) -> ClaimView | None:
    """A claim, its entries, its settlement and its history, or None."""
    with Session(engine) as session:
        c = session.get(Claim, claim_no)
        if c is None:
            return None
        entries = []
        for e in _json(c.entries, []):
            if not isinstance(e, dict):
                continue
            days = e.get("overdue_days")
            entries.append(
                ClaimEntry(
                    entry_id=str(e.get("entry_id", "")),
                    tax=_money(e.get("tax") or 0),
                    due_date=str(e.get("due_date", "")),
                    overdue_days=int(days) if days is not None else None,
                    late_fee=_money(e.get("late_fee") or 0),
                )
            )
        return ClaimView(
            claim_no=c.claim_no,
            policy_no=c.policy_no,
            guarantee_record_no=c.guarantee_record_no,
            uscc=c.uscc,
            enterprise_name=_enterprise_name(session, c.uscc),
            insurer_code=c.insurer_code,
            insurer_name=_names(session, "INSURER", "INS.").get(c.insurer_code),
            cause=c.cause,
            notice_date=c.notice_date,
            total=_money(c.total),
            entries=entries,
            entries_total=sum((e.tax + e.late_fee for e in entries), Decimal("0.00")),
            status=c.status,
            paid_amount=_money_opt(c.paid_amount),
            paid_time=_utc(c.paid_time),
            reason=c.reason,
            created_at=_utc(c.created_at),  # type: ignore[arg-type]
            updated_at=_utc(c.updated_at),  # type: ignore[arg-type]
            history=_history(session, [("CLAIM", claim_no)]),
        )


@dataclass(frozen=True, slots=True)
class NoLedger:
    """Why a policy named for its ledger has none: it is not recorded with customs."""

    apply_no: str
    policy_no: str | None
    status: str


@translating
def ledger_view(
    engine: Engine, guarantee_record_no: str | None = None, *, policy_no: str | None = None
) -> LedgerView | NoLedger | None:
    """The guarantee ledger by GuaranteeRecordNo, or by the PolicyNo (or ApplyNo) of its policy.

    None when neither is known; ``NoLedger`` when the policy exists but was never recorded.
    """
    with Session(engine) as session:
        if policy_no is not None:
            p = _find_policy(session, policy_no)
            if p is None:
                return None
            if not p.guarantee_record_no:
                return NoLedger(p.apply_no, p.policy_no, p.status)
        else:
            p = session.exec(
                select(Policy).where(Policy.guarantee_record_no == guarantee_record_no)
            ).first()
            if p is None:
                return None
        record_no = p.guarantee_record_no
        assert record_no is not None
        insured = _money(p.insured_amount)
        lines = _ledger_lines(_ledger_rows(session, record_no))
        deducted, restored, available = _totals(insured, lines)
        return LedgerView(
            guarantee_record_no=record_no,
            policy_no=p.policy_no,
            apply_no=p.apply_no,
            uscc=p.uscc,
            status=p.status,
            insured_amount=insured,
            term_start=p.term_start,
            term_end=p.term_end,
            lines=lines,
            deducted=deducted,
            restored=restored,
            available=available,
            discrepancies=sum(1 for x in lines if x.discrepancy),
        )
