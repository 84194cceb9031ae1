"""Policies: applying within a quota, the insurer's decision, the customs record (CONTRACT §6)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapter.domain.policy import (
    PolicyApplication,
    PolicyDecision,
    available,
    check_application,
    check_decision,
    check_record,
)
from adapter.domain.quota import Quota
from adapter.errors import BusinessRuleError

ON = date(2026, 3, 1)
DAY = timedelta(days=1)
USCC = "91210200MA0000001X"
OTHER_USCC = "91210200MA0000002X"

QUOTA = Quota(
    quota_no="Q-1", uscc=USCC, insurer_code="PICC", status="APPROVED",
    applied_amount=Decimal("1000000.00"), term_start=date(2026, 1, 1),
    term_end=date(2026, 12, 31), approved_amount=Decimal("1000000.00"),
    valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31),
)
APP = PolicyApplication(
    apply_no="P-APPLY-1", quota_no="Q-1", uscc=USCC, insured_amount=Decimal("400000.00"),
    term_start=date(2026, 3, 1), term_end=date(2026, 12, 31),
)
EPOLICY = b"%PDF-1.7 electronic policy P-1 of PICC\n"
ISSUE = PolicyDecision(
    result="ISSUED", policy_no="P-1", premium=Decimal("3200.00"), rate=Decimal("0.0080"),
    term_start=date(2026, 3, 1), term_end=date(2026, 12, 31),
    epolicy_sha256=hashlib.sha256(EPOLICY).hexdigest(), epolicy_content=EPOLICY,
)
DECLINE = PolicyDecision("DECLINED", None, None, None, None, None, None, None)
POLICY_FIELDS = ["policy_no", "premium", "rate", "term_start", "term_end", "epolicy_sha256"]


def apply(app: PolicyApplication = APP, quota: Quota | None = QUOTA, *,
          on: date = ON, approved_increases: Decimal = Decimal(0),
          live_insured: Decimal = Decimal(0)) -> None:
    check_application(app, quota, on=on, approved_increases=approved_increases,
                      live_insured=live_insured)


def absent(name: str) -> dict[str, Any]:
    """Keyword arguments for ``replace`` that leave the field ``name`` out."""
    return {name: None}


def refused_with(code: str, call: object, *args: object, **kwargs: object) -> None:
    """Assert that ``call`` refuses with exactly ``code``."""
    with pytest.raises(BusinessRuleError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message


def amount(value: str) -> PolicyApplication:
    return replace(APP, insured_amount=Decimal(value))


def term(start: date, end: date) -> PolicyApplication:
    return replace(APP, term_start=start, term_end=end)


# --- application -------------------------------------------------------------------------------


def test_an_application_within_an_approved_quota_is_accepted() -> None:
    apply()


def test_an_application_naming_an_unknown_quota_is_refused_with_2601() -> None:
    refused_with("2601", apply, APP, None)


def test_an_application_on_another_enterprises_quota_is_refused_with_2601() -> None:
    refused_with("2601", apply, APP, replace(QUOTA, uscc=OTHER_USCC))


@pytest.mark.parametrize("status", ["SUBMITTED", "UNDERWRITING", "REJECTED", "EXPIRED"])
def test_an_application_on_a_quota_that_is_not_approved_is_refused_with_2601(status: str) -> None:
    refused_with("2601", apply, APP, replace(QUOTA, status=status))


def test_an_application_on_an_approved_quota_past_its_valid_to_is_refused_with_2601() -> None:
    late = replace(QUOTA, valid_to=ON - DAY, valid_from=ON - 30 * DAY)
    refused_with("2601", apply, term(ON - 30 * DAY, ON - DAY), late)


def test_an_application_on_the_quotas_last_valid_day_is_accepted() -> None:
    apply(term(QUOTA.valid_to, QUOTA.valid_to), on=QUOTA.valid_to)  # type: ignore[arg-type]


def test_an_insured_amount_equal_to_what_the_quota_still_allows_is_accepted() -> None:
    # 1,000,000.00 approved + 250,000.10 increases − 600,000.00 live = 650,000.10
    apply(amount("650000.10"), approved_increases=Decimal("250000.10"),
          live_insured=Decimal("600000.00"))


def test_an_insured_amount_one_fen_above_what_the_quota_allows_is_refused_with_2602() -> None:
    refused_with("2602", apply, amount("650000.11"), approved_increases=Decimal("250000.10"),
                 live_insured=Decimal("600000.00"))


def test_approved_increases_make_room_for_a_larger_policy() -> None:
    refused_with("2602", apply, amount("1200000.00"))
    apply(amount("1200000.00"), approved_increases=Decimal("200000.00"))


def test_live_policies_use_up_the_quota() -> None:
    apply(amount("1000000.00"))
    refused_with("2602", apply, amount("1000000.00"), live_insured=Decimal("0.01"))


def test_what_a_quota_allows_is_exact_in_decimal() -> None:
    quota = replace(QUOTA, approved_amount=Decimal("0.10"))
    assert available(quota, Decimal("0.20"), Decimal(0)) == Decimal("0.30")
    assert available(quota, Decimal("0.20"), Decimal("0.30")) == Decimal(0)
    big = replace(QUOTA, approved_amount=Decimal("9999999999999999.99"))
    assert available(big, Decimal(0), Decimal("0.01")) == Decimal("9999999999999999.98")


def test_a_term_inside_the_quotas_validity_up_to_both_ends_is_accepted() -> None:
    apply(term(date(2026, 1, 1), date(2026, 12, 31)))


def test_a_term_starting_before_the_quotas_validity_is_refused_with_2603() -> None:
    refused_with("2603", apply, term(date(2025, 12, 31), date(2026, 6, 30)))


def test_a_term_ending_after_the_quotas_validity_is_refused_with_2603() -> None:
    refused_with("2603", apply, term(date(2026, 3, 1), date(2027, 1, 1)))


def test_an_inverted_term_is_refused_with_2603() -> None:
    refused_with("2603", apply, term(date(2026, 6, 2), date(2026, 6, 1)))


def test_a_term_longer_than_a_year_is_refused_with_2603_even_inside_the_validity() -> None:
    wide = replace(QUOTA, valid_from=date(2026, 1, 1), valid_to=date(2027, 12, 31))
    apply(term(date(2026, 3, 1), date(2027, 2, 28)), wide)
    refused_with("2603", apply, term(date(2026, 3, 1), date(2027, 3, 1)), wide)


# --- the insurer's decision ----------------------------------------------------------------


def test_an_issued_policy_with_every_field_and_a_matching_digest_is_accepted() -> None:
    check_decision("SUBMITTED", ISSUE)


def test_an_issued_policy_whose_e_policy_content_is_not_sent_is_accepted() -> None:
    check_decision("SUBMITTED", replace(ISSUE, epolicy_content=None))


def test_a_declined_application_without_policy_fields_is_accepted() -> None:
    check_decision("SUBMITTED", DECLINE)


@pytest.mark.parametrize("missing", POLICY_FIELDS)
def test_an_issued_policy_without_each_of_its_fields_is_refused_with_2409(missing: str) -> None:
    refused_with("2409", check_decision, "SUBMITTED", replace(ISSUE, **absent(missing)))


@pytest.mark.parametrize("field", POLICY_FIELDS)
def test_a_declined_application_carrying_a_policy_field_is_refused_with_2409(field: str) -> None:
    refused_with("2409", check_decision, "SUBMITTED",
                 replace(DECLINE, **{field: getattr(ISSUE, field)}))


@pytest.mark.parametrize("status", ["ISSUED", "DECLINED", "RECORDED", "RECORD_REJECTED",
                                    "EXPIRED"])
@pytest.mark.parametrize("decision", [ISSUE, DECLINE], ids=["ISSUED", "DECLINED"])
def test_a_decision_on_an_application_no_longer_submitted_is_refused_with_2605(
    status: str, decision: PolicyDecision,
) -> None:
    refused_with("2605", check_decision, status, decision)


def test_an_e_policy_whose_sha256_is_of_other_bytes_is_refused_with_2606() -> None:
    other = hashlib.sha256(EPOLICY + b" tampered").hexdigest()
    refused_with("2606", check_decision, "SUBMITTED", replace(ISSUE, epolicy_sha256=other))


def test_an_e_policy_whose_content_was_changed_after_hashing_is_refused_with_2606() -> None:
    refused_with("2606", check_decision, "SUBMITTED",
                 replace(ISSUE, epolicy_content=EPOLICY.replace(b"PICC", b"CPIC")))


# --- the customs record ------------------------------------------------------------------------


def test_customs_may_record_an_issued_policy_with_its_guarantee_record_number() -> None:
    check_record("ISSUED", "RECORDED", "GR-2026-0001")


def test_customs_may_reject_the_record_of_an_issued_policy_without_a_number() -> None:
    check_record("ISSUED", "REJECTED", None)


def test_a_record_without_its_guarantee_record_number_is_refused_with_2409() -> None:
    refused_with("2409", check_record, "ISSUED", "RECORDED", None)


def test_a_rejected_record_carrying_a_guarantee_record_number_is_refused_with_2409() -> None:
    refused_with("2409", check_record, "ISSUED", "REJECTED", "GR-2026-0001")


@pytest.mark.parametrize("status", ["SUBMITTED", "DECLINED", "RECORDED", "RECORD_REJECTED",
                                    "EXPIRED"])
def test_only_an_issued_policy_can_be_recorded_2605(status: str) -> None:
    refused_with("2605", check_record, status, "RECORDED", "GR-2026-0001")
