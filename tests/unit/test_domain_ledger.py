"""The guarantee ledger of a recorded policy: exact amounts, and discrepancies flagged, not
refused (CONTRACT §6: customs is authoritative)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.domain.ledger import (
    Entry,
    Outcome,
    available,
    check_total,
    deduct,
    outstanding,
    restore,
)
from adapter.errors import BusinessRuleError

INSURED = Decimal("100000.00")


def d(entry_id: str, value: str) -> Entry:
    return Entry(entry_id, "DEDUCT", Decimal(value))


def r(entry_id: str, value: str) -> Entry:
    return Entry(entry_id, "RESTORE", Decimal(value))


# --- available -----------------------------------------------------------------------------


def test_with_nothing_deducted_the_whole_insured_amount_is_available() -> None:
    assert available(INSURED, []) == INSURED


def test_available_is_insured_minus_deducted_plus_restored() -> None:
    entries = [d("E1", "30000.00"), d("E2", "20000.00"), r("E1", "10000.00")]
    assert available(INSURED, entries) == Decimal("60000.00")


def test_available_adds_tenths_of_a_yuan_exactly() -> None:
    entries = [d("E1", "0.30"), r("E1", "0.10"), r("E1", "0.20")]
    assert available(Decimal("1.00"), entries) == Decimal("1.00")
    assert available(Decimal("0.30"), [d("E1", "0.10"), d("E2", "0.20")]) == Decimal(0)


def test_available_keeps_every_fen_of_a_sixteen_digit_amount() -> None:
    entries = [d("E1", "0.01")]
    assert available(Decimal("9999999999999999.99"), entries) == Decimal("9999999999999999.98")


# --- deductions --------------------------------------------------------------------------------


def test_a_deduction_within_the_available_amount_has_no_discrepancy() -> None:
    outcome = deduct(INSURED, [d("E1", "30000.00")], "E2", Decimal("20000.00"))
    assert outcome == Outcome(Decimal("50000.00"))


def test_a_deduction_of_exactly_the_available_amount_has_no_discrepancy() -> None:
    outcome = deduct(INSURED, [d("E1", "30000.00")], "E2", Decimal("70000.00"))
    assert outcome.discrepancy is None
    assert outcome.available == Decimal(0)


def test_a_deduction_beyond_the_available_amount_is_recorded_and_flagged_2801() -> None:
    outcome = deduct(INSURED, [d("E1", "30000.00")], "E2", Decimal("70000.01"))
    assert outcome.discrepancy == "2801"
    assert outcome.available == Decimal("-0.01")
    assert outcome.note


def test_a_second_deduction_of_one_entry_is_recorded_and_flagged_2803() -> None:
    outcome = deduct(INSURED, [d("E1", "30000.00")], "E1", Decimal("30000.00"))
    assert outcome.discrepancy == "2803"
    assert outcome.available == Decimal("40000.00")
    assert outcome.note and "E1" in outcome.note


def test_a_deduction_of_an_entry_already_restored_is_still_a_second_deduction_2803() -> None:
    outcome = deduct(INSURED, [d("E1", "30000.00"), r("E1", "30000.00")], "E1",
                     Decimal("30000.00"))
    assert outcome.discrepancy == "2803"
    assert outcome.available == Decimal("70000.00")


# --- restorations ------------------------------------------------------------------------------


def test_a_restore_of_a_deducted_entry_has_no_discrepancy() -> None:
    outcome = restore(INSURED, [d("E1", "30000.00")], "E1", Decimal("30000.00"))
    assert outcome == Outcome(INSURED)


def test_a_partial_restore_then_the_rest_has_no_discrepancy() -> None:
    entries = [d("E1", "30000.00"), r("E1", "10000.00")]
    outcome = restore(INSURED, entries, "E1", Decimal("20000.00"))
    assert outcome.discrepancy is None
    assert outcome.available == INSURED


def test_a_restore_without_its_deduction_is_recorded_and_flagged_2802() -> None:
    outcome = restore(INSURED, [d("E1", "30000.00")], "E2", Decimal("500.00"))
    assert outcome.discrepancy == "2802"
    assert outcome.available == Decimal("70500.00")
    assert outcome.note and "E2" in outcome.note


def test_a_restore_beyond_what_was_deducted_is_recorded_and_flagged_2804() -> None:
    outcome = restore(INSURED, [d("E1", "30000.00")], "E1", Decimal("30000.01"))
    assert outcome.discrepancy == "2804"
    assert outcome.available == Decimal("100000.01")


def test_a_restore_beyond_what_remains_after_earlier_restores_is_flagged_2804() -> None:
    entries = [d("E1", "30000.00"), r("E1", "20000.00")]
    outcome = restore(INSURED, entries, "E1", Decimal("10000.01"))
    assert outcome.discrepancy == "2804"


def test_a_second_full_restore_of_one_entry_is_flagged_2804() -> None:
    entries = [d("E1", "30000.00"), r("E1", "30000.00")]
    assert restore(INSURED, entries, "E1", Decimal("30000.00")).discrepancy == "2804"


# --- outstanding -------------------------------------------------------------------------------


def test_outstanding_is_what_one_entry_has_deducted_and_not_restored() -> None:
    entries = [d("E1", "300.30"), d("E2", "999.00"), r("E1", "100.10"), r("E2", "999.00")]
    assert outstanding(entries, "E1") == Decimal("200.20")
    assert outstanding(entries, "E2") == Decimal(0)


def test_an_entry_never_deducted_has_nothing_outstanding() -> None:
    assert outstanding([d("E1", "300.00")], "E9") == Decimal(0)


# --- the deduction's total ---------------------------------------------------------------------


def test_a_total_equal_to_the_sum_of_the_tax_items_is_accepted() -> None:
    check_total([Decimal("0.10"), Decimal("0.20")], Decimal("0.30"))
    check_total([Decimal("1234.5"), Decimal("0.50")], Decimal("1235.00"))


@pytest.mark.parametrize("total", ["0.29", "0.31", "0"])
def test_a_total_that_is_not_the_sum_of_the_tax_items_is_refused_with_2702(total: str) -> None:
    with pytest.raises(BusinessRuleError) as caught:
        check_total([Decimal("0.10"), Decimal("0.20")], Decimal(total))
    assert caught.value.code == "2702"
