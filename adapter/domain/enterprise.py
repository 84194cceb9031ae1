"""Enterprises, their bound IC cards and their customs credit: the rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from adapter.errors import BusinessRuleError

ROLES = ("LEGAL", "OPERATOR")
RATINGS = ("ADVANCED", "GENERAL", "DISHONEST")

# Business refusal codes of this module (CONTRACT §6: 2xxx).
CARD_OF_ANOTHER_ENTERPRISE = "2101"
CARD_VALIDITY_INVERTED = "2102"


@dataclass(frozen=True)
class CardBinding:
    """What the portal says about one enterprise card."""

    uscc: str
    card_no: str
    role: str
    valid_from: date
    valid_to: date
    revoked: bool = False


def check_binding(binding: CardBinding, bound_to: str | None) -> None:
    """Refuse a binding that would move a card to another enterprise or that cannot be valid."""
    if bound_to is not None and bound_to != binding.uscc:
        raise BusinessRuleError(
            f"card {binding.card_no} is bound to another enterprise; revoke it there first",
            code=CARD_OF_ANOTHER_ENTERPRISE,
        )
    if binding.valid_to < binding.valid_from:
        raise BusinessRuleError(
            f"card {binding.card_no} validity ends ({binding.valid_to}) before it starts "
            f"({binding.valid_from})",
            code=CARD_VALIDITY_INVERTED,
        )


@dataclass(frozen=True)
class CreditRating:
    """A customs credit rating and the day it was given."""

    rating: str
    rated_date: date


def supersedes(new: CreditRating, current: CreditRating | None) -> bool:
    """Whether ``new`` replaces the rating on file: the later RatedDate wins, ties go to new.

    Judged by the business dates, not by arrival order, so a late or replayed old rating
    never overwrites a newer one (CONTRACT §5: dates are judged against each other).
    """
    return current is None or new.rated_date >= current.rated_date


def quota_eligible(rating: CreditRating | None) -> bool:
    """A quota application needs a rating on file that is GENERAL or ADVANCED."""
    return rating is not None and rating.rating in ("GENERAL", "ADVANCED")
