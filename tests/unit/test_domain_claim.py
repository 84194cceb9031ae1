"""Claims: the late fee, customs' notice, the insurer's settlement, who hears of a payment
(CONTRACT §6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.domain.claim import (
    NoticeEntry,
    check_notice,
    check_settlement,
    late_fee,
    share_targets,
)
from adapter.errors import BusinessRuleError

NOTICE_DATE = date(2026, 1, 31)
E1 = NoticeEntry("220120261000000001", Decimal("10000.00"), date(2026, 1, 1), 30,
                 Decimal("150.00"))
E2 = NoticeEntry("220120261000000002", Decimal("50.00"), date(2026, 1, 30), 1, Decimal("0.03"))
OWED = {E1.entry_id: Decimal("10000.00"), E2.entry_id: Decimal("50.00")}


def notice(entries: list[NoticeEntry] | None = None, *, policy_status: str | None = "RECORDED",
           outstanding: dict[str, Decimal] | None = None, total: str | None = None) -> None:
    """check_notice with a notice that is right unless told otherwise."""
    entries = [E1] if entries is None else entries
    check_notice(
        policy_status=policy_status, entries=entries,
        outstanding=OWED if outstanding is None else outstanding,
        total=Decimal(total) if total is not None else sum(
            (e.tax + e.late_fee for e in entries), Decimal(0)),
        notice_date=NOTICE_DATE,
    )


def refused_with(code: str, call: object, *args: object, **kwargs: object) -> None:
    """Assert that ``call`` refuses with exactly ``code``."""
    with pytest.raises(BusinessRuleError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message


# --- late fee ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tax, days, fee",
    [
        ("10000.00", 30, "150.00"),
        ("10000.00", 0, "0.00"),
        ("123.45", 17, "1.05"),  # 1.049325
        ("10.00", 1, "0.01"),  # 0.005: half-up, where half-even and half-down give 0.00
        ("50.00", 1, "0.03"),  # 0.025: half-up, where half-even gives 0.02
        ("9.99", 1, "0.00"),  # 0.004995 stays below the half
        ("12.00", 1, "0.01"),  # 0.006 rounds, it is not cut
        ("30.00", 3, "0.05"),  # 0.045
        ("9999999999999910.00", 1, "4999999999999.96"),  # …9.955, a half at 16 digits
        ("9999999999999999.99", 3650, "18249999999999999.98"),  # …9.98175
        ("1234567890123456.78", 365, "225308639947530.86"),  # …0.86235
    ],
)
def test_the_late_fee_is_tax_times_0_05_percent_a_day_rounded_half_up_to_the_fen(
    tax: str, days: int, fee: str,
) -> None:
    result = late_fee(Decimal(tax), days)
    assert result == Decimal(fee)
    assert result.as_tuple().exponent == -2


AMOUNTS = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("9999999999999999.99"),
                      places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=500, deadline=None, database=None)
@given(tax=AMOUNTS, days=st.integers(min_value=0, max_value=3650))
def test_the_late_fee_of_any_amount_is_within_half_a_fen_of_the_exact_product(
    tax: Decimal, days: int,
) -> None:
    result = late_fee(tax, days)
    assert isinstance(result, Decimal)
    assert result.as_tuple().exponent == -2
    exact = Fraction(tax) * Fraction(5, 10000) * days
    assert abs(Fraction(result) - exact) <= Fraction(5, 1000)
    # Half-up, computed independently in integer fen: ties go up, never to even.
    fen_times_2000 = int(tax * 100) * days  # the fee in units of 1/2000 fen
    assert Fraction(result) * 100 == (fen_times_2000 + 1000) // 2000


# --- the claim notice ----------------------------------------------------------------------


def test_a_notice_on_a_recorded_policy_with_right_fees_and_total_is_accepted() -> None:
    notice([E1, E2])


def test_a_notice_on_a_policy_expired_after_its_record_is_accepted() -> None:
    notice(policy_status="EXPIRED")


@pytest.mark.parametrize("status", [None, "SUBMITTED", "ISSUED", "DECLINED", "RECORD_REJECTED"])
def test_a_notice_on_a_policy_that_was_never_recorded_is_refused_with_2901(
    status: str | None,
) -> None:
    refused_with("2901", notice, policy_status=status)


def test_a_notice_naming_an_entry_never_deducted_is_refused_with_2902() -> None:
    refused_with("2902", notice, [E1, E2], outstanding={E1.entry_id: Decimal("10000.00")})


def test_an_entry_never_deducted_is_refused_with_2902_even_when_it_claims_nothing() -> None:
    nothing = replace(E2, tax=Decimal("0.00"), late_fee=Decimal("0.00"))
    refused_with("2902", notice, [E1, nothing], outstanding={E1.entry_id: Decimal("10000.00")})


def test_a_notice_naming_an_entry_fully_restored_is_refused_with_2902() -> None:
    refused_with("2902", notice, outstanding={E1.entry_id: Decimal("0.00")})


def test_a_notice_claiming_more_tax_than_is_outstanding_is_refused_with_2902() -> None:
    refused_with("2902", notice, outstanding={E1.entry_id: Decimal("9999.99")})


def test_a_notice_claiming_part_of_what_is_outstanding_is_accepted() -> None:
    notice(outstanding={E1.entry_id: Decimal("25000.00")})


def test_a_notice_naming_one_entry_twice_beyond_what_is_outstanding_is_refused_with_2902() -> None:
    half = replace(E1, tax=Decimal("6000.00"), late_fee=Decimal("90.00"))
    refused_with("2902", notice, [half, half])


@pytest.mark.parametrize("days", [29, 31, 0])
def test_overdue_days_that_are_not_due_date_to_notice_date_are_refused_with_2909(
    days: int,
) -> None:
    wrong = replace(E1, overdue_days=days, late_fee=late_fee(E1.tax, days))
    refused_with("2909", notice, [wrong])


@pytest.mark.parametrize("fee", ["149.99", "150.01", "0.00"])
def test_a_late_fee_that_is_not_the_rule_is_refused_with_2903(fee: str) -> None:
    refused_with("2903", notice, [replace(E1, late_fee=Decimal(fee))])


def test_a_late_fee_rounded_half_even_instead_of_half_up_is_refused_with_2903() -> None:
    refused_with("2903", notice, [replace(E2, late_fee=Decimal("0.02"))])


def test_a_late_fee_written_with_one_decimal_is_the_same_amount() -> None:
    notice([replace(E1, late_fee=Decimal("150.0"))])


def test_a_notice_whose_total_is_the_sum_of_tax_and_late_fee_is_accepted() -> None:
    notice([E1, E2], total="10200.03")  # 10000.00 + 150.00 + 50.00 + 0.03


@pytest.mark.parametrize("total", ["10200.02", "10200.04", "10150.03"])
def test_a_total_that_is_not_the_sum_of_tax_and_late_fee_is_refused_with_2904(total: str) -> None:
    refused_with("2904", notice, [E1, E2], total=total)


def test_a_total_that_leaves_out_the_late_fees_is_refused_with_2904() -> None:
    refused_with("2904", notice, [E1, E2], total="10050.00")


# --- settlement ----------------------------------------------------------------------------


def test_a_notified_claim_may_be_paid_with_its_amount_and_time() -> None:
    check_settlement("NOTIFIED", "PAID", Decimal("10150.00"), True)


def test_a_notified_claim_may_be_refused_without_amount_or_time() -> None:
    check_settlement("NOTIFIED", "REFUSED", None, False)


@pytest.mark.parametrize("status", ["PAID", "REFUSED"])
@pytest.mark.parametrize("result, paid_amount, paid_time",
                         [("PAID", Decimal("1.00"), True), ("REFUSED", None, False)])
def test_a_settled_claim_cannot_be_settled_again_2906(
    status: str, result: str, paid_amount: Decimal | None, paid_time: bool,
) -> None:
    refused_with("2906", check_settlement, status, result, paid_amount, paid_time)


@pytest.mark.parametrize("paid_amount, paid_time",
                         [(None, True), (Decimal("1.00"), False), (None, False)])
def test_a_payment_without_its_amount_or_time_is_refused_with_2409(
    paid_amount: Decimal | None, paid_time: bool,
) -> None:
    refused_with("2409", check_settlement, "NOTIFIED", "PAID", paid_amount, paid_time)


@pytest.mark.parametrize("paid_amount, paid_time",
                         [(Decimal("1.00"), False), (None, True), (Decimal("1.00"), True)])
def test_a_refusal_carrying_an_amount_or_time_is_refused_with_2409(
    paid_amount: Decimal | None, paid_time: bool,
) -> None:
    refused_with("2409", check_settlement, "NOTIFIED", "REFUSED", paid_amount, paid_time)


# --- who hears of a payment ----------------------------------------------------------------


PARTIES = [
    ("INS.PICC", True), ("INS.CPIC", True), ("INS.PAIC", True), ("INS.OLD", False),
    ("BANK.BOC", True), ("CUS.0800", True), ("PORTAL", True),
]


def test_a_paid_claim_is_shared_with_every_other_enabled_insurer() -> None:
    assert share_targets(PARTIES, "INS.PICC") == ["INS.CPIC", "INS.PAIC"]


def test_the_paying_insurer_is_not_told_of_its_own_claim() -> None:
    assert "INS.CPIC" not in share_targets(PARTIES, "INS.CPIC")
    assert "INS.PICC" in share_targets(PARTIES, "INS.CPIC")


def test_a_disabled_insurer_hears_nothing() -> None:
    assert "INS.OLD" not in share_targets(PARTIES, "INS.PICC")
    assert "INS.OLD" in share_targets([("INS.OLD", True)], "INS.PICC")


def test_banks_customs_and_the_portal_never_hear_of_a_claim_even_if_enabled() -> None:
    assert share_targets([p for p in PARTIES if not p[0].startswith("INS.")], "INS.PICC") == []


def test_the_only_insurer_has_nobody_to_share_with() -> None:
    assert share_targets([("INS.PICC", True), ("BANK.BOC", True)], "INS.PICC") == []
