"""The customs guarantee ledger: deductions (CDGI405) and restorations (CDGI407).

Customs is authoritative: every line is recorded; a discrepancy is flagged on the line, in
the receipt (positive status, warning code) and in the log, never merged silently.
"""

from __future__ import annotations

import json
from decimal import Decimal

import structlog

from adapter.domain import codes
from adapter.domain import ledger as rules
from adapter.domain.quota import refuse
from adapter.envelope import field, fields
from adapter.handlers import Context, Result, handles
from adapter.handlers.values import day, moment, money, req
from store.models import LedgerEntry, Policy

log = structlog.get_logger("cdgi.ledger")


def _policy(ctx: Context, record_no: str) -> Policy:
    policy = ctx.repo.policy_by_record(record_no)
    if policy is None or policy.status not in ("RECORDED", "EXPIRED"):
        raise refuse(codes.LEDGER_UNKNOWN_RECORD, f"no recorded policy has guarantee {record_no}")
    return policy


def _entries(ctx: Context, record_no: str) -> list[rules.Entry]:
    return [rules.Entry(e.entry_id, e.kind, Decimal(e.amount)) for e in ctx.repo.ledger(record_no)]


def _record(ctx: Context, policy: Policy, outcome: rules.Outcome, **line: object) -> Result:
    assert policy.guarantee_record_no and policy.policy_no
    ctx.repo.add(LedgerEntry(
        guarantee_record_no=policy.guarantee_record_no, policy_no=policy.policy_no,
        available_after=outcome.available, discrepancy=outcome.discrepancy, note=outcome.note,
        message_id=ctx.message_id, created_at=ctx.now, **line,  # type: ignore[arg-type]
    ))
    what = f"{line['kind'].lower()} {line['amount']} of entry {line['entry_id']}"  # type: ignore[attr-defined]
    if outcome.discrepancy:
        log.warning("ledger discrepancy", code=outcome.discrepancy, note=outcome.note,
                    guarantee=policy.guarantee_record_no, message_id=ctx.message_id)
        return Result(info=f"recorded with a discrepancy: {outcome.note}", uscc=policy.uscc,
                      code=outcome.discrepancy, journal_status="FLAGGED")
    return Result(info=f"{what} recorded; available {outcome.available}", uscc=policy.uscc)


@handles("CDGI405", rows={"GuaranteeRecordNo": Policy.guarantee_record_no},
         lists={"GuaranteeRecordNo": LedgerEntry.guarantee_record_no})
def deduct_guarantee(ctx: Context) -> Result:
    """Customs deducts a declaration's taxes from the guarantee."""
    el = ctx.business
    record_no, entry_id = req(el, "GuaranteeRecordNo"), req(el, "EntryId")
    policy = _policy(ctx, record_no)
    items = [(field(i, "TaxKind") or "", Decimal(field(i, "Amount") or "0"))
             for i in fields(el, "TaxItem")]
    total = money(el, "Total")
    rules.check_total([amount for _, amount in items], total)
    outcome = rules.deduct(Decimal(policy.insured_amount), _entries(ctx, record_no), entry_id,
                           total)
    return _record(
        ctx, policy, outcome, entry_id=entry_id, kind="DEDUCT", amount=total,
        declaration_type=req(el, "DeclarationType"), customs_district=req(el, "CustomsDistrict"),
        tax_items=json.dumps([[k, str(a)] for k, a in items]), at=moment(el, "DeductTime"),
        due_date=day(el, "PaymentDueDate"),
    )


@handles("CDGI407", rows={"GuaranteeRecordNo": Policy.guarantee_record_no},
         lists={"GuaranteeRecordNo": LedgerEntry.guarantee_record_no})
def restore_guarantee(ctx: Context) -> Result:
    """The enterprise paid: customs restores the guarantee by that amount."""
    el = ctx.business
    record_no, entry_id = req(el, "GuaranteeRecordNo"), req(el, "EntryId")
    policy = _policy(ctx, record_no)
    amount = money(el, "Amount")
    entries = _entries(ctx, record_no)
    if not any(e.entry_id == entry_id and e.kind == "DEDUCT" for e in entries):
        ctx.wait_for(f"the deduction of entry {entry_id}")  # it may still be on its way
    outcome = rules.restore(Decimal(policy.insured_amount), entries, entry_id, amount)
    return _record(ctx, policy, outcome, entry_id=entry_id, kind="RESTORE", amount=amount,
                   at=moment(el, "PaidTime"))
