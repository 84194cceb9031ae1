"""Enterprise identity: card bindings (CDGI101), operator grants (CDGI103), credit (CDGI401),
and the partners' own receipts (CDGI900)."""

from __future__ import annotations

import base64
import json

from cryptography import x509

from adapter.domain import enterprise as rules
from adapter.envelope import field as text
from adapter.envelope import fields, texts
from adapter.errors import SchemaInvalid
from adapter.handlers import Context, Result, handles
from adapter.handlers.values import day
from adapter.registry import fingerprint, pem
from store.models import BoundCard, Credit, Enterprise, Seal


@handles("CDGI101", rows={"CardNo": BoundCard, "USCC": Enterprise, "SealId": Seal},
         lists={"CardNo": Seal.card_no})
def bind_card(ctx: Context) -> Result:
    """The portal vouches for an enterprise IC card: keep it, its holder's seals, the firm."""
    el = ctx.business
    uscc = text(el, "USCC") or ""
    card_no = text(el, "CardNo") or ""
    try:
        der = base64.b64decode(text(el, "Certificate") or "", validate=True)
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise SchemaInvalid("Certificate is not a base64 DER X.509 certificate") from None
    binding = rules.CardBinding(
        uscc=uscc,
        card_no=card_no,
        role=text(el, "CardRole") or "",
        valid_from=day(el, "ValidFrom"),
        valid_to=day(el, "ValidTo"),
        revoked=(text(el, "Revoked") or "false") in ("true", "1"),
    )
    existing = ctx.repo.card(card_no)
    rules.check_binding(binding, existing.uscc if existing else None)
    permissions = existing.permissions if existing is not None else ""
    ctx.repo.save_enterprise(uscc, text(el, "EnterpriseName") or "", text(el, "CustomsCode") or "")
    seals = [
        Seal(
            seal_id=text(s, "SealId") or "",
            card_no=card_no,
            holder_name=text(s, "HolderName") or "",
            valid_from=day(s, "ValidFrom"),
            valid_to=day(s, "ValidTo"),
        )
        for s in fields(el, "Seal")
    ]
    ctx.repo.save_card(
        BoundCard(
            card_no=card_no,
            uscc=uscc,
            role=binding.role,
            certificate_pem=pem(cert),
            fingerprint=fingerprint(cert),
            valid_from=binding.valid_from,
            valid_to=binding.valid_to,
            revoked=binding.revoked,
            permissions=permissions,
            message_id=ctx.message_id,
            updated_at=ctx.now,
        ),
        seals,
    )
    verb = "revoked" if binding.revoked else "bound"
    return Result(info=f"card {card_no} ({binding.role}) {verb} for {uscc}", uscc=uscc)


@handles("CDGI103", rows={"OperatorCardNo": BoundCard},
         lists={"USCC": BoundCard.uscc})
def grant_operator(ctx: Context) -> Result:
    """The legal-person card grants (or revokes) an operator card's permissions."""
    el = ctx.business
    uscc, operator = text(el, "USCC") or "", text(el, "OperatorCardNo") or ""
    ctx.signing_card(uscc, "LEGAL")
    target = ctx.repo.card(operator)
    rules.check_grant_target(
        rules.Card(target.card_no, target.uscc, target.role, target.valid_from, target.valid_to,
                   target.revoked) if target is not None else None,
        uscc, operator,
    )
    assert target is not None
    asked = set(texts(el, "Permission"))
    held = {p for p in target.permissions.split(",") if p}
    revoke = (text(el, "Revoke") or "false") in ("true", "1")
    held = held - asked if revoke else held | asked
    target.permissions = ",".join(sorted(held))
    target.updated_at = ctx.now
    ctx.repo.add(target)
    verb = "revoked from" if revoke else "granted to"
    return Result(info=f"{', '.join(sorted(asked))} {verb} operator card {operator}; now holds "
                  f"{target.permissions or 'nothing'}", uscc=uscc)


@handles("CDGI401", rows={"USCC": Credit})
def record_credit(ctx: Context) -> Result:
    """Customs rates an enterprise: keep the newest rating, with its records."""
    el = ctx.business
    uscc = text(el, "USCC") or ""
    rating = rules.CreditRating(
        rating=text(el, "Rating") or "",
        rated_date=day(el, "RatedDate"),
    )
    on_file = ctx.repo.credit(uscc)
    current = (
        rules.CreditRating(on_file.rating, on_file.rated_date) if on_file is not None else None
    )
    if not rules.supersedes(rating, current):
        return Result(
            info=f"credit of {uscc} rated {rating.rated_date} is older than the rating on file "
            f"({current.rated_date if current else '-'}); kept in the journal only",
            uscc=uscc,
        )
    records = [
        {
            "date": text(r, "Date") or "",
            "kind": text(r, "Kind") or "",
            "description": text(r, "Description") or "",
        }
        for r in fields(el, "Record")
    ]
    ctx.repo.save_credit(
        uscc=uscc,
        customs_code=text(el, "CustomsCode") or "",
        rating=rating.rating,
        rated_date=rating.rated_date,
        records=records,
        message_id=ctx.message_id,
    )
    return Result(info=f"credit of {uscc} recorded: {rating.rating}", uscc=uscc)


@handles("CDGI900")
def record_partner_receipt(ctx: Context) -> Result:
    """A partner answers one of our messages: record it against that message."""
    el = ctx.business
    ori = text(el, "OriMessageId") or ""
    status = int(text(el, "ReturnStatus") or "0")
    code = text(el, "ReturnCode") or ""
    info = text(el, "ReturnInfo") or ""
    target = ctx.repo.outbound_message(ori, ctx.sender.id)
    if target is None:
        return Result(
            info=f"receipt for unknown message {ori}",
            journal_status="UNMATCHED",
        )
    accepted = status > 0
    new_status = "ACCEPTED" if accepted else "REFUSED_BY_PARTNER"
    ctx.repo.set_status(target, new_status, code, info)
    ctx.repo.add_event(
        target.id or 0,
        "partner-receipt",
        new_status,
        code,
        json.dumps({"receipt": ctx.message_id, "status": status, "info": info}, ensure_ascii=False),
    )
    return Result(info=f"receipt recorded against {ori}: {new_status} {code}", uscc=target.uscc)
