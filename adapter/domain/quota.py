"""Agreements, authorizations and quotas: who may apply, and how a quota lives.

Quota lifecycle (CONTRACT §6): SUBMITTED → UNDERWRITING → APPROVED | REJECTED, and APPROVED →
EXPIRED once ValidTo has passed. An increase: PENDING → APPROVED | REJECTED.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from adapter.domain import codes
from adapter.domain.enterprise import CreditRating, quota_eligible
from adapter.errors import BusinessRuleError


def refuse(code: str, message: str) -> BusinessRuleError:
    """A business refusal with its code."""
    return BusinessRuleError(message, code=code)


def one_year_at_most(start: date, end: date) -> bool:
    """Whether ``start..end`` (both included) lasts at least a day and at most one year."""
    if end < start:
        return False
    try:
        anniversary = start.replace(year=start.year + 1)
    except ValueError:  # from 29 February a year runs to 28 February (Civil Code art. 202)
        anniversary = date(start.year + 1, 3, 1)
    return end < anniversary


@dataclass(frozen=True)
class Authorization:
    """An enterprise's authorization letter to an insurer."""

    auth_no: str
    uscc: str
    insurer_code: str
    scopes: frozenset[str]
    valid_to: date
    status: str = "SIGNED"

    def usable(self, insurer_code: str, on: date) -> bool:
        """SIGNED, for that insurer, and not past ValidTo on ``on``."""
        return self.status == "SIGNED" and self.insurer_code == insurer_code and on <= self.valid_to


@dataclass(frozen=True)
class Quota:
    """A quota as the rules see it."""

    quota_no: str
    uscc: str
    insurer_code: str
    status: str
    applied_amount: Decimal
    term_start: date
    term_end: date
    approved_amount: Decimal | None = None
    valid_from: date | None = None
    valid_to: date | None = None

    def effective(self, on: date) -> bool:
        """Counts as the enterprise's effective quota on ``on`` (blocks a new application)."""
        if self.status in ("SUBMITTED", "UNDERWRITING"):
            return True
        return self.status == "APPROVED" and self.valid_to is not None and on <= self.valid_to

    def approved_on(self, on: date) -> bool:
        """APPROVED and not past ValidTo."""
        return self.status == "APPROVED" and self.valid_to is not None and on <= self.valid_to


@dataclass(frozen=True)
class QuotaApplication:
    """CDGI109 as the rules see it."""

    quota_no: str
    uscc: str
    insurer_code: str
    applied_amount: Decimal
    term_start: date
    term_end: date
    prev_quota_no: str | None


def check_application(
    app: QuotaApplication,
    *,
    on: date,
    agreement_effective: bool,
    authorization: Authorization | None,
    credit: CreditRating | None,
    quotas: list[Quota],
    previous: Quota | None,
) -> None:
    """Every precondition of a quota application (CONTRACT §6), in the order a user fixes them."""
    if any(q.quota_no == app.quota_no for q in quotas):
        raise refuse(codes.QUOTA_EXISTS, f"quota {app.quota_no} exists already")
    if not agreement_effective:
        raise refuse(codes.QUOTA_NO_AGREEMENT,
                     "no EFFECTIVE tripartite agreement for this enterprise; sign one (CDGI105)")
    if authorization is None or not authorization.usable(app.insurer_code, on):
        raise refuse(codes.QUOTA_NO_AUTHORIZATION,
                     f"no signed, unexpired authorization to INS.{app.insurer_code} (CDGI107)")
    if not quota_eligible(credit):
        rating = credit.rating if credit else "none on file"
        raise refuse(codes.QUOTA_CREDIT,
                     f"customs credit must be GENERAL or ADVANCED (is: {rating})")
    live = [q for q in quotas if q.uscc == app.uscc and q.effective(on)]
    if live:
        raise refuse(codes.QUOTA_ALREADY_EFFECTIVE,
                     f"quota {live[0].quota_no} is still effective ({live[0].status})")
    if not one_year_at_most(app.term_start, app.term_end):
        raise refuse(codes.QUOTA_TERM,
                     f"the term {app.term_start}..{app.term_end} must last at most one year")
    if app.prev_quota_no is not None:
        if previous is None or previous.uscc != app.uscc:
            raise refuse(codes.QUOTA_REAPPLY,
                         f"re-application names quota {app.prev_quota_no}, not this enterprise's")
        lapsed = previous.status == "APPROVED" and expired(previous.valid_to, on)
        if previous.status not in ("REJECTED", "EXPIRED") and not lapsed:
            raise refuse(codes.QUOTA_REAPPLY,
                         f"quota {previous.quota_no} is {previous.status}; only a REJECTED or "
                         "EXPIRED quota can be applied for again")


@dataclass(frozen=True)
class QuotaDecision:
    """CDGI301 as the rules see it."""

    result: str
    approved_amount: Decimal | None
    rate: Decimal | None
    valid_from: date | None
    valid_to: date | None


_NEXT = {
    "SUBMITTED": ("UNDERWRITING", "APPROVED", "REJECTED"),
    "UNDERWRITING": ("UNDERWRITING", "APPROVED", "REJECTED"),
}


def check_decision(quota: Quota, decision: QuotaDecision, insurer_code: str) -> None:
    """A decision must come from the quota's insurer, fit its state, and carry its fields."""
    if quota.insurer_code != insurer_code:
        raise refuse(codes.QUOTA_NOT_YOURS, f"quota {quota.quota_no} is not INS.{insurer_code}'s")
    if decision.result not in _NEXT.get(quota.status, ()):
        raise refuse(codes.QUOTA_TRANSITION,
                     f"quota {quota.quota_no} is {quota.status}; it cannot become "
                     f"{decision.result}")
    approved = decision.result == "APPROVED"
    fields = (decision.approved_amount, decision.rate, decision.valid_from, decision.valid_to)
    if approved and any(f is None for f in fields):
        raise refuse(codes.DECISION_FIELDS,
                     "APPROVED needs ApprovedAmount, Rate, ValidFrom and ValidTo")
    if not approved and any(f is not None for f in fields):
        raise refuse(codes.DECISION_FIELDS,
                     f"{decision.result} must not carry ApprovedAmount, Rate, ValidFrom, ValidTo")
    if approved:
        assert decision.valid_from is not None and decision.valid_to is not None
        if not one_year_at_most(decision.valid_from, decision.valid_to):
            raise refuse(codes.QUOTA_TERM, "the approved validity must last at most one year")


def check_increase(quota: Quota | None, *, uscc: str | None, pending: bool, on: date) -> Quota:
    """An increase needs an APPROVED, unexpired quota (of that enterprise) without one pending."""
    if quota is None or (uscc is not None and quota.uscc != uscc):
        raise refuse(codes.INCREASE_QUOTA_STATE, "no such quota for this enterprise")
    if not quota.approved_on(on):
        raise refuse(codes.INCREASE_QUOTA_STATE,
                     f"quota {quota.quota_no} is {quota.status}"
                     f"{' and expired' if quota.status == 'APPROVED' else ''}; only an APPROVED, "
                     "unexpired quota can be increased")
    if pending:
        raise refuse(codes.INCREASE_PENDING,
                     f"quota {quota.quota_no} already has an increase waiting for the insurer")
    return quota


def check_increase_decision(status: str, result: str, approved_amount: Decimal | None) -> None:
    """A PENDING increase becomes APPROVED (with its amount) or REJECTED (without)."""
    if status != "PENDING":
        raise refuse(codes.QUOTA_TRANSITION, f"the increase is {status} already")
    if (result == "APPROVED") != (approved_amount is not None):
        raise refuse(codes.DECISION_FIELDS, "ApprovedAmount goes with APPROVED, and only with it")


def expired(valid_to: date | None, on: date) -> bool:
    """Whether a validity ending ``valid_to`` has passed on ``on``."""
    return valid_to is not None and on > valid_to
