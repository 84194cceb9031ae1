"""Claims: checking customs' notice, the insurer's settlement, and who hears of it.

Claim lifecycle (CONTRACT §6): NOTIFIED → PAID | REFUSED. A paid claim is shared with every
other enabled insurer, and only with insurers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from adapter.domain import codes
from adapter.domain.quota import refuse

LATE_FEE_RATE = Decimal("0.0005")  # 0.05% a day
FEN = Decimal("0.01")


def late_fee(tax: Decimal, overdue_days: int) -> Decimal:
    """Tax × 0.05% × days, rounded half-up to the fen."""
    return (tax * LATE_FEE_RATE * overdue_days).quantize(FEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class NoticeEntry:
    """One declaration of a claim notice."""

    entry_id: str
    tax: Decimal
    due_date: date
    overdue_days: int
    late_fee: Decimal


def check_notice(
    *,
    policy_status: str | None,
    entries: list[NoticeEntry],
    outstanding: dict[str, Decimal],
    total: Decimal,
    notice_date: date,
) -> None:
    """The notice names a recorded policy, deducted unrestored entries, right fees and total."""
    if policy_status not in ("RECORDED", "EXPIRED"):
        raise refuse(codes.CLAIM_POLICY,
                     f"the policy is {policy_status or 'unknown'}; a claim needs a recorded policy")
    named = [e.entry_id for e in entries]
    for twice in sorted({x for x in named if named.count(x) > 1}):
        raise refuse(codes.CLAIM_ENTRY, f"entry {twice} is named more than once")
    for e in entries:
        owed = outstanding.get(e.entry_id, Decimal(0))
        if owed <= 0:
            raise refuse(codes.CLAIM_ENTRY,
                         f"entry {e.entry_id} was not deducted under this guarantee, or was "
                         "restored")
        if e.tax > owed:
            raise refuse(codes.CLAIM_ENTRY,
                         f"entry {e.entry_id} claims tax {e.tax} but {owed} is outstanding")
        if (notice_date - e.due_date).days != e.overdue_days:
            raise refuse(codes.CLAIM_OVERDUE_DAYS,
                         f"entry {e.entry_id}: {e.overdue_days} overdue days, but "
                         f"{e.due_date}..{notice_date} is {(notice_date - e.due_date).days}")
        expected = late_fee(e.tax, e.overdue_days)
        if e.late_fee != expected:
            raise refuse(codes.CLAIM_LATE_FEE,
                         f"entry {e.entry_id}: late fee {e.late_fee}, expected {expected} "
                         f"({e.tax} × 0.05% × {e.overdue_days} days, half-up to the fen)")
    expected_total = sum((e.tax + e.late_fee for e in entries), Decimal(0))
    if total != expected_total:
        raise refuse(codes.CLAIM_TOTAL, f"Total {total}, expected Σ(Tax + LateFee) = {expected_total}")


def check_settlement(status: str, result: str, paid_amount: Decimal | None,
                     paid_time_given: bool) -> None:
    """A NOTIFIED claim becomes PAID (with amount and time) or REFUSED (without)."""
    if status != "NOTIFIED":
        raise refuse(codes.CLAIM_TRANSITION, f"the claim is {status} already")
    paid = result == "PAID"
    if paid != (paid_amount is not None) or paid != paid_time_given:
        raise refuse(codes.DECISION_FIELDS, "PaidAmount and PaidTime go with PAID, and only with it")


def share_targets(insurers: Iterable[tuple[str, bool]], paying: str) -> list[str]:
    """Every enabled insurer but the one that paid (party ids ``INS.<code>``)."""
    return sorted(pid for pid, enabled in insurers
                  if enabled and pid.startswith("INS.") and pid != paying)
