"""SoftwareSigner and SignerKey: the software half of the card port, no token needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat

from card import SoftwareSigner
from card.keys import SignerKey


@pytest.fixture(scope="module")
def signer() -> SoftwareSigner:
    return SoftwareSigner.generate("PORTAL signing card", key_name="PORTAL-01")


def _verify(certificate: x509.Certificate, signature: bytes, data: bytes) -> None:
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def test_a_signature_verifies_with_the_certificate_as_pkcs1_v15_sha256(
    signer: SoftwareSigner,
) -> None:
    signature = signer.sign_bytes(b"payload")

    _verify(signer.certificate, signature, b"payload")
    with pytest.raises(InvalidSignature):
        _verify(signer.certificate, signature, b"another payload")


def test_a_generated_certificate_is_self_signed_for_digital_signature(
    signer: SoftwareSigner,
) -> None:
    certificate = signer.certificate
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value

    assert certificate.subject == certificate.issuer
    assert certificate.subject.rfc4514_string() == "CN=PORTAL signing card"
    assert usage.digital_signature
    assert signer.key_name == "PORTAL-01"
    certificate.verify_directly_issued_by(certificate)


def test_the_key_name_defaults_to_the_common_name_and_the_validity_can_be_chosen() -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    signer = SoftwareSigner.generate(
        "INS.PICC", not_before=start, not_after=start + timedelta(days=3)
    )

    assert signer.key_name == "INS.PICC"
    assert signer.certificate.not_valid_before_utc == start
    assert signer.certificate.not_valid_after_utc == start + timedelta(days=3)


def test_pem_export_and_import_give_the_same_key(signer: SoftwareSigner) -> None:
    loaded = SoftwareSigner.from_pem(signer.key_pem(), signer.cert_pem(), "again")

    assert loaded.certificate == signer.certificate
    assert loaded.key_name == "again"
    _verify(signer.certificate, loaded.sign_bytes(b"payload"), b"payload")


def test_the_signer_key_signs_through_the_signer_for_signxml(signer: SoftwareSigner) -> None:
    key = SignerKey(signer)

    signature = key.sign(b"payload", padding.PKCS1v15(), hashes.SHA256())

    _verify(signer.certificate, signature, b"payload")
    assert key.key_size == 2048
    assert key.public_key() == signer.certificate.public_key()


def test_the_signer_key_refuses_other_schemes_and_never_gives_out_the_private_key(
    signer: SoftwareSigner,
) -> None:
    key = SignerKey(signer)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

    with pytest.raises(TypeError, match="PKCS1-v1_5 with SHA-256 only"):
        key.sign(b"payload", pss, hashes.SHA256())
    with pytest.raises(TypeError, match="PKCS1-v1_5 with SHA-256 only"):
        key.sign(b"payload", padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(TypeError):
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        key.private_numbers()
