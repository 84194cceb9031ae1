"""Identifier checks the schema cannot express: the USCC check character of GB 32100-2015.

The unified social credit code (统一社会信用代码) is 18 characters from a 31-character set
(the digits and the upper-case letters without I, O, S, V, Z). The last character is a check
character over the first 17: each character's value (its index in the set) is weighted by
3^i mod 31, and the check value is 31 - (sum mod 31), where 31 stands for 0. Pure standard
library: the schema checks the shape, this module the arithmetic.
"""

from __future__ import annotations

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters a USCC may use; a character's value is its index here."""

USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
"""The weights of the first 17 characters (3^i mod 31)."""

_VALUE = {char: value for value, char in enumerate(USCC_CHARSET)}


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a USCC.

    Raises ValueError if ``first17`` is not 17 characters of the USCC character set.
    """
    if len(first17) != 17:
        raise ValueError(
            f"a USCC without its check character has 17 characters, not {len(first17)}"
        )
    total = 0
    for position, (char, weight) in enumerate(zip(first17, USCC_WEIGHTS, strict=True), start=1):
        value = _VALUE.get(char)
        if value is None:
            raise ValueError(
                f"character {char!r} at position {position} is not in the USCC set "
                f"(digits and A-Z without I, O, S, V, Z)"
            )
        total += value * weight
    return USCC_CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(s: str) -> bool:
    """Whether ``s`` is 18 characters of the USCC set ending with the right check character."""
    if not isinstance(s, str) or len(s) != 18 or any(c not in _VALUE for c in s):
        return False
    return uscc_check_char(s[:17]) == s[17]


def make_uscc(prefix17: str) -> str:
    """A valid USCC made by appending the check character to ``prefix17`` (tests, simulators)."""
    return prefix17 + uscc_check_char(prefix17)
