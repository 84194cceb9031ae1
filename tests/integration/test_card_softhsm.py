"""Pkcs11Signer against a real SoftHSM2 token: signing, PIN handling, lost sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from lxml import etree

from adapter.errors import CardUnavailable, ConfigurationError, PinIncorrect
from card import Pkcs11Signer, sign_envelope, verify_envelope
from card.signer import CardInfo
from tests.support.softhsm import TokenInfo, session_token

pytestmark = pytest.mark.integration

ENVELOPE = (
    b'<cdgi:Envelope xmlns:cdgi="urn:cdgi:1" version="1.0"><cdgi:Head>'
    b"<cdgi:MessageId>6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1</cdgi:MessageId>"
    b"<cdgi:MessageType>CDGI109</cdgi:MessageType><cdgi:SenderId>PORTAL</cdgi:SenderId>"
    b"<cdgi:ReceiverId>DC</cdgi:ReceiverId><cdgi:SendTime>2026-11-24T10:15:00+08:00</cdgi:SendTime>"
    b'</cdgi:Head><cdgi:Body><cdgi:QuotaApply Id="D6F1C2B9E"><cdgi:QuotaNo>Q2026112400017</cdgi:QuotaNo>'
    b"</cdgi:QuotaApply></cdgi:Body></cdgi:Envelope>"
)


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> TokenInfo:
    return session_token(tmp_path_factory)


@pytest.fixture()
def signer(token: TokenInfo) -> Iterator[Pkcs11Signer]:
    with Pkcs11Signer(
        token.module, token.token_label, token.key_label, token.pin, key_name="DC-CARD-1"
    ) as card:
        yield card


def test_the_card_signs_an_envelope_that_our_verifier_accepts(signer: Pkcs11Signer) -> None:
    signed = etree.fromstring(etree.tostring(sign_envelope(etree.fromstring(ENVELOPE), signer)))

    verified = verify_envelope(signed, [signer.certificate])

    assert verified.certificate == signer.certificate
    assert signed.findtext("{*}Signature/{*}KeyInfo/{*}KeyName") == "DC-CARD-1"


def test_info_reports_the_token_and_its_certificate(signer: Pkcs11Signer, token: TokenInfo) -> None:
    info = signer.info()

    assert isinstance(info, CardInfo)
    assert info.token_label == token.token_label
    assert info.key_label == token.key_label
    assert info.key_name == "DC-CARD-1"
    assert info.manufacturer == "SoftHSM project"
    assert info.serial
    assert info.subject == "CN=CDGI test card"
    assert info.not_before < info.not_after
    assert 700 <= info.days_to_expiry <= 730
    assert info.fingerprint_sha256 == signer.certificate.fingerprint(hashes.SHA256()).hex()


def test_the_token_key_is_sensitive_and_never_extractable(token: TokenInfo) -> None:
    import pkcs11  # the one test that looks behind the port, at the key's attributes

    lib = pkcs11.lib(token.module)
    with lib.get_token(token_label=token.token_label).open(user_pin=token.pin) as session:
        key = session.get_key(pkcs11.ObjectClass.PRIVATE_KEY, label=token.key_label)
        assert key[pkcs11.Attribute.SENSITIVE] is True
        assert key[pkcs11.Attribute.EXTRACTABLE] is False


def test_a_wrong_pin_is_refused_once_and_never_tried_again(
    token: TokenInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from card import p11

    logins: list[str] = []
    open_session = p11.open_session

    def counting(token_: object, pin: str, *, rw: bool = False) -> object:
        logins.append(pin)
        return open_session(token_, pin, rw=rw)  # type: ignore[arg-type]

    monkeypatch.setattr(p11, "open_session", counting)
    # No other session of this process is logged in here: C_Login would then answer
    # USER_ALREADY_LOGGED_IN whatever the PIN (the login belongs to the process).
    card = Pkcs11Signer(token.module, token.token_label, token.key_label, "0000")

    with pytest.raises(PinIncorrect, match="CDGI_CARD_PIN") as first:
        card.sign_bytes(b"payload")
    with pytest.raises(PinIncorrect) as second:
        card.sign_bytes(b"payload")

    assert len(logins) == 1
    for error in (first.value, second.value):
        assert "0000" not in str(error)
        assert "0000" not in repr(error)
    assert "0000" not in repr(card)


def test_the_pin_never_appears_in_the_signer_or_its_errors(token: TokenInfo) -> None:
    secret = "secret-pin-9431"
    card = Pkcs11Signer(token.module, "NO-SUCH-TOKEN", token.key_label, secret)

    with pytest.raises(CardUnavailable, match="CDGI_TOKEN_LABEL") as refused:
        card.sign_bytes(b"payload")

    assert secret not in repr(card)
    assert secret not in str(refused.value)
    assert secret not in repr(refused.value)
    assert secret not in repr(refused.value.__cause__)


def test_a_session_closed_underneath_is_reopened(signer: Pkcs11Signer) -> None:
    before = signer.sign_bytes(b"payload")
    signer._session.close()  # type: ignore[union-attr]  # as a reader reset would

    after = signer.sign_bytes(b"payload")

    assert after == before  # PKCS#1 v1.5 is deterministic: the same key signed


def test_a_missing_module_names_the_setting_to_fix(token: TokenInfo) -> None:
    card = Pkcs11Signer("/nonexistent/libpkcs11.so", token.token_label, token.key_label, token.pin)

    with pytest.raises(ConfigurationError, match="CDGI_PKCS11_MODULE"):
        card.sign_bytes(b"payload")


def test_a_missing_key_names_the_setting_to_fix(token: TokenInfo) -> None:
    with (
        Pkcs11Signer(token.module, token.token_label, "no-such-key", token.pin) as card,
        pytest.raises(ConfigurationError, match="CDGI_KEY_LABEL"),
    ):
        card.sign_bytes(b"payload")


_PULL_AND_PUT_BACK = """
import json, os, sys
from pathlib import Path
from adapter.errors import CardUnavailable
from card import Pkcs11Signer
module, label, key, pin, tokens = sys.argv[1:6]
card = Pkcs11Signer(module, label, key, pin)
seen = {"before": card.sign_bytes(b"payload").hex()}
os.rename(tokens, tokens + ".away")
try:
    for attempt in range(2):
        try:
            card.sign_bytes(b"payload")
            seen["while_away"] = "signed"
        except CardUnavailable as e:
            seen["while_away"] = e.message
    seen["certificate_while_away"] = card.certificate.subject.rfc4514_string()
finally:
    os.rename(tokens + ".away", tokens)
seen["after"] = card.sign_bytes(b"payload").hex()
print(json.dumps(seen))
"""


def test_a_token_taken_away_and_put_back_is_used_again_by_the_same_signer(
    tmp_path: Path,
) -> None:
    # Its own token and process: SoftHSM2 reads its configuration once per process.
    import json
    import os
    import subprocess
    import sys

    from tests.support.harness import ROOT
    from tests.support.softhsm import make_token

    own = make_token(tmp_path, token_label="CDGI-PULL", key_label="pull", pin="pin-7731")
    out = subprocess.run(
        [sys.executable, "-c", _PULL_AND_PUT_BACK, own.module, own.token_label, own.key_label,
         own.pin, str(own.softhsm_dir / "tokens")],
        env={**os.environ, **own.env}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)

    assert seen["while_away"] != "signed", "signing without the token is CardUnavailable"
    assert seen["certificate_while_away"] == "CN=CDGI test card"
    assert seen["after"] == seen["before"], "the same key signs again once the token is back"
    assert own.pin not in out.stdout + out.stderr
