"""Tripartite agreements (CDGI105 → bank, CDGI201 back) and authorizations (CDGI107 → insurer)."""

from __future__ import annotations

from adapter.domain import codes
from adapter.domain.quota import refuse
from adapter.envelope import texts
from adapter.handlers import Context, Outgoing, Result, handles, notify
from adapter.handlers.values import day, day_opt, opt, req
from store.models import Agreement, Authorization, BoundCard, Seal


def _receiver(ctx: Context, party_id: str) -> str:
    if ctx.partner(party_id) is None:
        raise refuse(codes.RECEIVER_UNKNOWN,
                     f"{party_id} is not a registered, enabled partner of this single window")
    return party_id


@handles("CDGI105", rows={"AgreementNo": Agreement, "SealId": Seal},
         lists={"USCC": BoundCard.uscc})
def sign_agreement(ctx: Context) -> Result:
    """The legal-person card signs a tripartite agreement; it goes on to the bank unchanged."""
    el = ctx.business
    uscc, no = req(el, "USCC"), req(el, "AgreementNo")
    card = ctx.signing_card(uscc, "LEGAL")
    ctx.check_seal(req(el, "SealId"), card)
    if ctx.repo.get(Agreement, no) is not None:
        raise refuse(codes.AGREEMENT_EXISTS, f"agreement {no} exists already")
    bank = _receiver(ctx, f"BANK.{req(el, 'BankCode')}")
    ctx.repo.add(Agreement(
        agreement_no=no, uscc=uscc, bank_code=req(el, "BankCode"),
        customs_district=req(el, "CustomsDistrict"), status="SUBMITTED",
        message_id=ctx.message_id, created_at=ctx.now, updated_at=ctx.now,
    ))
    ctx.repo.progress(uscc, "AGREEMENT", no, "SUBMITTED", None, ctx.message_id, ctx.now)
    return Result(status=2, info=f"accepted and forwarded to {bank}", uscc=uscc,
                  outgoing=[Outgoing(bank, "CDGI105", el, uscc)])


@handles("CDGI201", rows={"AgreementNo": Agreement})
def record_agreement_result(ctx: Context) -> Result:
    """The bank accepts or rejects the agreement; the portal hears of it."""
    el = ctx.business
    no, result = req(el, "AgreementNo"), req(el, "Result")
    agreement = ctx.repo.get(Agreement, no)
    if agreement is None or f"BANK.{agreement.bank_code}" != ctx.sender.id:
        raise refuse(codes.AGREEMENT_UNKNOWN, f"no agreement {no} was sent to {ctx.sender.id}")
    if agreement.status != "SUBMITTED":
        raise refuse(codes.AGREEMENT_STATE, f"agreement {no} is {agreement.status} already")
    effective = day_opt(el, "EffectiveDate")
    if (result == "EFFECTIVE") != (effective is not None):
        raise refuse(codes.AGREEMENT_FIELDS, "EffectiveDate goes with EFFECTIVE, and only with it")
    agreement.status, agreement.effective_date = result, effective
    agreement.reason, agreement.updated_at = opt(el, "Reason"), ctx.now
    ctx.repo.add(agreement)
    return Result(
        info=f"agreement {no} is {result}", uscc=agreement.uscc,
        outgoing=[notify(ctx, uscc=agreement.uscc, subject="AGREEMENT", subject_no=no,
                         status=result, reason=opt(el, "Reason"))],
    )


@handles("CDGI107", rows={"AuthNo": Authorization, "SealId": Seal},
         lists={"USCC": BoundCard.uscc})
def sign_authorization(ctx: Context) -> Result:
    """An operator with AUTHORIZE signs the letter to an insurer; it goes on unchanged."""
    el = ctx.business
    uscc, no = req(el, "USCC"), req(el, "AuthNo")
    card = ctx.signing_card(uscc, "OPERATOR", "AUTHORIZE")
    ctx.check_seal(req(el, "SealId"), card)
    if ctx.repo.get(Authorization, no) is not None:
        raise refuse(codes.AUTHORIZATION_EXISTS, f"authorization {no} exists already")
    valid_to = day(el, "ValidTo")
    if valid_to < ctx.on:
        raise refuse(codes.AUTHORIZATION_EXPIRED, f"ValidTo {valid_to} has already passed")
    insurer = _receiver(ctx, f"INS.{req(el, 'InsurerCode')}")
    ctx.repo.add(Authorization(
        auth_no=no, uscc=uscc, insurer_code=req(el, "InsurerCode"),
        scopes=",".join(sorted(set(texts(el, "Scope")))), valid_to=valid_to, status="SIGNED",
        message_id=ctx.message_id, created_at=ctx.now, updated_at=ctx.now,
    ))
    ctx.repo.progress(uscc, "AUTHORIZATION", no, "SIGNED", None, ctx.message_id, ctx.now)
    return Result(status=2, info=f"accepted and forwarded to {insurer}", uscc=uscc,
                  outgoing=[Outgoing(insurer, "CDGI107", el, uscc)])
