"""Policies: applying within a quota, the insurer's decision, the customs record, expiry.

Lifecycle (CONTRACT §6): SUBMITTED → ISSUED | DECLINED; ISSUED → RECORDED | RECORD_REJECTED;
RECORDED → EXPIRED at TermEnd.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from adapter.domain import codes
from adapter.domain.quota import Quota, one_year_at_most, refuse

LIVE = ("SUBMITTED", "ISSUED", "RECORDED")


@dataclass(frozen=True)
class PolicyApplication:
    """CDGI113 as the rules see it."""

    apply_no: str
    quota_no: str
    uscc: str
    insured_amount: Decimal
    term_start: date
    term_end: date


def available(quota: Quota, approved_increases: Decimal, live_insured: Decimal) -> Decimal:
    """What a quota still allows: approved amount plus approved increases minus live policies."""
    return (quota.approved_amount or Decimal(0)) + approved_increases - live_insured


def check_application(
    app: PolicyApplication,
    quota: Quota | None,
    *,
    on: date,
    approved_increases: Decimal,
    live_insured: Decimal,
) -> None:
    """A policy needs an APPROVED unexpired quota of the enterprise, room in it, a fitting term."""
    if quota is None or quota.uscc != app.uscc:
        raise refuse(codes.POLICY_QUOTA, f"quota {app.quota_no} is not this enterprise's")
    if not quota.approved_on(on):
        raise refuse(codes.POLICY_QUOTA,
                     f"quota {quota.quota_no} is {quota.status}"
                     f"{' and expired' if quota.status == 'APPROVED' else ''}; a policy needs "
                     "an APPROVED, unexpired quota")
    room = available(quota, approved_increases, live_insured)
    if app.insured_amount > room:
        raise refuse(codes.POLICY_AMOUNT,
                     f"insured amount {app.insured_amount} exceeds what quota {quota.quota_no} "
                     f"still allows ({room})")
    assert quota.valid_from is not None and quota.valid_to is not None
    if not (quota.valid_from <= app.term_start and app.term_end <= quota.valid_to):
        raise refuse(codes.POLICY_TERM,
                     f"the term {app.term_start}..{app.term_end} must lie inside the quota's "
                     f"validity {quota.valid_from}..{quota.valid_to}")
    if not one_year_at_most(app.term_start, app.term_end):
        raise refuse(codes.POLICY_TERM, "the policy term must last at most one year")


@dataclass(frozen=True)
class PolicyDecision:
    """CDGI305 as the rules see it."""

    result: str
    policy_no: str | None
    premium: Decimal | None
    rate: Decimal | None
    term_start: date | None
    term_end: date | None
    epolicy_sha256: str | None
    epolicy_content: bytes | None


def check_decision(status: str, d: PolicyDecision) -> None:
    """ISSUED carries its policy fields (and a matching e-policy digest); DECLINED carries none."""
    if status != "SUBMITTED":
        raise refuse(codes.POLICY_TRANSITION, f"the application is {status} already")
    fields = (d.policy_no, d.premium, d.rate, d.term_start, d.term_end, d.epolicy_sha256)
    if d.result == "ISSUED" and any(f is None for f in fields):
        raise refuse(codes.DECISION_FIELDS,
                     "ISSUED needs PolicyNo, Premium, Rate, TermStart, TermEnd and EPolicy")
    if d.result != "ISSUED" and any(f is not None for f in fields):
        raise refuse(codes.DECISION_FIELDS, f"{d.result} must not carry the policy's fields")
    if d.epolicy_content is not None and d.epolicy_sha256 is not None:
        if hashlib.sha256(d.epolicy_content).hexdigest() != d.epolicy_sha256:
            raise refuse(codes.EPOLICY_DIGEST, "the e-policy's Sha256 does not match its Content")


def check_record(status: str, result: str, guarantee_record_no: str | None) -> None:
    """Customs records an ISSUED policy (RECORDED needs the GuaranteeRecordNo)."""
    if status != "ISSUED":
        raise refuse(codes.POLICY_TRANSITION, f"the policy is {status}; only ISSUED is recorded")
    if (result == "RECORDED") != (guarantee_record_no is not None):
        raise refuse(codes.DECISION_FIELDS, "GuaranteeRecordNo goes with RECORDED, and only with it")
