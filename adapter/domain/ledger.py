"""The customs guarantee ledger of one recorded policy.

available = insured amount − deducted + restored. Customs is authoritative: every deduction
is recorded, but one beyond the available amount, a second deduction of an EntryId, or a
restore without its deduction is flagged as a discrepancy for operators (a positive receipt
with a warning code), never merged silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from adapter.domain import codes
from adapter.domain.quota import refuse


@dataclass(frozen=True)
class Entry:
    """One ledger line."""

    entry_id: str
    kind: str  # DEDUCT or RESTORE
    amount: Decimal


@dataclass(frozen=True)
class Outcome:
    """What recording a line means: the new available amount and any discrepancy."""

    available: Decimal
    discrepancy: str | None = None
    note: str | None = None


def available(insured: Decimal, entries: list[Entry]) -> Decimal:
    """Insured amount minus deductions plus restorations."""
    deducted = sum((e.amount for e in entries if e.kind == "DEDUCT"), Decimal(0))
    restored = sum((e.amount for e in entries if e.kind == "RESTORE"), Decimal(0))
    return insured - deducted + restored


def outstanding(entries: list[Entry], entry_id: str) -> Decimal:
    """What is deducted and not yet restored for one declaration."""
    return sum(
        (e.amount if e.kind == "DEDUCT" else -e.amount for e in entries if e.entry_id == entry_id),
        Decimal(0),
    )


def check_total(items: list[Decimal], total: Decimal) -> None:
    """A deduction's Total is the sum of its tax items."""
    if sum(items, Decimal(0)) != total:
        raise refuse(codes.LEDGER_TOTAL,
                     f"Total {total} is not the sum of the tax items ({sum(items, Decimal(0))})")


def deduct(insured: Decimal, entries: list[Entry], entry_id: str, amount: Decimal) -> Outcome:
    """Record a deduction; flag a second one of the same entry or one beyond what is left."""
    before = available(insured, entries)
    after = before - amount
    if any(e.entry_id == entry_id and e.kind == "DEDUCT" for e in entries):
        return Outcome(after, codes.DUPLICATE_DEDUCT,
                       f"entry {entry_id} was deducted before; recorded again and flagged")
    if amount > before:
        return Outcome(after, codes.DEDUCT_EXCEEDS_AVAILABLE,
                       f"deduction {amount} exceeds the available {before}; recorded and flagged")
    return Outcome(after)


def restore(insured: Decimal, entries: list[Entry], entry_id: str, amount: Decimal) -> Outcome:
    """Record a restoration; flag one without its deduction or larger than what is deducted."""
    after = available(insured, entries) + amount
    owed = outstanding(entries, entry_id)
    if not any(e.entry_id == entry_id and e.kind == "DEDUCT" for e in entries):
        return Outcome(after, codes.RESTORE_WITHOUT_DEDUCT,
                       f"no deduction of entry {entry_id} is known; recorded and flagged")
    if amount > owed:
        return Outcome(after, codes.RESTORE_EXCEEDS_DEDUCT,
                       f"restoration {amount} exceeds the {owed} deducted for {entry_id}; "
                       "recorded and flagged")
    return Outcome(after)
