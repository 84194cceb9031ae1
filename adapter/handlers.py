"""Handlers: one verb per inbound message type, in an explicit registry.

A handler reads the verified business element, asks the domain what the message means,
writes the state through the repository and returns what to answer and what to send on. It
raises a ``PermanentError`` to refuse; everything it wrote is then rolled back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from cryptography import x509
from lxml import etree

from adapter.domain import enterprise as rules
from adapter.envelope import field as text
from adapter.envelope import fields
from adapter.errors import SchemaInvalid
from adapter.registry import PartnerInfo, fingerprint, pem
from store.models import BoundCard, Seal
from store.repo import Repo


@dataclass(frozen=True)
class Outgoing:
    """A message to send: its business element and where it goes."""

    receiver_id: str
    message_type: str
    business: etree._Element
    uscc: str | None = None


@dataclass
class Result:
    """What a handler decided: the receipt's status and text, and messages to send on."""

    status: int = 1
    info: str = "accepted and processed"
    uscc: str | None = None
    outgoing: list[Outgoing] = field(default_factory=list)
    journal_status: str | None = None


@dataclass(frozen=True)
class Context:
    """Everything a handler may use for one message."""

    repo: Repo
    sender: PartnerInfo
    message_id: str
    message_type: str
    correlation_id: str | None
    business: etree._Element
    now: datetime


Handler = Callable[[Context], Result]
HANDLERS: dict[str, Handler] = {}


def handles(message_type: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``message_type``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[message_type] = fn
        return fn

    return register


def _date(value: str | None, name: str) -> date:
    if value is None:
        raise SchemaInvalid(f"{name} is missing")
    return date.fromisoformat(value[:10])


@handles("CDGI101")
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
        valid_from=_date(text(el, "ValidFrom"), "ValidFrom"),
        valid_to=_date(text(el, "ValidTo"), "ValidTo"),
        revoked=(text(el, "Revoked") or "false") in ("true", "1"),
    )
    existing = ctx.repo.card(card_no)
    rules.check_binding(binding, existing.uscc if existing else None)
    ctx.repo.save_enterprise(uscc, text(el, "EnterpriseName") or "", text(el, "CustomsCode") or "")
    seals = [
        Seal(
            seal_id=text(s, "SealId") or "",
            card_no=card_no,
            holder_name=text(s, "HolderName") or "",
            valid_from=_date(text(s, "ValidFrom"), "Seal/ValidFrom"),
            valid_to=_date(text(s, "ValidTo"), "Seal/ValidTo"),
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
            message_id=ctx.message_id,
            updated_at=ctx.now,
        ),
        seals,
    )
    verb = "revoked" if binding.revoked else "bound"
    return Result(info=f"card {card_no} ({binding.role}) {verb} for {uscc}", uscc=uscc)


@handles("CDGI401")
def record_credit(ctx: Context) -> Result:
    """Customs rates an enterprise: keep the newest rating, with its records."""
    el = ctx.business
    uscc = text(el, "USCC") or ""
    rating = rules.CreditRating(
        rating=text(el, "Rating") or "",
        rated_date=_date(text(el, "RatedDate"), "RatedDate"),
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
