"""Enterprises, their bound IC cards and their customs credit: the rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from adapter.domain import codes
from adapter.domain.codes import CARD_OF_ANOTHER_ENTERPRISE, CARD_VALIDITY_INVERTED
from adapter.errors import BusinessRuleError, PermissionMissing, SignerNotRegistered


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


@dataclass(frozen=True)
class Card:
    """A bound card as the signature rules see it."""

    card_no: str
    uscc: str
    role: str
    valid_from: date
    valid_to: date
    revoked: bool
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SealView:
    """A seal made for a card's holder."""

    seal_id: str
    card_no: str
    valid_from: date
    valid_to: date


def check_signing_card(card: Card, *, uscc: str, role: str, permission: str | None,
                       on: date) -> None:
    """The card that signed a document must be this enterprise's, of the role, and allowed.

    ``role`` LEGAL: only the legal-person card. ``role`` OPERATOR: only an operator card, and
    one holding ``permission`` (granted by the legal-person card with CDGI103), as the
    contract's table says; a legal-person card signing an operator's document is the wrong
    role (1003).
    """
    if card.uscc != uscc:
        raise SignerNotRegistered(f"card {card.card_no} belongs to another enterprise")
    if card.revoked:
        raise SignerNotRegistered(f"card {card.card_no} is revoked")
    if not card.valid_from <= on <= card.valid_to:
        raise SignerNotRegistered(
            f"card {card.card_no} is not valid on {on} ({card.valid_from}..{card.valid_to})"
        )
    if card.role != role:
        raise SignerNotRegistered(
            f"this document must be signed by a {role} card; {card.card_no} is {card.role}"
        )
    if role == "OPERATOR" and permission is not None:
        if permission not in card.permissions:
            raise PermissionMissing(
                f"operator card {card.card_no} has no {permission} permission; the legal-person "
                "card grants it with CDGI103"
            )


def check_seal(seal: SealView | None, seal_id: str, card: Card, on: date) -> None:
    """A named seal must be bound to the signing card's holder and valid on the signing day."""
    if seal is None or seal.card_no != card.card_no:
        raise BusinessRuleError(
            f"seal {seal_id} is not bound to the holder of card {card.card_no}; "
            "make the seal for this card first (印章制作)",
            code=codes.SEAL_NOT_VALID,
        )
    if not seal.valid_from <= on <= seal.valid_to:
        raise BusinessRuleError(
            f"seal {seal_id} is not valid on {on} ({seal.valid_from}..{seal.valid_to})",
            code=codes.SEAL_NOT_VALID,
        )


def check_grant_target(target: Card | None, uscc: str, card_no: str) -> None:
    """Permissions go to an operator card of the same enterprise."""
    if target is None or target.uscc != uscc or target.role != "OPERATOR" or target.revoked:
        raise BusinessRuleError(
            f"card {card_no} is not a valid operator card bound to {uscc}; bind it first "
            "(CDGI101)",
            code=codes.GRANT_TARGET_NOT_OPERATOR,
        )
