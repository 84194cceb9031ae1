"""The secret scanner of ``tests/support/leaks.py`` finds what it is there to find.

Without this, a scan that looked in the wrong place, or for the wrong spelling, would pass
every run and prove nothing.
"""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from card import SoftwareSigner
from tests.support.leaks import (
    Evidence,
    Secret,
    assert_no_leaks,
    key_secrets,
    pin_secrets,
)

PIN = "pin-" + secrets.token_hex(8)


@pytest.mark.parametrize(
    ("form", "leaked"),
    [
        ("as is", f'{{"event": "login", "pin": "{PIN}"}}'),
        ("base64", f"Authorization: Basic {base64.b64encode(PIN.encode()).decode()}"),
        ("hex", f"C_Login data={PIN.encode().hex()}"),
        ("JSON-escaped", json.dumps({"args": f'pin="{PIN}"'})),
    ],
)
def test_a_pin_is_found_in_any_of_its_spellings(form: str, leaked: str) -> None:
    evidence = Evidence()
    evidence.add("daemon log", "a harmless line\n" + leaked + "\nanother line")

    (leak,) = evidence.leaks(pin_secrets(PIN))

    assert (leak.source, leak.secret, leak.line) == ("daemon log", "card PIN", 2)
    assert leak.form == form or (form, leak.form) == ("JSON-escaped", "as is")
    assert PIN not in str(leak), "a report of a leak must not leak it again"


def test_a_private_key_is_found_whole_and_by_a_single_line() -> None:
    key = SoftwareSigner.generate("partner")
    pem = key.key_pem().decode()
    one_line = pem.splitlines()[6]  # the sixth line of the base64 body, after the BEGIN line
    evidence = Evidence()
    evidence.add("receipt", b"<ReturnInfo>" + pem.encode() + b"</ReturnInfo>")
    evidence.add("journal info", f"bad key material: {one_line}")

    found = {(leak.source, leak.form) for leak in evidence.leaks(key_secrets([("BANK", key)]))}

    assert ("receipt", "as is") in found
    assert ("journal info", "PEM line 6") in found


def test_clean_output_passes_and_a_leak_fails_the_assertion() -> None:
    evidence = Evidence()
    evidence.add("daemon log", '{"event": "card opened", "token": "CDGI-SEC"}')
    assert_no_leaks(evidence, pin_secrets(PIN, "so-" + secrets.token_hex(8)))

    evidence.add("cli", f"error: PIN {PIN} refused")
    with pytest.raises(AssertionError, match="card PIN") as failed:
        assert_no_leaks(evidence, pin_secrets(PIN))
    assert PIN not in str(failed.value)


def test_a_secret_too_short_to_scan_for_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        Secret("SO PIN", "5678")
