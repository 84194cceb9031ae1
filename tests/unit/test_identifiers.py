"""The USCC check character of GB 32100-2015."""

from __future__ import annotations

import pytest

from adapter.domain.identifiers import (
    USCC_CHARSET,
    USCC_WEIGHTS,
    is_valid_uscc,
    make_uscc,
    uscc_check_char,
)

# Codes published by the enterprises themselves (business licences, annual reports).
PUBLISHED = {
    "914403001922038216": "Huawei Technologies Co., Ltd.",
    "9144030071526726XG": "Tencent Technology (Shenzhen) Co., Ltd.",
    "911000001000013428": "Bank of China Limited",
    "91100000100003962T": "Industrial and Commercial Bank of China Limited",
}


def test_the_character_set_is_the_31_characters_of_gb_32100() -> None:
    assert len(USCC_CHARSET) == 31
    assert set(USCC_CHARSET).isdisjoint("IOSVZ")
    assert set(USCC_CHARSET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("IOSVZ")


def test_the_weights_are_the_powers_of_3_modulo_31() -> None:
    assert tuple(pow(3, i, 31) for i in range(17)) == USCC_WEIGHTS


@pytest.mark.parametrize("code", sorted(PUBLISHED), ids=lambda code: PUBLISHED[code])
def test_published_codes_are_valid(code: str) -> None:
    assert is_valid_uscc(code)
    assert uscc_check_char(code[:17]) == code[17]


def test_a_worked_example_gives_the_check_character_by_hand() -> None:
    # 9·1 + 1·3 + 3·9 + 5·27 + 1·26 + M(21)·20 + 1·8 + Y(30)·30 + 4·28 = 1640;
    # 1640 mod 31 = 28; 31 - 28 = 3.
    first17 = "91350100M000100Y4"
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    assert total == 1640
    assert uscc_check_char(first17) == "3"
    assert is_valid_uscc("91350100M000100Y43")


def test_a_sum_divisible_by_31_gives_the_check_character_0() -> None:
    # Seventeen zeros sum to 0; 31 - 0 = 31 stands for 0.
    assert uscc_check_char("0" * 17) == "0"
    assert is_valid_uscc("0" * 18)


@pytest.mark.parametrize(
    "prefix", ["91210100MA0XXXXX1", "12100000400000770", "93110108MA01ABCDE", "Y1440300MA5FWXY87"]
)
def test_make_uscc_makes_codes_that_pass_and_keep_the_prefix(prefix: str) -> None:
    code = make_uscc(prefix)
    assert code.startswith(prefix) and len(code) == 18
    assert is_valid_uscc(code)


@pytest.mark.parametrize("code", sorted(PUBLISHED))
def test_every_other_check_character_fails(code: str) -> None:
    for wrong in USCC_CHARSET.replace(code[17], ""):
        assert not is_valid_uscc(code[:17] + wrong)


def test_a_changed_body_character_fails() -> None:
    code = "914403001922038216"
    assert not is_valid_uscc("914403001922038226")
    assert not is_valid_uscc("824403001922038216")
    assert not is_valid_uscc(code[1:] + code[0])


@pytest.mark.parametrize("letter", "IOSVZ")
def test_forbidden_letters_fail_wherever_they_stand(letter: str) -> None:
    body = "91210100MA0XXXXX1"
    for position in range(17):
        prefix = body[:position] + letter + body[position + 1 :]
        assert not is_valid_uscc(prefix + "0")
        with pytest.raises(ValueError, match="not in the USCC set"):
            uscc_check_char(prefix)
    assert not is_valid_uscc(body + letter)


@pytest.mark.parametrize(
    "text",
    ["", "91440300192203821", "9144030019220382160", "914403001922038216 ", "9144030071526726xg"],
)
def test_wrong_lengths_spaces_and_lower_case_fail(text: str) -> None:
    assert not is_valid_uscc(text)


def test_a_value_that_is_not_a_string_is_not_a_uscc() -> None:
    assert not is_valid_uscc(914403001922038216)  # type: ignore[arg-type]
    assert not is_valid_uscc(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("first17", ["", "9144030019220382", "914403001922038216"])
def test_the_check_character_needs_exactly_17_characters(first17: str) -> None:
    with pytest.raises(ValueError, match="17 characters"):
        uscc_check_char(first17)
