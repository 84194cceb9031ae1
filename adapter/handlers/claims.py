"""Claims: customs' notice forwarded to the insurer (CDGI409), the settlement (CDGI307) and
its sharing with every other insurer (CDGI503), and the enterprise's query (CDGI115/116)."""

from __future__ import annotations

import json
from decimal import Decimal

from adapter import documents
from adapter.domain import claim as rules
from adapter.domain import codes
from adapter.domain import ledger as ledger_rules
from adapter.domain.quota import refuse
from adapter.envelope import field, fields
from adapter.handlers import Context, Outgoing, Result, handles, notify
from adapter.handlers.values import day, moment_opt, money, money_opt, opt, req
from store.db import as_utc
from store.models import BoundCard, Claim, Enterprise, LedgerEntry, Policy


@handles("CDGI409", rows={"ClaimNo": Claim, "PolicyNo": Policy.policy_no},
         lists={"GuaranteeRecordNo": LedgerEntry.guarantee_record_no})
def notify_claim(ctx: Context) -> Result:
    """Customs claims against a recorded policy; checked, kept, forwarded to the insurer."""
    el = ctx.business
    no, policy_no = req(el, "ClaimNo"), req(el, "PolicyNo")
    if ctx.repo.get(Claim, no) is not None:
        raise refuse(codes.CLAIM_EXISTS, f"claim {no} exists already")
    policy = ctx.repo.policy_by_no(policy_no)
    record_no = req(el, "GuaranteeRecordNo")
    if policy is not None and policy.guarantee_record_no != record_no:
        policy = None
    entries = [
        rules.NoticeEntry(
            entry_id=field(e, "EntryId") or "", tax=Decimal(field(e, "Tax") or "0"),
            due_date=day(e, "DueDate"), overdue_days=int(field(e, "OverdueDays") or "0"),
            late_fee=Decimal(field(e, "LateFee") or "0"),
        )
        for e in fields(el, "Entry")
    ]
    lines = [ledger_rules.Entry(x.entry_id, x.kind, Decimal(x.amount))
             for x in ctx.repo.ledger(record_no)]
    total = money(el, "Total")
    rules.check_notice(
        policy_status=policy.status if policy else None, entries=entries,
        outstanding={e.entry_id: ledger_rules.outstanding(lines, e.entry_id) for e in entries},
        total=total, notice_date=day(el, "NoticeDate"),
    )
    assert policy is not None
    ctx.repo.add(Claim(
        claim_no=no, policy_no=policy_no, guarantee_record_no=record_no, uscc=policy.uscc,
        insurer_code=policy.insurer_code, cause=req(el, "Cause"),
        entries=json.dumps([{"entry_id": e.entry_id, "tax": str(e.tax),
                             "due_date": e.due_date.isoformat(), "overdue_days": e.overdue_days,
                             "late_fee": str(e.late_fee)} for e in entries]),
        total=total, notice_date=day(el, "NoticeDate"), status="NOTIFIED",
        message_id=ctx.message_id, created_at=ctx.now, updated_at=ctx.now,
    ))
    insurer = f"INS.{policy.insurer_code}"
    return Result(status=2, info=f"accepted and forwarded to {insurer}", uscc=policy.uscc,
                  outgoing=[Outgoing(insurer, "CDGI409", el, policy.uscc),
                            notify(ctx, uscc=policy.uscc, subject="CLAIM", subject_no=no,
                                   status="NOTIFIED")])


@handles("CDGI307", rows={"ClaimNo": Claim}, follow={Claim.uscc: Enterprise})
def settle_claim(ctx: Context) -> Result:
    """The insurer pays or refuses; a paid claim is shared with every other insurer."""
    el = ctx.business
    no, result = req(el, "ClaimNo"), req(el, "Result")
    claim = ctx.repo.get(Claim, no)
    if claim is None or f"INS.{claim.insurer_code}" != ctx.sender.id \
            or claim.policy_no != req(el, "PolicyNo"):
        raise refuse(codes.CLAIM_UNKNOWN, f"no claim {no} on policy {req(el, 'PolicyNo')} was "
                     f"sent to {ctx.sender.id}")
    paid_amount, paid_time = money_opt(el, "PaidAmount"), moment_opt(el, "PaidTime")
    rules.check_settlement(claim.status, result, paid_amount, paid_time is not None)
    claim.status, claim.paid_amount, claim.paid_time = result, paid_amount, paid_time
    claim.reason, claim.updated_at = opt(el, "Reason"), ctx.now
    ctx.repo.add(claim)
    outgoing = [notify(ctx, uscc=claim.uscc, subject="CLAIM", subject_no=no, status=result,
                       reason=opt(el, "Reason"))]
    shared: list[str] = []
    if result == "PAID":
        assert paid_amount is not None and paid_time is not None
        enterprise = ctx.repo.get(Enterprise, claim.uscc)
        shared = rules.share_targets(
            ((p.id, p.enabled) for p in ctx.registry.all() if p.kind == "INSURER"), ctx.sender.id)
        for insurer in shared:
            outgoing.append(Outgoing(insurer, "CDGI503", documents.claim_share(
                claim_no=no, policy_no=claim.policy_no, insurer_code=claim.insurer_code,
                uscc=claim.uscc, enterprise_name=enterprise.name if enterprise else claim.uscc,
                claimed_amount=Decimal(claim.total), paid_amount=paid_amount,
                paid_time=paid_time,
            ), claim.uscc))
    info = f"claim {no} {result}" + (f"; shared with {', '.join(shared)}" if shared else "")
    return Result(info=info, uscc=claim.uscc, outgoing=outgoing)


@handles("CDGI115", lists={"USCC": BoundCard.uscc})
def answer_claim_query(ctx: Context) -> Result:
    """An operator with QUERY asks about the enterprise's claims: only its own are answered."""
    el = ctx.business
    uscc, query_no = req(el, "USCC"), req(el, "QueryNo")
    ctx.signing_card(uscc, "OPERATOR", "QUERY")
    insurer_code, insurer_name = opt(el, "InsurerCode"), opt(el, "InsurerName")
    policy_no = opt(el, "PolicyNo")
    names = {p.id.removeprefix("INS."): p.name for p in ctx.registry.all() if p.kind == "INSURER"}
    claims = []
    for c in ctx.repo.claims_of(uscc):  # the enterprise's own claims, and only those
        if insurer_code and c.insurer_code != insurer_code:
            continue
        if insurer_name and names.get(c.insurer_code) != insurer_name:
            continue
        if policy_no and c.policy_no != policy_no:
            continue
        claims.append(documents.ClaimSummary(
            claim_no=c.claim_no, policy_no=c.policy_no, insurer_code=c.insurer_code,
            insurer_name=names.get(c.insurer_code, c.insurer_code),
            claimed_amount=Decimal(c.total),
            paid_amount=Decimal(c.paid_amount) if c.paid_amount is not None else None,
            paid_time=as_utc(c.paid_time), status=c.status,
        ))
    answer = documents.claim_info_result(query_no=query_no, uscc=uscc, claims=claims)
    return Result(info=f"answered with {len(claims)} claim(s)", uscc=uscc,
                  outgoing=[Outgoing("PORTAL", "CDGI116", answer, uscc)])
