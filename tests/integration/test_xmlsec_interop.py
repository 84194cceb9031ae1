"""Interoperability with xmlsec1, an independent XML-DSig implementation, both ways.

xmlsec1 verifies what the card signs (envelope and document signature), and our verifier
accepts what xmlsec1 signs from a plain template. ``--enabled-key-data key-name`` stops
xmlsec1 from trusting the certificate inside the message, so only ``--pubkey-cert-pem`` counts.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from adapter.errors import SignatureInvalid
from card import Pkcs11Signer, SoftwareSigner, sign_document, sign_envelope, verify_envelope
from tests.support import require_executable
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
# The envelope's own signature, and the document signature inside the business element.
ENVELOPE_SIGNATURE = "/*/*[local-name()='Signature']"
DOCUMENT_SIGNATURE = "/*/*[local-name()='Body']/*/*[local-name()='Signature']"
TEMPLATE_SIGNATURE = (
    b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
    b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    b'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
    b'<ds:Reference URI=""><ds:Transforms>'
    b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
    b'<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
    b'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/>'
    b"</ds:Reference></ds:SignedInfo><ds:SignatureValue/>"
    b"<ds:KeyInfo><ds:KeyName>PORTAL-01</ds:KeyName><ds:X509Data/></ds:KeyInfo></ds:Signature>"
)


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    return require_executable("xmlsec1")


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> TokenInfo:
    return session_token(tmp_path_factory)


@pytest.fixture()
def card(token: TokenInfo) -> Iterator[Pkcs11Signer]:
    with Pkcs11Signer(token.module, token.token_label, token.key_label, token.pin) as signer:
        yield signer


def xmlsec1_verifies(
    xmlsec1: str, message: Path, cert: Path, *, node_xpath: str, document: bool
) -> bool:
    reference = ["--enabled-reference-uris", "same-doc", "--id-attr:Id", "urn:cdgi:1:QuotaApply"]
    command = [
        xmlsec1, "--verify",
        "--pubkey-cert-pem", str(cert),
        "--enabled-key-data", "key-name",
        *(reference if document else ["--enabled-reference-uris", "empty"]),
        "--node-xpath", node_xpath,
        str(message),
    ]  # fmt: skip
    return subprocess.run(command, check=False, capture_output=True, text=True).returncode == 0


def write(path: Path, root: etree._Element) -> Path:
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


def test_xmlsec1_verifies_both_signatures_the_card_makes(
    xmlsec1: str, card: Pkcs11Signer, tmp_path: Path
) -> None:
    root = etree.fromstring(ENVELOPE)
    document = root.find("{urn:cdgi:1}Body/{urn:cdgi:1}QuotaApply")
    assert document is not None
    document.getparent().replace(document, sign_document(document, card))  # type: ignore[union-attr]
    message = write(tmp_path / "message.xml", sign_envelope(root, card))
    cert = tmp_path / "card.pem"
    cert.write_bytes(card.certificate.public_bytes(Encoding.PEM))
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(message.read_bytes().replace(b"Q2026112400017", b"Q2026112400018"))
    other = tmp_path / "other.pem"
    other.write_bytes(SoftwareSigner.generate("other").cert_pem())

    assert xmlsec1_verifies(xmlsec1, message, cert, node_xpath=ENVELOPE_SIGNATURE, document=False)
    assert xmlsec1_verifies(xmlsec1, message, cert, node_xpath=DOCUMENT_SIGNATURE, document=True)
    assert not xmlsec1_verifies(
        xmlsec1, tampered, cert, node_xpath=ENVELOPE_SIGNATURE, document=False
    )
    assert not xmlsec1_verifies(
        xmlsec1, tampered, cert, node_xpath=DOCUMENT_SIGNATURE, document=True
    )
    assert not xmlsec1_verifies(
        xmlsec1, message, other, node_xpath=ENVELOPE_SIGNATURE, document=False
    )


def test_we_verify_what_xmlsec1_signs_and_refuse_it_tampered(xmlsec1: str, tmp_path: Path) -> None:
    portal = SoftwareSigner.generate("PORTAL", key_name="PORTAL-01")
    key, cert = tmp_path / "portal.key", tmp_path / "portal.pem"
    key.write_bytes(portal.key_pem())
    cert.write_bytes(portal.cert_pem())
    template = etree.fromstring(ENVELOPE)
    template.append(etree.fromstring(TEMPLATE_SIGNATURE))
    signed = tmp_path / "signed.xml"
    subprocess.run(
        [xmlsec1, "--sign", "--privkey-pem", f"{key},{cert}", "--output", str(signed),
         str(write(tmp_path / "template.xml", template))],
        check=True,
        capture_output=True,
    )  # fmt: skip
    root = etree.fromstring(signed.read_bytes())

    verified = verify_envelope(root, [portal.certificate])

    assert verified.certificate == portal.certificate
    assert verified.signed.findtext("{*}Body/{*}QuotaApply/{*}QuotaNo") == "Q2026112400017"
    root.find("{*}Body/{*}QuotaApply/{*}QuotaNo").text = "Q2026112400018"  # type: ignore[union-attr]
    with pytest.raises(SignatureInvalid):
        verify_envelope(root, [portal.certificate])
