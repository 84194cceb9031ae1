"""The envelope and document signatures, and every rule of the verification profile.

Each forgery here is one that signxml on its own would accept or report unhelpfully; the
tests pin the receipt code CONTRACT §4 gives it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner, methods

from adapter.errors import SecurityError, SignatureCoverage, SignatureInvalid
from card import (
    EXC_C14N,
    SoftwareSigner,
    sign_document,
    sign_envelope,
    verify_document,
    verify_envelope,
)
from card.xmldsig import DS

ENVELOPE = (
    b'<cdgi:Envelope xmlns:cdgi="urn:cdgi:1" version="1.0"><cdgi:Head>'
    b"<cdgi:MessageId>6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1</cdgi:MessageId>"
    b"<cdgi:MessageType>CDGI109</cdgi:MessageType><cdgi:SenderId>PORTAL</cdgi:SenderId>"
    b"<cdgi:ReceiverId>DC</cdgi:ReceiverId><cdgi:SendTime>2026-11-24T10:15:00+08:00</cdgi:SendTime>"
    b'</cdgi:Head><cdgi:Body><cdgi:QuotaApply Id="D6F1C2B9E"><cdgi:QuotaNo>Q2026112400017</cdgi:QuotaNo>'
    b"</cdgi:QuotaApply></cdgi:Body></cdgi:Envelope>"
)
NS = {"cdgi": "urn:cdgi:1", "ds": DS}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


@pytest.fixture(scope="module")
def portal() -> SoftwareSigner:
    return SoftwareSigner.generate("PORTAL", key_name="PORTAL-01")


@pytest.fixture(scope="module")
def enterprise() -> SoftwareSigner:
    return SoftwareSigner.generate("Operator of 91210100MA0XXXXX10", key_name="OP-0001")


@pytest.fixture(scope="module")
def adapter_card() -> SoftwareSigner:
    return SoftwareSigner.generate("DC", key_name="DC-CARD-1")


@pytest.fixture(scope="module")
def stranger() -> SoftwareSigner:
    return SoftwareSigner.generate("Somebody else")


def envelope() -> etree._Element:
    return etree.fromstring(ENVELOPE)


def travelled(root: etree._Element) -> etree._Element:
    """The element as the receiver parses it off the wire."""
    return etree.fromstring(etree.tostring(root))


def signed(signer: SoftwareSigner) -> etree._Element:
    return travelled(sign_envelope(envelope(), signer))


def quota_apply(root: etree._Element) -> etree._Element:
    found = root.find("cdgi:Body/cdgi:QuotaApply", NS)
    assert found is not None
    return found


def signature_of(parent: etree._Element) -> etree._Element:
    found = parent.find("ds:Signature", NS)
    assert found is not None
    return found


def code_of(verify: Callable[[], object]) -> str:
    with pytest.raises(SecurityError) as refused:
        verify()
    return refused.value.code


def with_document_signature(
    enterprise: SoftwareSigner, *, sender: str = "PORTAL"
) -> etree._Element:
    """A fresh envelope whose business element carries the enterprise's document signature."""
    root = envelope()
    root.find("cdgi:Head/cdgi:SenderId", NS).text = sender  # type: ignore[union-attr]
    document = quota_apply(root)
    document.getparent().replace(document, sign_document(document, enterprise))  # type: ignore[union-attr]
    return root


def signxml_signer(**options: object) -> XMLSigner:
    settings: dict[str, object] = {
        "method": methods.enveloped,
        "c14n_algorithm": CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    }
    return XMLSigner(**{**settings, **options})  # type: ignore[arg-type]


# -- what we make, and that it verifies ------------------------------------------------------
def test_an_envelope_signature_has_the_contract_shape(portal: SoftwareSigner) -> None:
    root = signed(portal)
    signature = root[-1]

    assert signature.tag == f"{{{DS}}}Signature"
    assert (
        signature.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm") == EXC_C14N
    )  # type: ignore[union-attr]
    assert signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") == RSA_SHA256  # type: ignore[union-attr]
    (reference,) = signature.findall("ds:SignedInfo/ds:Reference", NS)
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.iterfind("ds:Transforms/ds:Transform", NS)] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        EXC_C14N,
    ]
    assert reference.find("ds:DigestMethod", NS).get("Algorithm") == SHA256  # type: ignore[union-attr]
    assert signature.findtext("ds:KeyInfo/ds:KeyName", namespaces=NS) == "PORTAL-01"
    assert signature.find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS) is not None


def test_an_envelope_signed_by_the_sender_verifies_and_gives_what_was_signed(
    portal: SoftwareSigner, stranger: SoftwareSigner
) -> None:
    verified = verify_envelope(signed(portal), [stranger.certificate, portal.certificate])

    assert verified.certificate == portal.certificate
    assert verified.signature_method == RSA_SHA256
    assert verified.digest_method == SHA256
    assert verified.signed.tag == "{urn:cdgi:1}Envelope"
    assert (
        verified.signed.findtext("cdgi:Body/cdgi:QuotaApply/cdgi:QuotaNo", namespaces=NS)
        == "Q2026112400017"
    )
    assert verified.signed.find("ds:Signature", NS) is None


def test_a_document_signature_references_the_id_and_verifies(enterprise: SoftwareSigner) -> None:
    document = sign_document(quota_apply(envelope()), enterprise)

    assert document.tag == "{urn:cdgi:1}QuotaApply"
    assert document[-1].tag == f"{{{DS}}}Signature"
    assert document.find("ds:Signature/ds:SignedInfo/ds:Reference", NS).get("URI") == "#D6F1C2B9E"  # type: ignore[union-attr]
    verified = verify_document(travelled(document), [enterprise.certificate])
    assert verified.certificate == enterprise.certificate
    assert verified.signed.findtext("cdgi:QuotaNo", namespaces=NS) == "Q2026112400017"


def test_a_document_moved_into_a_new_envelope_keeps_its_signature_and_both_verify(
    portal: SoftwareSigner, enterprise: SoftwareSigner, adapter_card: SoftwareSigner
) -> None:
    from_portal = travelled(sign_envelope(with_document_signature(enterprise), portal))
    forwarded = envelope()
    forwarded.find("cdgi:Head/cdgi:SenderId", NS).text = "DC"  # type: ignore[union-attr]
    forwarded.find("cdgi:Head/cdgi:ReceiverId", NS).text = "INS.PICC"  # type: ignore[union-attr]
    body = forwarded.find("cdgi:Body", NS)
    body.replace(quota_apply(forwarded), copy.deepcopy(quota_apply(from_portal)))  # type: ignore[union-attr]

    message = travelled(sign_envelope(forwarded, adapter_card))

    by_adapter = verify_envelope(message, [adapter_card.certificate])
    by_enterprise = verify_document(quota_apply(message), [enterprise.certificate])
    assert by_adapter.certificate == adapter_card.certificate
    assert by_enterprise.certificate == enterprise.certificate
    # The envelope signature covers the document signature, and the document stays whole.
    assert by_adapter.signed.find("cdgi:Body/cdgi:QuotaApply/ds:Signature", NS) is not None
    # Each signature is the other party's key: "not registered" for that role.
    assert code_of(lambda: verify_envelope(message, [enterprise.certificate])) == "1003"
    assert (
        code_of(lambda: verify_document(quota_apply(message), [adapter_card.certificate])) == "1003"
    )


# -- where the signature sits (1004) ----------------------------------------------------------
def test_an_envelope_without_a_signature_is_refused_as_coverage(portal: SoftwareSigner) -> None:
    assert code_of(lambda: verify_envelope(envelope(), [portal.certificate])) == "1004"


def test_a_signature_as_first_child_is_refused_as_coverage(portal: SoftwareSigner) -> None:
    root = signed(portal)
    root.insert(0, signature_of(root))

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


def test_two_envelope_signatures_are_refused_as_coverage(portal: SoftwareSigner) -> None:
    root = signed(portal)
    root.append(copy.deepcopy(signature_of(root)))

    with pytest.raises(SignatureCoverage, match="2 ds:Signature children"):
        verify_envelope(root, [portal.certificate])


def test_a_signature_anywhere_but_the_two_places_is_refused_as_coverage(
    portal: SoftwareSigner, enterprise: SoftwareSigner
) -> None:
    root = travelled(sign_envelope(with_document_signature(enterprise), portal))
    document = quota_apply(root)
    # The document signature moved before the document's fields: no longer its last child.
    document.insert(0, signature_of(document))

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


def test_a_document_without_its_signature_last_is_refused_as_coverage(
    enterprise: SoftwareSigner,
) -> None:
    document = travelled(sign_document(quota_apply(envelope()), enterprise))
    document.append(etree.SubElement(document, "{urn:cdgi:1}Remark"))

    assert code_of(lambda: verify_document(document, [enterprise.certificate])) == "1004"


# -- what the signature covers (1004) ---------------------------------------------------------
def test_a_signature_with_two_references_is_refused_as_coverage(portal: SoftwareSigner) -> None:
    root = signed(portal)
    signed_info = signature_of(root).find("ds:SignedInfo", NS)
    signed_info.append(copy.deepcopy(signed_info.find("ds:Reference", NS)))  # type: ignore[union-attr,arg-type]

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


def test_an_envelope_signature_covering_only_the_business_element_is_refused(
    portal: SoftwareSigner,
) -> None:
    # Cryptographically sound, but it leaves the Head unsigned.
    root = travelled(
        signxml_signer().sign(
            envelope(), key=portal.key_pem(), cert=[portal.certificate], reference_uri="#D6F1C2B9E"
        )
    )

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


def test_a_document_signature_referencing_another_element_is_refused(
    enterprise: SoftwareSigner,
) -> None:
    document = quota_apply(envelope())
    etree.SubElement(document, "{urn:cdgi:1}Contact", Id="C1").text = "王芳"
    signed_contact_only = travelled(
        signxml_signer().sign(
            document, key=enterprise.key_pem(), cert=[enterprise.certificate], reference_uri="#C1"
        )
    )

    assert code_of(lambda: verify_document(signed_contact_only, [enterprise.certificate])) == "1004"


def test_signed_info_canonicalised_inclusively_is_refused_as_coverage(
    portal: SoftwareSigner,
) -> None:
    root = signed(portal)
    method = signature_of(root).find("ds:SignedInfo/ds:CanonicalizationMethod", NS)
    method.set("Algorithm", "http://www.w3.org/2006/12/xml-c14n11")  # type: ignore[union-attr]

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


def test_inclusive_canonicalisation_instead_of_exclusive_is_refused(portal: SoftwareSigner) -> None:
    root = travelled(
        signxml_signer(c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1).sign(
            envelope(), key=portal.key_pem(), cert=[portal.certificate]
        )
    )

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


def test_an_extra_transform_is_refused_as_coverage(portal: SoftwareSigner) -> None:
    root = signed(portal)
    transforms = signature_of(root).find("ds:SignedInfo/ds:Reference/ds:Transforms", NS)
    etree.SubElement(
        transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#base64"
    )  # type: ignore[arg-type]

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


def test_an_unsigned_ds_object_in_the_signature_is_refused(portal: SoftwareSigner) -> None:
    root = signed(portal)
    obj = etree.SubElement(signature_of(root), f"{{{DS}}}Object")
    etree.SubElement(obj, "{urn:cdgi:1}QuotaNo").text = "Q-FORGED"

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"


# -- algorithms (1007) -----------------------------------------------------------------------
class LegacySigner(XMLSigner):
    """signxml makes no SHA-1 signatures; a legacy partner still does."""

    def check_deprecated_methods(self) -> None:
        pass


@pytest.mark.parametrize(
    ("signature_method", "digest"),
    [
        (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1),
        (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA256),
        (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA1),
    ],
)
def test_sha1_is_refused_unless_the_partner_is_allowed_it(
    portal: SoftwareSigner, signature_method: SignatureMethod, digest: DigestAlgorithm
) -> None:
    legacy = LegacySigner(
        method=methods.enveloped,
        signature_algorithm=signature_method,
        digest_algorithm=digest,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    root = travelled(legacy.sign(envelope(), key=portal.key_pem(), cert=[portal.certificate]))

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1007"
    verified = verify_envelope(root, [portal.certificate], allow_sha1=True)
    assert verified.signature_method == signature_method.value
    assert verified.digest_method == digest.value


def test_an_hmac_signature_method_is_refused_as_algorithm(portal: SoftwareSigner) -> None:
    root = signed(portal)
    method = signature_of(root).find("ds:SignedInfo/ds:SignatureMethod", NS)
    method.set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256")  # type: ignore[union-attr]

    assert code_of(lambda: verify_envelope(root, [portal.certificate], allow_sha1=True)) == "1007"


# -- keys, content, validity (1001, 1002, 1003) ---------------------------------------------
def test_a_key_not_registered_whose_certificate_is_embedded_is_refused_as_not_registered(
    portal: SoftwareSigner, stranger: SoftwareSigner
) -> None:
    assert code_of(lambda: verify_envelope(signed(stranger), [portal.certificate])) == "1003"


def test_an_unknown_key_without_an_embedded_certificate_is_refused_as_invalid(
    portal: SoftwareSigner, stranger: SoftwareSigner
) -> None:
    root = signed(stranger)
    key_info = signature_of(root).find("ds:KeyInfo", NS)
    key_info.remove(key_info.find("ds:X509Data", NS))  # type: ignore[union-attr,arg-type]

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1001"


def test_a_tampered_body_is_refused_as_invalid_signature(portal: SoftwareSigner) -> None:
    root = signed(portal)
    root.find(".//cdgi:QuotaNo", NS).text = "Q2026112400018"  # type: ignore[union-attr]

    with pytest.raises(SignatureInvalid, match="altered"):
        verify_envelope(root, [portal.certificate])


@pytest.mark.parametrize("value", ["not base64!", None])
def test_a_malformed_signature_value_is_refused_as_invalid_signature(
    portal: SoftwareSigner, value: str | None
) -> None:
    root = signed(portal)
    signature_of(root).find("ds:SignatureValue", NS).text = value  # type: ignore[union-attr]

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1001"


def test_an_expired_registered_certificate_is_refused_but_verifies_at_a_time_it_was_valid() -> None:
    start = datetime.now(UTC) - timedelta(days=730)
    expired = SoftwareSigner.generate(
        "PORTAL 2024", not_before=start, not_after=start + timedelta(days=365)
    )
    root = signed(expired)

    assert code_of(lambda: verify_envelope(root, [expired.certificate])) == "1002"
    verified = verify_envelope(root, [expired.certificate], at=start + timedelta(days=10))
    assert verified.certificate == expired.certificate


def test_a_not_yet_valid_registered_certificate_is_refused() -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    early = SoftwareSigner.generate(
        "PORTAL 2027", not_before=start, not_after=start + timedelta(days=365)
    )

    assert code_of(lambda: verify_envelope(signed(early), [early.certificate])) == "1002"


# -- signature wrapping and comments ---------------------------------------------------------
def test_a_forged_body_with_the_signed_original_hidden_in_the_head_is_refused(
    portal: SoftwareSigner,
) -> None:
    root = signed(portal)
    original = quota_apply(root)
    forged = copy.deepcopy(original)
    forged.find("cdgi:QuotaNo", NS).text = "Q-FORGED"  # type: ignore[union-attr]
    root.find("cdgi:Head", NS).append(original)  # type: ignore[union-attr]
    root.find("cdgi:Body", NS).append(forged)  # type: ignore[union-attr]

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1004"  # the Id twice


def test_a_duplicated_body_is_refused_as_invalid_signature(portal: SoftwareSigner) -> None:
    root = signed(portal)
    forged = copy.deepcopy(root.find("cdgi:Body", NS))
    forged.find(".//cdgi:QuotaNo", NS).text = "Q-FORGED"  # type: ignore[union-attr]
    quota_apply_of_forged = forged.find("cdgi:QuotaApply", NS)  # type: ignore[union-attr]
    quota_apply_of_forged.set("Id", "D-FORGED")  # type: ignore[union-attr]
    root.insert(1, forged)  # type: ignore[arg-type]

    assert code_of(lambda: verify_envelope(root, [portal.certificate])) == "1001"


def test_a_forged_document_wrapping_the_signed_original_is_refused(
    enterprise: SoftwareSigner,
) -> None:
    original = travelled(sign_document(quota_apply(envelope()), enterprise))
    signature = signature_of(original)
    forged = etree.Element("{urn:cdgi:1}QuotaApply", Id="D-FORGED", nsmap={"cdgi": "urn:cdgi:1"})
    etree.SubElement(forged, "{urn:cdgi:1}QuotaNo").text = "Q-FORGED"
    extension = etree.SubElement(forged, "{urn:cdgi:1}Extension")
    extension.append(original)
    forged.append(signature)  # the reference "#D6F1C2B9E" still finds the hidden original

    assert code_of(lambda: verify_document(forged, [enterprise.certificate])) == "1004"


def test_a_forged_document_with_the_same_id_is_refused(enterprise: SoftwareSigner) -> None:
    original = travelled(sign_document(quota_apply(envelope()), enterprise))
    forged = etree.Element("{urn:cdgi:1}QuotaApply", Id="D6F1C2B9E", nsmap={"cdgi": "urn:cdgi:1"})
    etree.SubElement(forged, "{urn:cdgi:1}QuotaNo").text = "Q-FORGED"
    forged.append(signature_of(original))
    etree.SubElement(forged, "{urn:cdgi:1}Extension").append(original)
    forged.append(signature_of(forged))  # back to last place

    assert code_of(lambda: verify_document(forged, [enterprise.certificate])) == "1004"


def test_a_comment_injected_into_signed_text_is_dropped_from_what_was_signed(
    portal: SoftwareSigner,
) -> None:
    root = signed(portal)
    quota_no = root.find(".//cdgi:QuotaNo", NS)
    quota_no.text = "Q2026"  # type: ignore[union-attr]
    comment = etree.Comment(" injected ")
    comment.tail = "112400017"
    quota_no.append(comment)  # type: ignore[union-attr]
    assert quota_no.text == "Q2026"  # what a careless reader of the received tree would take  # type: ignore[union-attr]

    verified = verify_envelope(travelled(root), [portal.certificate])

    assert verified.signed.findtext(".//cdgi:QuotaNo", namespaces=NS) == "Q2026112400017"
    assert verified.signed.xpath("//comment()") == []
