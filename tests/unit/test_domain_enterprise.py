"""Card bindings and credit ratings: the pure rules."""

from __future__ import annotations

from datetime import date

import pytest

from adapter.domain.enterprise import (
    CardBinding,
    CreditRating,
    check_binding,
    quota_eligible,
    supersedes,
)
from adapter.errors import BusinessRuleError
from adapter.registry import kind_of

BINDING = CardBinding("U1", "C1", "LEGAL", date(2026, 1, 1), date(2027, 1, 1))


def test_a_card_may_be_bound_again_to_its_own_enterprise_but_not_to_another() -> None:
    check_binding(BINDING, None)
    check_binding(BINDING, "U1")
    with pytest.raises(BusinessRuleError) as caught:
        check_binding(BINDING, "U2")
    assert caught.value.code == "2101"


def test_a_card_whose_validity_ends_before_it_starts_is_refused() -> None:
    inverted = CardBinding("U1", "C1", "LEGAL", date(2027, 1, 1), date(2026, 1, 1))
    with pytest.raises(BusinessRuleError) as caught:
        check_binding(inverted, None)
    assert caught.value.code == "2102"


def test_the_later_rating_wins_whatever_the_order_of_arrival() -> None:
    old, new = (
        CreditRating("GENERAL", date(2026, 1, 1)),
        CreditRating("DISHONEST", date(2026, 6, 1)),
    )
    assert supersedes(new, old) and not supersedes(old, new) and supersedes(old, None)


def test_only_general_or_advanced_credit_allows_a_quota() -> None:
    assert quota_eligible(CreditRating("GENERAL", date(2026, 1, 1)))
    assert quota_eligible(CreditRating("ADVANCED", date(2026, 1, 1)))
    assert not quota_eligible(CreditRating("DISHONEST", date(2026, 1, 1)))
    assert not quota_eligible(None)


@pytest.mark.parametrize(
    "party, kind",
    [
        ("PORTAL", "PORTAL"),
        ("BANK.BOC", "BANK"),
        ("INS.PICC", "INSURER"),
        ("CUS.0800", "CUSTOMS"),
        ("CUS.80", None),
        ("ins.picc", None),
        ("DC", None),
    ],
)
def test_party_ids_are_recognised_by_their_pattern(party: str, kind: str | None) -> None:
    assert kind_of(party) == kind
