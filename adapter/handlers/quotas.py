"""Quotas: application and re-application (CDGI109), increase (CDGI111), the insurer's
decisions (CDGI301, CDGI303), and the credit that follows an application (CDGI507)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from adapter import documents
from adapter.domain import codes
from adapter.domain import quota as rules
from adapter.domain.enterprise import CreditRating
from adapter.domain.quota import refuse
from adapter.envelope import q
from adapter.handlers import Context, Outgoing, Result, handles, notify
from adapter.handlers.values import day, day_opt, money, money_opt, opt, req
from store.models import Agreement, Authorization, BoundCard, Credit, Increase, Quota


def view(q: Quota) -> rules.Quota:
    """A stored quota as the rules see it."""
    return rules.Quota(
        quota_no=q.quota_no, uscc=q.uscc, insurer_code=q.insurer_code, status=q.status,
        applied_amount=Decimal(q.applied_amount), term_start=q.term_start, term_end=q.term_end,
        approved_amount=Decimal(q.approved_amount) if q.approved_amount is not None else None,
        valid_from=q.valid_from, valid_to=q.valid_to,
    )


def _authorization(ctx: Context, uscc: str, insurer_code: str) -> rules.Authorization | None:
    for a in ctx.repo.authorizations(uscc, insurer_code):
        auth = rules.Authorization(a.auth_no, a.uscc, a.insurer_code,
                                   frozenset(a.scopes.split(",")), a.valid_to, a.status)
        if auth.usable(insurer_code, ctx.on):
            return auth
    return None


@handles("CDGI109", rows={"USCC": Credit, "QuotaNo": Quota, "PrevQuotaNo": Quota},
         lists={"USCC": (BoundCard.uscc, Authorization.uscc, Agreement.uscc, Quota.uscc)})
def apply_for_quota(ctx: Context) -> Result:
    """An operator with QUOTA applies (or re-applies); the application goes to the insurer."""
    el = ctx.business
    uscc, no, insurer_code = req(el, "USCC"), req(el, "QuotaNo"), req(el, "InsurerCode")
    ctx.signing_card(uscc, "OPERATOR", "QUOTA")
    app = rules.QuotaApplication(
        quota_no=no, uscc=uscc, insurer_code=insurer_code,
        applied_amount=money(el, "AppliedAmount"), term_start=day(el, "TermStart"),
        term_end=day(el, "TermEnd"), prev_quota_no=opt(el, "PrevQuotaNo"),
    )
    credit_row = ctx.repo.get(Credit, uscc)
    credit = CreditRating(credit_row.rating, credit_row.rated_date) if credit_row else None
    authorization = _authorization(ctx, uscc, insurer_code)
    previous = ctx.repo.get(Quota, app.prev_quota_no) if app.prev_quota_no else None
    existing = ctx.repo.get(Quota, no)
    rules.check_application(
        app, on=ctx.on, agreement_effective=ctx.repo.agreement_effective(uscc),
        authorization=authorization, credit=credit,
        quotas=[view(q) for q in ctx.repo.quotas_of(uscc)] + ([view(existing)] if existing else []),
        previous=view(previous) if previous else None,
    )
    insurer = f"INS.{insurer_code}"
    if ctx.partner(insurer) is None:
        raise refuse(codes.RECEIVER_UNKNOWN, f"{insurer} is not a registered, enabled insurer")
    contact = el.find(q("Contact"))
    ctx.repo.add(Quota(
        quota_no=no, uscc=uscc, insurer_code=insurer_code, status="SUBMITTED",
        applied_amount=app.applied_amount, term_start=app.term_start, term_end=app.term_end,
        prev_quota_no=app.prev_quota_no,
        contact_name=opt(contact, "Name") if contact is not None else None,
        contact_phone=opt(contact, "Phone") if contact is not None else None,
        message_id=ctx.message_id, created_at=ctx.now, updated_at=ctx.now,
    ))
    ctx.repo.progress(uscc, "QUOTA", no, "SUBMITTED", None, ctx.message_id, ctx.now)
    outgoing = [Outgoing(insurer, "CDGI109", el, uscc)]
    assert authorization is not None and credit_row is not None
    if "CREDIT_QUERY" in authorization.scopes:
        records = [documents.CreditRecord(date.fromisoformat(r["date"]), r["kind"],
                                          r["description"])
                   for r in json.loads(credit_row.records)]
        outgoing.append(Outgoing(insurer, "CDGI507", documents.credit_share(
            quota_no=no, uscc=uscc, rating=credit_row.rating, rated_date=credit_row.rated_date,
            records=records,
        ), uscc))
    again = " (re-application)" if app.prev_quota_no else ""
    return Result(status=2, info=f"accepted and forwarded to {insurer}{again}", uscc=uscc,
                  outgoing=outgoing)


@handles("CDGI301", rows={"QuotaNo": Quota})
def decide_quota(ctx: Context) -> Result:
    """The insurer underwrites, approves or rejects; the portal hears of it."""
    el = ctx.business
    no, result = req(el, "QuotaNo"), req(el, "Result")
    quota = ctx.repo.get(Quota, no)
    if quota is None:
        raise refuse(codes.QUOTA_UNKNOWN, f"no quota {no}")
    decision = rules.QuotaDecision(result, money_opt(el, "ApprovedAmount"), money_opt(el, "Rate"),
                                   day_opt(el, "ValidFrom"), day_opt(el, "ValidTo"))
    rules.check_decision(view(quota), decision, ctx.sender.id.removeprefix("INS."))
    quota.status = result
    quota.approved_amount, quota.rate = decision.approved_amount, decision.rate
    quota.valid_from, quota.valid_to = decision.valid_from, decision.valid_to
    quota.reason, quota.updated_at = opt(el, "Reason"), ctx.now
    ctx.repo.add(quota)
    return Result(info=f"quota {no} is {result}", uscc=quota.uscc, outgoing=[
        notify(ctx, uscc=quota.uscc, subject="QUOTA", subject_no=no, status=result,
               reason=opt(el, "Reason")),
    ])


@handles("CDGI111", rows={"IncreaseNo": Increase, "QuotaNo": Quota},
         lists={"QuotaNo": Increase.quota_no}, follow={Quota.uscc: BoundCard.uscc})
def increase_quota(ctx: Context) -> Result:
    """An operator with QUOTA asks for more on an approved quota; it goes to its insurer."""
    el = ctx.business
    no, quota_no = req(el, "IncreaseNo"), req(el, "QuotaNo")
    quota = ctx.repo.get(Quota, quota_no)
    if quota is None:
        raise refuse(codes.INCREASE_QUOTA_STATE, f"no quota {quota_no}")
    ctx.signing_card(quota.uscc, "OPERATOR", "QUOTA")
    if ctx.repo.get(Increase, no) is not None:
        raise refuse(codes.INCREASE_EXISTS, f"increase {no} exists already")
    pending = any(i.status == "PENDING" for i in ctx.repo.increases_of(quota_no))
    rules.check_increase(view(quota), uscc=None, pending=pending, on=ctx.on)
    ctx.repo.add(Increase(increase_no=no, quota_no=quota_no, amount=money(el, "Amount"),
                          status="PENDING", message_id=ctx.message_id, created_at=ctx.now,
                          updated_at=ctx.now))
    ctx.repo.progress(quota.uscc, "INCREASE", no, "PENDING", None, ctx.message_id, ctx.now)
    insurer = f"INS.{quota.insurer_code}"
    return Result(status=2, info=f"accepted and forwarded to {insurer}", uscc=quota.uscc,
                  outgoing=[Outgoing(insurer, "CDGI111", el, quota.uscc)])


@handles("CDGI303", rows={"IncreaseNo": Increase, "QuotaNo": Quota})
def decide_increase(ctx: Context) -> Result:
    """The insurer approves or rejects an increase."""
    el = ctx.business
    no, result = req(el, "IncreaseNo"), req(el, "Result")
    increase = ctx.repo.get(Increase, no)
    quota = ctx.repo.get(Quota, increase.quota_no) if increase else None
    if increase is None or quota is None or increase.quota_no != req(el, "QuotaNo"):
        raise refuse(codes.INCREASE_UNKNOWN, f"no increase {no} of quota {req(el, 'QuotaNo')}")
    if f"INS.{quota.insurer_code}" != ctx.sender.id:
        raise refuse(codes.QUOTA_NOT_YOURS, f"quota {quota.quota_no} is not {ctx.sender.id}'s")
    approved = money_opt(el, "ApprovedAmount")
    rules.check_increase_decision(increase.status, result, approved)
    increase.status, increase.approved_amount = result, approved
    increase.reason, increase.updated_at = opt(el, "Reason"), ctx.now
    ctx.repo.add(increase)
    return Result(info=f"increase {no} is {result}", uscc=quota.uscc, outgoing=[
        notify(ctx, uscc=quota.uscc, subject="INCREASE", subject_no=no, status=result,
               reason=opt(el, "Reason")),
    ])


def approved_increases(ctx: Context, quota_no: str) -> Decimal:
    """The approved increases of a quota."""
    return sum((Decimal(i.approved_amount) for i in ctx.repo.increases_of(quota_no)
                if i.status == "APPROVED" and i.approved_amount is not None), Decimal(0))
