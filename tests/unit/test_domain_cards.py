"""Enterprise cards as signers: role, owner, validity, permissions, seals and grants
(CONTRACT §5 receipt codes 1003/1006, §6 seals)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from adapter.domain.enterprise import (
    Card,
    SealView,
    check_grant_target,
    check_seal,
    check_signing_card,
)
from adapter.errors import BusinessRuleError, PermissionMissing, SignerNotRegistered

DAY = timedelta(days=1)
USCC = "91210200MA0000001X"
OTHER_USCC = "91210200MA0000002X"
ON = date(2026, 6, 1)
FROM, TO = date(2026, 1, 1), date(2026, 12, 31)

LEGAL = Card("L-001", USCC, "LEGAL", FROM, TO, revoked=False)
OPERATOR = Card("O-001", USCC, "OPERATOR", FROM, TO, revoked=False,
                permissions=frozenset({"QUOTA", "QUERY"}))
SEAL = SealView("S-001", "L-001", FROM, TO)


def not_registered(card: Card, *, role: str, permission: str | None = None,
                   uscc: str = USCC, on: date = ON) -> None:
    """Assert a 1003 refusal, and not a narrower or other error."""
    with pytest.raises(SignerNotRegistered) as caught:
        check_signing_card(card, uscc=uscc, role=role, permission=permission, on=on)
    assert type(caught.value) is SignerNotRegistered
    assert caught.value.code == "1003"


def refused_with(code: str, call: object, *args: object) -> None:
    with pytest.raises(BusinessRuleError) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message


# --- the signing card --------------------------------------------------------------------------


def test_the_legal_person_card_may_sign_a_legal_person_document() -> None:
    check_signing_card(LEGAL, uscc=USCC, role="LEGAL", permission=None, on=ON)


def test_an_operator_card_holding_the_permission_may_sign_an_operator_document() -> None:
    check_signing_card(OPERATOR, uscc=USCC, role="OPERATOR", permission="QUOTA", on=ON)


def test_an_operator_card_may_not_sign_a_legal_person_document_1003() -> None:
    not_registered(OPERATOR, role="LEGAL")


def test_the_legal_person_card_may_not_sign_an_operator_document_1003() -> None:
    not_registered(LEGAL, role="OPERATOR", permission="QUOTA")


@pytest.mark.parametrize("card, role, permission",
                         [(LEGAL, "LEGAL", None), (OPERATOR, "OPERATOR", "QUOTA")],
                         ids=["LEGAL", "OPERATOR"])
def test_a_card_of_another_enterprise_is_refused_with_1003(card: Card, role: str,
                                                          permission: str | None) -> None:
    not_registered(card, role=role, permission=permission, uscc=OTHER_USCC)


@pytest.mark.parametrize("card, role, permission",
                         [(LEGAL, "LEGAL", None), (OPERATOR, "OPERATOR", "QUOTA")],
                         ids=["LEGAL", "OPERATOR"])
def test_a_revoked_card_is_refused_with_1003(card: Card, role: str,
                                            permission: str | None) -> None:
    not_registered(replace(card, revoked=True), role=role, permission=permission)


@pytest.mark.parametrize("on", [FROM - DAY, TO + DAY], ids=["before", "after"])
def test_a_card_not_valid_on_the_signing_day_is_refused_with_1003(on: date) -> None:
    not_registered(LEGAL, role="LEGAL", on=on)
    not_registered(OPERATOR, role="OPERATOR", permission="QUOTA", on=on)


@pytest.mark.parametrize("on", [FROM, TO], ids=["first-day", "last-day"])
def test_a_card_is_valid_on_the_first_and_last_day_of_its_validity(on: date) -> None:
    check_signing_card(LEGAL, uscc=USCC, role="LEGAL", permission=None, on=on)
    check_signing_card(OPERATOR, uscc=USCC, role="OPERATOR", permission="QUOTA", on=on)


@pytest.mark.parametrize("permission", ["AUTHORIZE", "POLICY"])
def test_an_operator_card_without_the_permission_is_refused_with_1006(permission: str) -> None:
    with pytest.raises(PermissionMissing) as caught:
        check_signing_card(OPERATOR, uscc=USCC, role="OPERATOR", permission=permission, on=ON)
    assert caught.value.code == "1006"


def test_an_operator_card_with_no_grant_at_all_is_refused_with_1006() -> None:
    with pytest.raises(PermissionMissing) as caught:
        check_signing_card(replace(OPERATOR, permissions=frozenset()), uscc=USCC,
                           role="OPERATOR", permission="QUERY", on=ON)
    assert caught.value.code == "1006"


@pytest.mark.parametrize("permission", ["AUTHORIZE", "QUOTA", "POLICY", "QUERY"])
def test_each_granted_permission_lets_the_operator_sign_its_document(permission: str) -> None:
    card = replace(OPERATOR, permissions=frozenset({permission}))
    check_signing_card(card, uscc=USCC, role="OPERATOR", permission=permission, on=ON)


# --- the seal named in a document ------------------------------------------------------------


def test_a_seal_bound_to_the_signing_card_and_valid_that_day_is_accepted() -> None:
    check_seal(SEAL, "S-001", LEGAL, ON)


@pytest.mark.parametrize("on", [FROM, TO], ids=["first-day", "last-day"])
def test_a_seal_is_valid_on_the_first_and_last_day_of_its_validity(on: date) -> None:
    check_seal(SEAL, "S-001", LEGAL, on)


def test_a_seal_that_is_not_on_file_is_refused_with_2001() -> None:
    refused_with("2001", check_seal, None, "S-404", LEGAL, ON)


def test_a_seal_made_for_another_cards_holder_is_refused_with_2001() -> None:
    refused_with("2001", check_seal, replace(SEAL, card_no="L-999"), "S-001", LEGAL, ON)
    refused_with("2001", check_seal, SEAL, "S-001", OPERATOR, ON)


@pytest.mark.parametrize("on", [FROM - DAY, TO + DAY], ids=["before", "after"])
def test_a_seal_outside_its_validity_on_the_signing_day_is_refused_with_2001(on: date) -> None:
    refused_with("2001", check_seal, SEAL, "S-001", replace(LEGAL, valid_from=on - DAY,
                                                            valid_to=on + DAY), on)


# --- the target of a grant -----------------------------------------------------------------


def test_a_grant_to_an_operator_card_of_the_same_enterprise_is_accepted() -> None:
    check_grant_target(OPERATOR, USCC, "O-001")


def test_a_grant_to_a_card_that_is_not_bound_is_refused_with_2103() -> None:
    refused_with("2103", check_grant_target, None, USCC, "O-404")


def test_a_grant_to_an_operator_card_of_another_enterprise_is_refused_with_2103() -> None:
    refused_with("2103", check_grant_target, replace(OPERATOR, uscc=OTHER_USCC), USCC, "O-001")


def test_a_grant_to_the_legal_person_card_is_refused_with_2103() -> None:
    refused_with("2103", check_grant_target, LEGAL, USCC, "L-001")


def test_a_grant_to_a_revoked_operator_card_is_refused_with_2103() -> None:
    refused_with("2103", check_grant_target, replace(OPERATOR, revoked=True), USCC, "O-001")
