"""Quotas: who may apply, the insurer's decisions, increases and expiry (CONTRACT §6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapter.domain.enterprise import CreditRating
from adapter.domain.quota import (
    Authorization,
    Quota,
    QuotaApplication,
    QuotaDecision,
    check_application,
    check_decision,
    check_increase,
    check_increase_decision,
    expired,
)
from adapter.errors import BusinessRuleError

ON = date(2026, 3, 1)
DAY = timedelta(days=1)
USCC = "91210200MA0000001X"
OTHER_USCC = "91210200MA0000002X"
INSURER = "PICC"

APP = QuotaApplication(
    quota_no="Q-NEW", uscc=USCC, insurer_code=INSURER, applied_amount=Decimal("1000000.00"),
    term_start=date(2026, 3, 1), term_end=date(2027, 2, 28), prev_quota_no=None,
)
AUTH = Authorization("A-1", USCC, INSURER, frozenset({"CREDIT_QUERY"}), date(2026, 12, 31))
GENERAL = CreditRating("GENERAL", date(2026, 1, 5))
OLD = Quota(
    quota_no="Q-OLD", uscc=USCC, insurer_code=INSURER, status="APPROVED",
    applied_amount=Decimal("1000000.00"), term_start=date(2025, 6, 1),
    term_end=date(2026, 5, 31), approved_amount=Decimal("800000.00"),
    valid_from=date(2025, 6, 1), valid_to=date(2026, 5, 31),
)
APPROVE = QuotaDecision("APPROVED", Decimal("800000.00"), Decimal("0.0080"),
                        date(2026, 3, 1), date(2027, 2, 28))
UNDERWRITE = QuotaDecision("UNDERWRITING", None, None, None, None)
REJECT = QuotaDecision("REJECTED", None, None, None, None)


def apply(app: QuotaApplication = APP, **given: object) -> None:
    """check_application with every precondition met unless ``given`` says otherwise."""
    kwargs: dict[str, object] = {
        "on": ON, "agreement_effective": True, "authorization": AUTH, "credit": GENERAL,
        "quotas": [], "previous": None,
    }
    kwargs.update(given)
    check_application(app, **kwargs)  # type: ignore[arg-type]


def absent(name: str) -> dict[str, Any]:
    """Keyword arguments for ``replace`` that leave the field ``name`` out."""
    return {name: None}


def refused_with(code: str, call: object, *args: object, **kwargs: object) -> BusinessRuleError:
    """Assert that ``call`` refuses with exactly ``code``."""
    with pytest.raises(BusinessRuleError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message
    return caught.value


def term(start: date, end: date) -> QuotaApplication:
    return replace(APP, term_start=start, term_end=end)


# --- application: the accepted path -----------------------------------------------------------


def test_an_application_meeting_every_precondition_is_accepted() -> None:
    apply()


# --- application: agreement (2401) ---------------------------------------------------------


def test_an_application_without_an_effective_agreement_is_refused_with_2401() -> None:
    refused_with("2401", apply, agreement_effective=False)


# --- application: authorization (2402) -----------------------------------------------------


def test_an_application_without_any_authorization_is_refused_with_2402() -> None:
    refused_with("2402", apply, authorization=None)


def test_an_authorization_to_another_insurer_does_not_allow_the_application_2402() -> None:
    refused_with("2402", apply, authorization=replace(AUTH, insurer_code="CPIC"))


def test_an_authorization_past_its_valid_to_is_refused_with_2402() -> None:
    refused_with("2402", apply, authorization=replace(AUTH, valid_to=ON - DAY))


def test_an_authorization_is_still_usable_on_its_valid_to_day() -> None:
    apply(authorization=replace(AUTH, valid_to=ON))


@pytest.mark.parametrize("status", ["UNSIGNED", "REVOKED", "EXPIRED"])
def test_an_authorization_that_is_not_signed_is_refused_with_2402(status: str) -> None:
    refused_with("2402", apply, authorization=replace(AUTH, status=status))


# --- application: credit (2403) ------------------------------------------------------------


def test_an_application_without_a_credit_rating_on_file_is_refused_with_2403() -> None:
    refused_with("2403", apply, credit=None)


def test_a_dishonest_enterprise_is_refused_with_2403() -> None:
    refused_with("2403", apply, credit=CreditRating("DISHONEST", date(2026, 1, 5)))


@pytest.mark.parametrize("rating", ["GENERAL", "ADVANCED"])
def test_general_and_advanced_credit_both_allow_an_application(rating: str) -> None:
    apply(credit=CreditRating(rating, date(2026, 1, 5)))


# --- application: another effective quota (2404) ---------------------------------------------


@pytest.mark.parametrize("status", ["SUBMITTED", "UNDERWRITING"])
def test_a_second_application_while_a_quota_is_pending_is_refused_with_2404(status: str) -> None:
    pending = replace(OLD, status=status, approved_amount=None, valid_from=None, valid_to=None)
    refused_with("2404", apply, quotas=[pending])


def test_a_second_application_while_a_quota_is_effective_is_refused_with_2404() -> None:
    refused_with("2404", apply, quotas=[OLD])


def test_an_approved_quota_still_blocks_a_new_application_on_its_valid_to_day() -> None:
    refused_with("2404", apply, quotas=[replace(OLD, valid_to=ON)])


def test_an_approved_quota_past_its_valid_to_does_not_block_a_new_application() -> None:
    apply(quotas=[replace(OLD, valid_to=ON - DAY)])


@pytest.mark.parametrize("status", ["REJECTED", "EXPIRED"])
def test_a_rejected_or_expired_quota_does_not_block_a_new_application(status: str) -> None:
    apply(quotas=[replace(OLD, status=status)])


def test_another_enterprises_effective_quota_does_not_block_this_enterprise() -> None:
    apply(quotas=[replace(OLD, uscc=OTHER_USCC)])


# --- application: term (2405) ------------------------------------------------------------------


def test_a_term_of_exactly_one_year_is_accepted() -> None:
    apply(term(date(2026, 3, 1), date(2027, 2, 28)))


def test_a_term_one_day_longer_than_a_year_is_refused_with_2405() -> None:
    refused_with("2405", apply, term(date(2026, 3, 1), date(2027, 3, 1)))


def test_a_term_of_a_single_day_is_accepted() -> None:
    apply(term(date(2026, 3, 1), date(2026, 3, 1)))


def test_an_inverted_term_is_refused_with_2405() -> None:
    refused_with("2405", apply, term(date(2026, 3, 2), date(2026, 3, 1)))


def test_a_year_that_contains_the_29th_of_february_may_last_366_days() -> None:
    apply(term(date(2027, 3, 1), date(2028, 2, 29)))
    refused_with("2405", apply, term(date(2027, 3, 1), date(2028, 3, 1)))


def test_a_term_from_the_28th_of_february_of_a_leap_year_ends_the_27th_next_year() -> None:
    apply(term(date(2024, 2, 28), date(2025, 2, 27)))
    refused_with("2405", apply, term(date(2024, 2, 28), date(2025, 2, 28)))


def test_a_term_from_a_leap_day_is_refused_when_it_reaches_the_1st_of_march() -> None:
    apply(term(date(2024, 2, 29), date(2025, 2, 27)))
    refused_with("2405", apply, term(date(2024, 2, 29), date(2025, 3, 1)))


def test_a_term_from_a_leap_day_may_end_on_the_last_day_of_february_next_year() -> None:
    apply(term(date(2024, 2, 29), date(2025, 2, 28)))


# --- application: re-application (2406) --------------------------------------------------------


@pytest.mark.parametrize("status", ["REJECTED", "EXPIRED"])
def test_a_re_application_from_a_rejected_or_expired_quota_is_accepted(status: str) -> None:
    prev = replace(OLD, status=status)
    apply(replace(APP, prev_quota_no=prev.quota_no), quotas=[prev], previous=prev)


def test_a_re_application_naming_an_unknown_quota_is_refused_with_2406() -> None:
    refused_with("2406", apply, replace(APP, prev_quota_no="Q-NOWHERE"), previous=None)


def test_a_re_application_from_another_enterprises_quota_is_refused_with_2406() -> None:
    prev = replace(OLD, uscc=OTHER_USCC, status="REJECTED")
    refused_with("2406", apply, replace(APP, prev_quota_no=prev.quota_no), previous=prev)


@pytest.mark.parametrize("status", ["SUBMITTED", "UNDERWRITING", "APPROVED"])
def test_a_re_application_from_a_quota_neither_rejected_nor_expired_is_refused_with_2406(
    status: str,
) -> None:
    # The previous quota is left out of ``quotas`` so that 2404 cannot answer first.
    prev = replace(OLD, status=status)
    refused_with("2406", apply, replace(APP, prev_quota_no=prev.quota_no), previous=prev)


def test_a_re_application_from_an_approved_quota_past_its_valid_to_is_accepted() -> None:
    prev = replace(OLD, valid_to=ON - DAY)
    apply(replace(APP, prev_quota_no=prev.quota_no), quotas=[prev], previous=prev)


# --- application: duplicate number (2410) --------------------------------------------------


def test_an_application_reusing_an_existing_quota_number_is_refused_with_2410() -> None:
    same_no = replace(OLD, quota_no=APP.quota_no, status="REJECTED")
    refused_with("2410", apply, quotas=[same_no])


def test_a_quota_number_used_by_another_enterprise_is_refused_with_2410() -> None:
    same_no = replace(OLD, quota_no=APP.quota_no, uscc=OTHER_USCC, status="REJECTED")
    refused_with("2410", apply, quotas=[same_no])


# --- decisions ---------------------------------------------------------------------------------


SUBMITTED = replace(OLD, quota_no="Q-NEW", status="SUBMITTED", approved_amount=None,
                    valid_from=None, valid_to=None)
UNDERWRITING = replace(SUBMITTED, status="UNDERWRITING")


def test_an_insurer_may_move_a_submitted_quota_to_underwriting() -> None:
    check_decision(SUBMITTED, UNDERWRITE, INSURER)


@pytest.mark.parametrize("decision", [APPROVE, REJECT], ids=["APPROVED", "REJECTED"])
def test_an_insurer_may_approve_or_reject_a_quota_under_underwriting(
    decision: QuotaDecision,
) -> None:
    check_decision(UNDERWRITING, decision, INSURER)


@pytest.mark.parametrize("decision", [APPROVE, REJECT], ids=["APPROVED", "REJECTED"])
def test_an_insurer_may_decide_a_submitted_quota_without_announcing_underwriting_first(
    decision: QuotaDecision,
) -> None:
    check_decision(SUBMITTED, decision, INSURER)


def test_a_repeated_underwriting_notice_is_accepted() -> None:
    check_decision(UNDERWRITING, UNDERWRITE, INSURER)


@pytest.mark.parametrize("status", ["APPROVED", "REJECTED", "EXPIRED"])
@pytest.mark.parametrize("decision", [UNDERWRITE, APPROVE, REJECT],
                         ids=["UNDERWRITING", "APPROVED", "REJECTED"])
def test_a_decided_quota_cannot_be_decided_again_2408(status: str,
                                                      decision: QuotaDecision) -> None:
    refused_with("2408", check_decision, replace(UNDERWRITING, status=status), decision, INSURER)


@pytest.mark.parametrize("result", ["EXPIRED", "SUBMITTED", "ISSUED"])
def test_a_decision_with_a_result_outside_the_lifecycle_is_refused_with_2408(result: str) -> None:
    refused_with("2408", check_decision, UNDERWRITING, replace(REJECT, result=result), INSURER)


def test_a_decision_by_an_insurer_that_is_not_the_quotas_is_refused_with_2411() -> None:
    refused_with("2411", check_decision, UNDERWRITING, APPROVE, "CPIC")


@pytest.mark.parametrize("missing", ["approved_amount", "rate", "valid_from", "valid_to"])
def test_an_approval_without_each_of_its_fields_is_refused_with_2409(missing: str) -> None:
    refused_with("2409", check_decision, UNDERWRITING, replace(APPROVE, **absent(missing)),
                 INSURER)


@pytest.mark.parametrize("result", ["REJECTED", "UNDERWRITING"])
@pytest.mark.parametrize("field", ["approved_amount", "rate", "valid_from", "valid_to"])
def test_a_rejection_or_underwriting_notice_carrying_an_approval_field_is_refused_with_2409(
    result: str, field: str,
) -> None:
    carrying = replace(UNDERWRITE, result=result, **{field: getattr(APPROVE, field)})
    refused_with("2409", check_decision, UNDERWRITING, carrying, INSURER)


def test_an_approved_validity_of_exactly_one_year_is_accepted() -> None:
    check_decision(UNDERWRITING, replace(APPROVE, valid_from=date(2026, 3, 1),
                                         valid_to=date(2027, 2, 28)), INSURER)


def test_an_approved_validity_longer_than_a_year_is_refused_with_2405() -> None:
    refused_with("2405", check_decision, UNDERWRITING,
                 replace(APPROVE, valid_from=date(2026, 3, 1), valid_to=date(2027, 3, 1)),
                 INSURER)


def test_an_inverted_approved_validity_is_refused_with_2405() -> None:
    refused_with("2405", check_decision, UNDERWRITING,
                 replace(APPROVE, valid_from=date(2026, 3, 2), valid_to=date(2026, 3, 1)),
                 INSURER)


# --- increases ---------------------------------------------------------------------------------


def test_an_increase_on_an_approved_unexpired_quota_is_accepted() -> None:
    assert check_increase(OLD, uscc=USCC, pending=False, on=ON) is OLD


def test_an_increase_is_still_accepted_on_the_quotas_valid_to_day() -> None:
    check_increase(OLD, uscc=USCC, pending=False, on=OLD.valid_to)  # type: ignore[arg-type]


def test_an_increase_on_an_unknown_quota_is_refused_with_2501() -> None:
    refused_with("2501", check_increase, None, uscc=USCC, pending=False, on=ON)


def test_an_increase_on_another_enterprises_quota_is_refused_with_2501() -> None:
    refused_with("2501", check_increase, OLD, uscc=OTHER_USCC, pending=False, on=ON)


@pytest.mark.parametrize("status", ["SUBMITTED", "UNDERWRITING", "REJECTED", "EXPIRED"])
def test_an_increase_on_a_quota_that_is_not_approved_is_refused_with_2501(status: str) -> None:
    refused_with("2501", check_increase, replace(OLD, status=status), uscc=USCC, pending=False,
                 on=ON)


def test_an_increase_on_an_approved_quota_past_its_valid_to_is_refused_with_2501() -> None:
    refused_with("2501", check_increase, OLD, uscc=USCC, pending=False,
                 on=OLD.valid_to + DAY)  # type: ignore[operator]


def test_a_second_increase_while_one_is_pending_is_refused_with_2502() -> None:
    refused_with("2502", check_increase, OLD, uscc=USCC, pending=True, on=ON)


def test_a_pending_increase_may_be_approved_with_its_amount() -> None:
    check_increase_decision("PENDING", "APPROVED", Decimal("200000.00"))


def test_a_pending_increase_may_be_rejected_without_an_amount() -> None:
    check_increase_decision("PENDING", "REJECTED", None)


def test_an_increase_approval_without_its_amount_is_refused_with_2409() -> None:
    refused_with("2409", check_increase_decision, "PENDING", "APPROVED", None)


def test_an_increase_rejection_carrying_an_amount_is_refused_with_2409() -> None:
    refused_with("2409", check_increase_decision, "PENDING", "REJECTED", Decimal("1.00"))


@pytest.mark.parametrize("status", ["APPROVED", "REJECTED"])
@pytest.mark.parametrize("result, amount", [("APPROVED", Decimal("1.00")), ("REJECTED", None)])
def test_a_decided_increase_cannot_be_decided_again_2408(status: str, result: str,
                                                         amount: Decimal | None) -> None:
    refused_with("2408", check_increase_decision, status, result, amount)


# --- expiry ------------------------------------------------------------------------------------


def test_a_validity_has_not_expired_on_its_last_day() -> None:
    assert not expired(date(2026, 5, 31), date(2026, 5, 31))


def test_a_validity_has_expired_the_day_after_its_last_day() -> None:
    assert expired(date(2026, 5, 31), date(2026, 6, 1))


def test_a_missing_validity_never_expires() -> None:
    assert not expired(None, date(2099, 12, 31))
