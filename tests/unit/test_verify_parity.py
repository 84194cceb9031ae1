"""Our verification beside signxml's, message for message.

``card.xmldsig`` checks a signature in the profile's one shape without signxml's general
verifier (which copied and re-parsed each message several times). These tests hold the two
to the same answer on signatures inside the profile: the same verdict (accepted, content
altered, made by another key, malformed) and, when accepted, byte for byte the same covered
XML, which the pipeline reads its values and its dedupe digest from.

Each case is a signed envelope or document, made by our signer or by signxml's, then changed
the way a sender's software or an attacker might: comments, whitespace, namespace prefixes,
CDATA, character references, text after the signature, InclusiveNamespaces, a tampered value,
a tampered digest, another key.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography import x509
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
    methods,
)
from signxml.exceptions import InvalidDigest
from signxml.exceptions import InvalidSignature as SignxmlInvalidSignature

from adapter.errors import SignatureInvalid, SignerNotRegistered
from card import (
    EXC_C14N,
    SoftwareSigner,
    Unsigned,
    prepare_envelope,
    sign_envelope,
    verify_document,
    verify_envelope,
)
from card.xmldsig import DS

CDGI = "urn:cdgi:1"
SENDER = SoftwareSigner.generate("parity sender", key_name="CUS.0800")
OTHER = SoftwareSigner.generate("someone else", key_name="CUS.0800")


def _envelope(text: str = "GENERAL", *, doc_id: str | None = None) -> etree._Element:
    root = etree.fromstring(
        f"<cdgi:Envelope xmlns:cdgi='{CDGI}' xmlns:unused='urn:unused'>"
        "<cdgi:Head><cdgi:MessageId>6F1C4B8E-0000-4000-8000-000000000001</cdgi:MessageId>"
        "<cdgi:SenderId>CUS.0800</cdgi:SenderId></cdgi:Head>"
        f"<cdgi:Body><cdgi:CreditInfo{'' if doc_id is None else f' Id={doc_id!r}'}>"
        f"<cdgi:Rating>{text}</cdgi:Rating><cdgi:Note>a &amp; b</cdgi:Note>"
        "</cdgi:CreditInfo></cdgi:Body></cdgi:Envelope>".encode())
    return root


def _signxml(root: etree._Element, signer: SoftwareSigner, *, uri: str | None = None,
             prefixes: list[str] | None = None,
             namespaces: dict[str | None, str] | None = None) -> etree._Element:
    xml_signer = XMLSigner(
        method=methods.enveloped, signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    if namespaces is not None:
        xml_signer.namespaces = namespaces
    return xml_signer.sign(root, key=signer.key_pem(), cert=[signer.certificate],
                           reference_uri=uri, inclusive_ns_prefixes=prefixes)


def _reparse(root: etree._Element, change: Callable[[bytes], bytes] = lambda b: b
             ) -> etree._Element:
    return etree.fromstring(change(etree.tostring(root)))


def _signxml_says(root: etree._Element, cert: x509.Certificate, uri: str) -> tuple[str, bytes]:
    """The verdict signxml's verifier gives (configured as our verifier once was)."""
    config = SignatureConfiguration(
        location="./", expect_references=1,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
        ignore_ambiguous_key_info=True, verification_time=datetime.now(UTC))
    try:
        result = XMLVerifier().verify(root, x509_cert=cert, expect_config=config)
    except InvalidDigest:
        return "altered", b""
    except SignxmlInvalidSignature:
        return "another key", b""
    except (ValueError, TypeError, etree.LxmlError):
        return "malformed", b""
    assert not isinstance(result, list)
    return "accepted", etree.tostring(result.signed_xml)


def _we_say(root: etree._Element, cert: x509.Certificate, uri: str) -> tuple[str, bytes]:
    try:
        if uri:
            verified = verify_document(root, [cert])
        else:
            verified = verify_envelope(root, [cert])
    except SignerNotRegistered:  # ours also names the key its KeyInfo carries
        return "another key", b""
    except SignatureInvalid as e:
        if "altered" in e.message:
            return "altered", b""
        if "matches none" in e.message:
            return "another key", b""
        if "malformed" in e.message:
            return "malformed", b""
        raise
    return "accepted", etree.tostring(verified.signed)


def _prefixes_in_transform(prefixes: list[str], *, digest_with_them: bool = True
                           ) -> etree._Element:
    """Our envelope signature with InclusiveNamespaces in its exclusive C14N transform (the
    one place the XML-DSig schema lets them be), its digest made with or without them."""
    unsigned = prepare_envelope(_envelope(), SENDER)
    signed, signature = unsigned.signed, unsigned.signed[-1]
    transform = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}Transforms/"
                               f"{{{DS}}}Transform[2]")
    assert transform is not None
    etree.SubElement(transform, f"{{{EXC_C14N}}}InclusiveNamespaces", PrefixList=" ".join(prefixes))
    body = copy.deepcopy(signed)
    body.remove(body[-1])
    c14n = etree.tostring(body, method="c14n", exclusive=True, with_comments=False,
                          inclusive_ns_prefixes=prefixes if digest_with_them else None)
    digest_value = signature.find(f".//{{{DS}}}DigestValue")
    assert digest_value is not None
    digest_value.text = base64.b64encode(hashlib.sha256(c14n).digest()).decode()
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    value = SENDER.sign_bytes(etree.tostring(signed_info, method="c14n", exclusive=True,
                                             with_comments=False))
    return _reparse(Unsigned(signed, b"").complete(value))


def _comment_in_text(b: bytes) -> bytes:
    return b.replace(b">GENERAL<", b">GEN<!-- a remark -->ERAL<")


def _tail_after_signature(b: bytes) -> bytes:
    return b.replace(b"</ds:Signature></cdgi:Envelope>", b"</ds:Signature>\n  </cdgi:Envelope>")


def _wrapped_signature_value(b: bytes) -> bytes:
    start = b.index(b"<ds:SignatureValue>") + len(b"<ds:SignatureValue>")
    end = b.index(b"</ds:SignatureValue>")
    value = b[start:end]
    return b[:start] + b"\n".join(value[i:i + 64] for i in range(0, len(value), 64)) + b[end:]


def _tampered_digest(b: bytes) -> bytes:
    start = b.index(b"<ds:DigestValue>") + len(b"<ds:DigestValue>")
    digest = bytearray(base64.b64decode(b[start:b.index(b"</ds:DigestValue>")]))
    digest[0] ^= 1
    return b[:start] + base64.b64encode(bytes(digest)) + b[b.index(b"</ds:DigestValue>"):]


def _comment_in_digest(b: bytes) -> bytes:
    start = b.index(b"<ds:DigestValue>") + len(b"<ds:DigestValue>") + 4
    return b[:start] + b"<!--x-->" + b[start:]


ENVELOPE_CASES: dict[str, Callable[[], tuple[etree._Element, x509.Certificate]]] = {
    "ours, as made": lambda: (sign_envelope(_envelope(), SENDER), SENDER.certificate),
    "ours, serialised and read again": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER)), SENDER.certificate),
    "signxml's": lambda: (_signxml(_envelope(), SENDER), SENDER.certificate),
    "a comment inside a signed value": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER), _comment_in_text), SENDER.certificate),
    "text after the signature": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER), _tail_after_signature), SENDER.certificate),
    "the signature value in lines": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER), _wrapped_signature_value),
        SENDER.certificate),
    "CDATA and character references": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER),
                 lambda b: b.replace(b">GENERAL<", b"><![CDATA[GEN]]>&#69;RAL<")),
        SENDER.certificate),
    "InclusiveNamespaces in the canonicalization method (refused by the schema)": lambda: (
        _signxml(_envelope(), SENDER, prefixes=["unused"]), SENDER.certificate),
    "InclusiveNamespaces in the transform": lambda: (
        _prefixes_in_transform(["unused"]), SENDER.certificate),
    "InclusiveNamespaces in the transform, digest made without": lambda: (
        _prefixes_in_transform(["unused"], digest_with_them=False), SENDER.certificate),
    "the ds namespace as the default one": lambda: (
        _reparse(_signxml(_envelope(), SENDER, namespaces={None: DS})), SENDER.certificate),
    "a comment inside the DigestValue": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER), _comment_in_digest), SENDER.certificate),
    "a signed value changed": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER),
                 lambda b: b.replace(b">GENERAL<", b">DISHONEST<")), SENDER.certificate),
    "the DigestValue changed": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER), _tampered_digest), SENDER.certificate),
    "signed by another key": lambda: (sign_envelope(_envelope(), OTHER), SENDER.certificate),
    "the SignatureValue not base64": lambda: (
        _reparse(sign_envelope(_envelope(), SENDER), lambda b: b.replace(
            b"<ds:SignatureValue>", b"<ds:SignatureValue>%%")), SENDER.certificate),
}


@pytest.mark.parametrize("case", list(ENVELOPE_CASES))
def test_an_envelope_gets_the_verdict_and_the_covered_xml_signxml_gives(case: str) -> None:
    root, cert = ENVELOPE_CASES[case]()
    theirs = _signxml_says(copy.deepcopy(root), cert, "")
    ours = _we_say(root, cert, "")
    assert ours == theirs


def _document(change: Callable[[bytes], bytes] = lambda b: b, *, prefixes: list[str] | None = None,
              signer: SoftwareSigner = SENDER) -> etree._Element:
    element = _envelope(doc_id="D1").find(f"{{{CDGI}}}Body/{{{CDGI}}}CreditInfo")
    assert element is not None
    return _reparse(_signxml(copy.deepcopy(element), signer, uri="#D1", prefixes=prefixes), change)


DOCUMENT_CASES: dict[str, Callable[[], etree._Element]] = {
    "as signed": _document,
    "InclusiveNamespaces": lambda: _document(prefixes=["cdgi"]),
    "a comment inside a signed value": lambda: _document(_comment_in_text),
    "a signed value changed": lambda: _document(lambda b: b.replace(b">GENERAL<", b">BAD<")),
    "signed by another key": lambda: _document(signer=OTHER),
}


@pytest.mark.parametrize("case", list(DOCUMENT_CASES))
def test_a_document_signature_gets_the_verdict_signxml_gives(case: str) -> None:
    root = DOCUMENT_CASES[case]()
    theirs = _signxml_says(copy.deepcopy(root), SENDER.certificate, "#D1")
    ours = _we_say(root, SENDER.certificate, "#D1")
    assert ours == theirs


def test_the_cases_cover_every_verdict() -> None:
    """The cases above are not all alike: each verdict is reached by at least one."""
    verdicts = {_signxml_says(*ENVELOPE_CASES[c](), "")[0] for c in ENVELOPE_CASES}
    assert verdicts == {"accepted", "altered", "another key", "malformed"}


def test_inclusive_namespaces_in_the_transform_reach_the_covered_xml() -> None:
    """The prefix list is honoured, not skipped: the listed namespace is in what is covered."""
    verified = verify_envelope(_prefixes_in_transform(["unused"]), [SENDER.certificate])
    assert verified.signed.nsmap.get("unused") == "urn:unused"
    plain = verify_envelope(sign_envelope(_envelope(), SENDER), [SENDER.certificate])
    assert "unused" not in plain.signed.nsmap
