"""Policies: the insurance application (CDGI113), the insurer's decision with the e-policy
(CDGI305, then the record request CDGI501 to customs), and customs' record (CDGI403)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

from adapter import documents
from adapter.domain import codes
from adapter.domain import policy as rules
from adapter.domain.quota import refuse
from adapter.envelope import field, q, texts
from adapter.handlers import Context, Outgoing, Result, handles, notify
from adapter.handlers.quotas import approved_increases, view
from adapter.handlers.values import day, day_opt, money, money_opt, opt, req
from store.models import BoundCard, Enterprise, Increase, Policy, Quota


@handles("CDGI113", rows={"ApplyNo": Policy, "QuotaNo": Quota},
         lists={"USCC": BoundCard.uscc, "QuotaNo": (Increase.quota_no, Policy.quota_no)})
def apply_for_policy(ctx: Context) -> Result:
    """An operator with POLICY applies for a policy within the quota; it goes to the insurer."""
    el = ctx.business
    uscc, no, quota_no = req(el, "USCC"), req(el, "ApplyNo"), req(el, "QuotaNo")
    ctx.signing_card(uscc, "OPERATOR", "POLICY")
    if ctx.repo.get(Policy, no) is not None:
        raise refuse(codes.POLICY_EXISTS, f"application {no} exists already")
    quota = ctx.repo.get(Quota, quota_no)
    app = rules.PolicyApplication(no, quota_no, uscc, money(el, "InsuredAmount"),
                                  day(el, "TermStart"), day(el, "TermEnd"))
    rules.check_application(
        app, view(quota) if quota else None, on=ctx.on,
        approved_increases=approved_increases(ctx, quota_no),
        live_insured=ctx.repo.live_insured(quota_no, rules.LIVE),
    )
    assert quota is not None
    invoice = el.find(q("Invoice"))
    ctx.repo.add(Policy(
        apply_no=no, quota_no=quota_no, uscc=uscc, insurer_code=quota.insurer_code,
        insured_amount=app.insured_amount, term_start=app.term_start, term_end=app.term_end,
        insured_customs=",".join(texts(el, "InsuredCustoms")),
        coverage=",".join(texts(el, "Coverage")),
        invoice=json.dumps({c.tag.split("}")[1]: (c.text or "") for c in invoice}
                           if invoice is not None else {}, ensure_ascii=False),
        status="SUBMITTED", message_id=ctx.message_id, created_at=ctx.now, updated_at=ctx.now,
    ))
    ctx.repo.progress(uscc, "POLICY", no, "SUBMITTED", None, ctx.message_id, ctx.now)
    insurer = f"INS.{quota.insurer_code}"
    return Result(status=2, info=f"accepted and forwarded to {insurer}", uscc=uscc,
                  outgoing=[Outgoing(insurer, "CDGI113", el, uscc)])


@handles("CDGI305", rows={"ApplyNo": Policy, "PolicyNo": Policy.policy_no},
         follow={Policy.uscc: Enterprise})
def decide_policy(ctx: Context) -> Result:
    """The insurer issues (with the e-policy) or declines; an issued policy goes to customs."""
    el = ctx.business
    no, result = req(el, "ApplyNo"), req(el, "Result")
    policy = ctx.repo.get(Policy, no)
    if policy is None or f"INS.{policy.insurer_code}" != ctx.sender.id:
        raise refuse(codes.POLICY_UNKNOWN, f"no application {no} was sent to {ctx.sender.id}")
    epolicy = el.find(q("EPolicy"))
    content = field(epolicy, "Content") if epolicy is not None else None
    decision = rules.PolicyDecision(
        result=result, policy_no=opt(el, "PolicyNo"), premium=money_opt(el, "Premium"),
        rate=money_opt(el, "Rate"), term_start=day_opt(el, "TermStart"),
        term_end=day_opt(el, "TermEnd"),
        epolicy_sha256=field(epolicy, "Sha256") if epolicy is not None else None,
        epolicy_content=base64.b64decode(content) if content else None,
    )
    rules.check_decision(policy.status, decision)
    if decision.policy_no and ctx.repo.policy_by_no(decision.policy_no) is not None:
        raise refuse(codes.POLICY_EXISTS, f"policy {decision.policy_no} exists already")
    policy.status, policy.reason, policy.updated_at = result, opt(el, "Reason"), ctx.now
    outgoing = []
    if result == "ISSUED":
        assert decision.term_start and decision.term_end and epolicy is not None
        policy.policy_no, policy.premium, policy.rate = (
            decision.policy_no, decision.premium, decision.rate)
        policy.term_start, policy.term_end = decision.term_start, decision.term_end
        policy.epolicy_file_name = field(epolicy, "FileName")
        policy.epolicy_media_type = field(epolicy, "MediaType")
        policy.epolicy_sha256, policy.epolicy_content = (
            decision.epolicy_sha256, decision.epolicy_content)
        enterprise = ctx.repo.get(Enterprise, policy.uscc)
        districts = policy.insured_customs.split(",")
        outgoing.append(Outgoing(f"CUS.{districts[0]}", "CDGI501", documents.policy_record(
            policy_no=policy.policy_no, uscc=policy.uscc,
            enterprise_name=enterprise.name if enterprise else policy.uscc,
            customs_code=enterprise.customs_code if enterprise else "",
            insurer_code=policy.insurer_code, insured_amount=Decimal(policy.insured_amount),
            term_start=policy.term_start, term_end=policy.term_end, insured_customs=districts,
            coverage=policy.coverage.split(","), e_policy_sha256=policy.epolicy_sha256 or "",
        ), policy.uscc))
    ctx.repo.add(policy)
    subject_no = policy.policy_no or no
    outgoing.append(notify(ctx, uscc=policy.uscc, subject="POLICY", subject_no=subject_no,
                           status=result, reason=opt(el, "Reason")))
    return Result(info=f"application {no} {result}"
                  + (f" as policy {policy.policy_no}; record requested from {outgoing[0].receiver_id}"
                     if result == "ISSUED" else ""), uscc=policy.uscc, outgoing=outgoing)


@handles("CDGI403", rows={"PolicyNo": Policy.policy_no,
                          "GuaranteeRecordNo": Policy.guarantee_record_no})
def record_policy(ctx: Context) -> Result:
    """Customs records the issued policy (GuaranteeRecordNo) or rejects the record."""
    el = ctx.business
    policy_no, result = req(el, "PolicyNo"), req(el, "Result")
    policy = ctx.repo.policy_by_no(policy_no)
    if policy is None or f"CUS.{policy.insured_customs.split(',')[0]}" != ctx.sender.id:
        raise refuse(codes.POLICY_UNKNOWN, f"no policy {policy_no} was sent to {ctx.sender.id}")
    record_no = opt(el, "GuaranteeRecordNo")
    rules.check_record(policy.status, result, record_no)
    if record_no and ctx.repo.policy_by_record(record_no) is not None:
        raise refuse(codes.POLICY_EXISTS, f"guarantee record {record_no} is used already")
    policy.status = result
    policy.guarantee_record_no, policy.reason, policy.updated_at = (
        record_no, opt(el, "Reason"), ctx.now)
    ctx.repo.add(policy)
    return Result(info=f"policy {policy_no} {result}"
                  + (f" as guarantee {record_no}" if record_no else ""), uscc=policy.uscc,
                  outgoing=[notify(ctx, uscc=policy.uscc, subject="POLICY", subject_no=policy_no,
                                   status=result, reason=opt(el, "Reason"))])
