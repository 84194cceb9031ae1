"""XML-DSig for CDGI messages: making envelope and document signatures, and the profile that
decides which signatures are accepted (CONTRACT §4).

The profile checks run first: where the signature sits, what its one reference covers, which
algorithms it uses (a general verifier is no policy: DESIGN "Known to work here", signxml
accepts signature-wrapping variants). What passes them has the profile's one shape, and is
verified in the steps signxml's verifier takes (the ds:Signature against signxml's XML-DSig
schema, ``SignedInfo`` canonicalised and its value checked, the reference read from what was
signed, the covered XML re-read from its canonical form), without its general machinery;
``tests/unit/test_verify_parity.py`` holds the two to the same answers. lxml canonicalises,
cryptography verifies. The key is always one of the caller's trusted certificates, never the
one the message carries. Every lxml and cryptography error leaves this module as one of
``adapter.errors``. Document signatures are still made with signxml's signer.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
    methods,
)

from adapter.errors import (
    AlgorithmNotAllowed,
    CertificateNotValid,
    SignatureCoverage,
    SignatureInvalid,
    SignerNotRegistered,
)
from card.keys import SignerKey
from card.signer import Signer

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
DS = "http://www.w3.org/2000/09/xmldsig#"
CDGI = "urn:cdgi:1"

A = TypeVar("A", bound=Enum)

_SIGNATURE = f"{{{DS}}}Signature"
_TRANSFORMS = [ENVELOPED, EXC_C14N]
_STRONG_SIGNATURE_METHODS = frozenset(
    {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
)
_STRONG_DIGESTS = frozenset(
    {DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}
)
_SHA1_SIGNATURE = frozenset({SignatureMethod.RSA_SHA1})
_SHA1_DIGEST = frozenset({DigestAlgorithm.SHA1})
# The local names signxml resolves "#..." against, in the order it tries them. (signxml's list
# ends with "xml:id", which never matches: it compares local-name(), and the local name of
# xml:id is "id", already in the list.)
_ID_ATTRIBUTES = ("Id", "ID", "id")
_ID_VALUES = etree.XPath(  # every attribute of one of those names, on the element and below
    "descendant-or-self::*/@*[" + " or ".join(f"local-name() = '{n}'" for n in _ID_ATTRIBUTES)
    + "]")


@dataclass(frozen=True)
class Verified:
    """A signature that passed the profile, and what it covers."""

    signed: etree._Element
    """Only what the signature covers (comments excised); read values only from this."""
    certificate: x509.Certificate
    """The trusted certificate whose key made the signature."""
    signature_method: str
    digest_method: str


def sign_envelope(root: etree._Element, signer: Signer) -> etree._Element:
    """A signed copy of the envelope: ``Reference URI=""``, the ``ds:Signature`` its last child.

    The profile's one shape (enveloped, exclusive c14n, RSA-SHA256, SHA-256) is written here
    directly rather than through signxml, whose general machinery cost as much as the card's
    signature itself; what it makes is checked by our verifier, by signxml's and by xmlsec1.
    """
    unsigned = prepare_envelope(root, signer)
    return unsigned.complete(signer.sign_bytes(unsigned.to_sign))


@dataclass(frozen=True)
class Unsigned:
    """An envelope signed but for its ``SignatureValue``: the bytes the card must sign, and
    the tree the value goes into. The card's part can run in another thread (it holds no
    XML); ``complete`` runs in the thread that owns the tree."""

    signed: etree._Element
    to_sign: bytes
    """The exclusive canonical form of ``SignedInfo``."""

    def complete(self, value: bytes) -> etree._Element:
        """The signed envelope, with the card's signature of ``to_sign`` in place."""
        signature = self.signed[-1]
        if signature.tag != _SIGNATURE or len(signature) != 2:
            raise ValueError("this envelope was completed already")
        element = etree.SubElement(signature, _ds("SignatureValue"))
        element.text = base64.b64encode(value).decode()
        signature.insert(1, element)  # between SignedInfo and KeyInfo
        return self.signed


def prepare_envelope(root: etree._Element, signer: Signer, *, take: bool = False) -> Unsigned:
    """A copy of the envelope with its ``ds:Signature`` but for the value (see ``Unsigned``);
    ``take=True`` signs ``root`` itself, for a caller that has no other use for it."""
    if root.get("Id") is not None:
        raise ValueError("an envelope carries no Id attribute")
    if root.find(_SIGNATURE) is not None:
        raise ValueError("the envelope is signed already")
    signed = root if take else copy.deepcopy(root)
    digest = hashlib.sha256(_c14n(signed)).digest()
    signature = etree.SubElement(signed, _SIGNATURE, nsmap={"ds": DS})
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=RSA_SHA256)
    reference = etree.SubElement(signed_info, _ds("Reference"), URI="")
    transforms = etree.SubElement(reference, _ds("Transforms"))
    for algorithm in _TRANSFORMS:
        etree.SubElement(transforms, _ds("Transform"), Algorithm=algorithm)
    etree.SubElement(reference, _ds("DigestMethod"), Algorithm=SHA256)
    etree.SubElement(reference, _ds("DigestValue")).text = base64.b64encode(digest).decode()
    _key_info(signature, signer)
    return Unsigned(signed, _c14n(signed_info))


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _ds(name: str) -> str:
    return f"{{{DS}}}{name}"


def _key_info(signature: etree._Element, signer: Signer) -> None:
    """``KeyName`` and the certificate, as signxml writes them, added to ``signature`` (the
    certificate's text kept per certificate object: a signer keeps its certificate, and an
    encoding a message cost more than the lookup)."""
    cert = signer.certificate
    key = (signer.key_name, id(cert))
    cached = _KEY_INFO.get(key)
    if cached is None or cached[0] is not cert:
        der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        text = "".join(der[i:i + 64] + "\n" for i in range(0, len(der), 64))
        cached = _KEY_INFO[key] = (cert, text)  # the certificate kept: its id stays its own
    element = etree.SubElement(signature, _ds("KeyInfo"))
    etree.SubElement(element, _ds("KeyName")).text = signer.key_name
    data = etree.SubElement(element, _ds("X509Data"))
    etree.SubElement(data, _ds("X509Certificate")).text = cached[1]


_KEY_INFO: dict[tuple[str, int], tuple[Any, str]] = {}


def sign_document(element: etree._Element, signer: Signer) -> etree._Element:
    """A signed copy of the business element as its own root: ``Reference URI="#<Id>"``."""
    doc_id = element.get("Id")
    if not doc_id:
        raise ValueError(f"{element.tag} has no Id attribute for its signature to reference")
    return _signer().sign(
        element,
        key=SignerKey(signer),
        cert=[signer.certificate],
        key_name=signer.key_name,
        reference_uri=f"#{doc_id}",
    )


def verify_envelope(
    root: etree._Element,
    trusted: Sequence[x509.Certificate],
    *,
    allow_sha1: bool = False,
    at: datetime | None = None,
) -> Verified:
    """Verify the envelope signature against ``trusted`` under the CONTRACT §4 profile."""
    signature = _own_signature(root)
    allowed = {signature}
    document_signature = _document_signature_slot(root)
    if document_signature is not None:
        allowed.add(document_signature)
    return _verify(root, signature, allowed, "", trusted, allow_sha1, at)


def verify_document(
    element: etree._Element,
    trusted: Sequence[x509.Certificate],
    *,
    allow_sha1: bool = False,
    at: datetime | None = None,
) -> Verified:
    """Verify the document signature of a business element (it may sit in an envelope)."""
    element = copy.deepcopy(element)  # its own root, as it was when the enterprise signed it
    element.tail = None  # deepcopy keeps the text after the element, which is the envelope's
    doc_id = element.get("Id")
    if not doc_id:
        raise SignatureCoverage(
            f"{etree.QName(element).localname} has no Id for a document signature"
        )
    signature = _own_signature(element)
    return _verify(element, signature, {signature}, f"#{doc_id}", trusted, allow_sha1, at)


# -- signing -------------------------------------------------------------------------------
def _signer() -> XMLSigner:
    return XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )


# -- the profile ---------------------------------------------------------------------------
def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _own_signature(parent: etree._Element) -> etree._Element:
    children = _elements(parent)
    signatures = [child for child in children if child.tag == _SIGNATURE]
    where = etree.QName(parent).localname
    if not signatures:
        raise SignatureCoverage(f"{where} has no ds:Signature")
    if len(signatures) > 1:
        raise SignatureCoverage(
            f"{where} has {len(signatures)} ds:Signature children, expected one"
        )
    if children[-1] is not signatures[0]:
        raise SignatureCoverage(f"the ds:Signature of {where} is not its last child")
    return signatures[0]


def _document_signature_slot(root: etree._Element) -> etree._Element | None:
    """The one place a second signature may sit: last child of the one business element."""
    bodies = root.findall(f"{{{CDGI}}}Body")
    if len(bodies) != 1:
        return None
    documents = _elements(bodies[0])
    if len(documents) != 1:
        return None
    children = _elements(documents[0])
    if children and children[-1].tag == _SIGNATURE:
        return children[-1]
    return None


def _check_coverage(
    root: etree._Element,
    signature: etree._Element,
    allowed: set[etree._Element],
    reference_uri: str,
) -> None:
    for found in root.iter(_SIGNATURE):
        if found not in allowed:
            where = root.getroottree().getpath(found)
            raise SignatureCoverage(f"a ds:Signature sits where none may: {where}")
    ids = Counter(str(value) for value in _ID_VALUES(root))  # type: ignore[union-attr]
    duplicates = sorted(value for value, count in ids.items() if count > 1)
    if duplicates:
        raise SignatureCoverage(f"Id values occur more than once: {', '.join(duplicates)}")
    for forbidden in ("Object", "Manifest"):
        if signature.find(f".//{{{DS}}}{forbidden}") is not None:
            raise SignatureCoverage(f"the ds:Signature contains a ds:{forbidden}")
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    if signed_info is None:
        raise SignatureCoverage("the ds:Signature has no ds:SignedInfo")
    c14n = signed_info.find(f"{{{DS}}}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise SignatureCoverage("SignedInfo is not canonicalised with exclusive C14N")
    references = signature.findall(f".//{{{DS}}}Reference")
    if len(references) != 1 or references[0].getparent() is not signed_info:
        raise SignatureCoverage(f"the ds:Signature has {len(references)} references, expected one")
    uri = references[0].get("URI")
    if uri != reference_uri:
        raise SignatureCoverage(f"the reference URI is {uri!r}, expected {reference_uri!r}")
    transforms = [
        transform.get("Algorithm")
        for transform in references[0].iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")
    ]
    if transforms != _TRANSFORMS:
        raise SignatureCoverage(
            f"the reference transforms are {transforms}, expected enveloped-signature then "
            "exclusive C14N"
        )


def _algorithms(
    signature: etree._Element, allow_sha1: bool
) -> tuple[SignatureMethod, DigestAlgorithm]:
    weak_methods, weak_digests = (
        (_SHA1_SIGNATURE, _SHA1_DIGEST) if allow_sha1 else (frozenset(), frozenset())
    )
    method = _pick(
        _STRONG_SIGNATURE_METHODS | weak_methods,
        signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod"),
        "signature method",
    )
    digest = _pick(
        _STRONG_DIGESTS | weak_digests,
        signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}DigestMethod"),
        "digest method",
    )
    return method, digest


def _pick(allowed: frozenset[A], node: etree._Element | None, what: str) -> A:
    uri = None if node is None else node.get("Algorithm")
    for algorithm in allowed:
        if algorithm.value == uri:
            return algorithm
    raise AlgorithmNotAllowed(
        f"{what} {uri} is not allowed (RSA with SHA-256/384/512 only; SHA-1 only for a "
        "partner registered with it)"
    )


# -- the cryptography ----------------------------------------------------------------------
_EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
_PARSER = etree.XMLParser(resolve_entities=False)  # what signxml parses with
_SIGNATURE_HASHES: dict[SignatureMethod, type[hashes.HashAlgorithm]] = {
    SignatureMethod.RSA_SHA1: hashes.SHA1,
    SignatureMethod.RSA_SHA256: hashes.SHA256,
    SignatureMethod.RSA_SHA384: hashes.SHA384,
    SignatureMethod.RSA_SHA512: hashes.SHA512,
}
_DIGESTS = {
    DigestAlgorithm.SHA1: hashlib.sha1,
    DigestAlgorithm.SHA256: hashlib.sha256,
    DigestAlgorithm.SHA384: hashlib.sha384,
    DigestAlgorithm.SHA512: hashlib.sha512,
}


def _verify(
    root: etree._Element,
    signature: etree._Element,
    allowed: set[etree._Element],
    reference_uri: str,
    trusted: Sequence[x509.Certificate],
    allow_sha1: bool,
    at: datetime | None,
) -> Verified:
    _check_coverage(root, signature, allowed, reference_uri)
    method, digest = _algorithms(signature, allow_sha1)
    when = _utc(at)
    checked = _SignedInfo.read(signature, method)
    for certificate in trusted:
        if not checked.signed_by(certificate):
            continue  # made by another key; try the next registered certificate
        signed = checked.covered(root, digest)
        if not certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc:
            raise CertificateNotValid(
                f"the certificate {certificate.subject.rfc4514_string()} is not valid at "
                f"{when.isoformat()} (valid {certificate.not_valid_before_utc.isoformat()} to "
                f"{certificate.not_valid_after_utc.isoformat()})"
            )
        return Verified(signed, certificate, method.value, digest.value)
    embedded = _embedded_certificate(signature)
    if embedded is not None and checked.signed_by(embedded):
        raise SignerNotRegistered(
            f"signed by {embedded.subject.rfc4514_string()} (serial {embedded.serial_number}), "
            "a certificate not registered for this sender"
        )
    raise SignatureInvalid(
        f"the signature matches none of the {len(trusted)} registered certificate(s)"
    )


@dataclass(frozen=True)
class _SignedInfo:
    """A ds:Signature that passed the profile, read the way signxml reads it (its schema,
    ``SignedInfo`` canonicalised on a copy of the signature, the reference taken from what
    the signature covers), with only the profile's one shape left to handle.

    signxml's general verifier cost about 1 ms a message here, most of it copying and
    re-parsing the whole message; this does the same steps once. Its results are checked
    against signxml's, message for message, by ``tests/unit/test_verify_parity.py`` and by
    the interoperability vectors of ``tests/security``.
    """

    c14n: bytes
    value: bytes
    method: SignatureMethod
    reference: etree._Element

    @classmethod
    def read(cls, signature: etree._Element, method: SignatureMethod) -> _SignedInfo:
        try:
            copied = etree.fromstring(etree.tostring(signature), _PARSER)
            XMLVerifier().validate_schema(copied)
            signed_info = copied.find(f"{{{DS}}}SignedInfo")
            value = copied.find(f"{{{DS}}}SignatureValue")
            if signed_info is None or value is None or value.text is None:
                raise ValueError("SignedInfo or SignatureValue is missing")
            raw = base64.b64decode(value.text)
            c14n = _exclusive(signed_info,
                              signed_info.find(f"{{{DS}}}CanonicalizationMethod"))
            # Only what the signature value covers is read from here on.
            references = etree.fromstring(c14n, _PARSER).findall(f"{{{DS}}}Reference")
        except (ValueError, TypeError, etree.LxmlError) as e:
            raise SignatureInvalid(f"malformed ds:Signature: {e}") from e
        if len(references) != 1:
            raise SignatureCoverage(f"the signed SignedInfo has {len(references)} references")
        return cls(c14n, raw, method, references[0])

    def signed_by(self, certificate: x509.Certificate) -> bool:
        """Whether the key of ``certificate`` made the signature value."""
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        try:
            key.verify(self.value, self.c14n, PKCS1v15(), _SIGNATURE_HASHES[self.method]())
        except InvalidSignature:
            return False
        return True

    def covered(self, root: etree._Element, digest: DigestAlgorithm) -> etree._Element:
        """What the reference covers, re-read from its canonical form; SignatureInvalid if
        its digest does not match (the content was altered)."""
        reference = self.reference
        try:
            copied = etree.fromstring(etree.tostring(root), _PARSER)
            payload = _resolve(copied, reference.get("URI"))
            enveloped = copied if copied.tag == _SIGNATURE else copied.find(_SIGNATURE)
            if enveloped is None:
                raise ValueError("the signature is not where it was")
            _remove_keeping_tail(enveloped)
            transform = reference.find(
                f"{{{DS}}}Transforms/{{{DS}}}Transform[@Algorithm='{EXC_C14N}']")
            if transform is None:
                raise ValueError("the reference has no exclusive C14N transform")
            if payload.getparent() is not None:
                # A copy of its own, as signxml canonicalises it (the namespaces of its
                # ancestors that it does not declare itself are then out of scope).
                payload = etree.fromstring(etree.tostring(payload), _PARSER)
            c14n = _exclusive(payload, transform)
            expected = base64.b64decode(reference.findtext(f"{{{DS}}}DigestValue") or "")
        except (ValueError, TypeError, etree.LxmlError) as e:
            raise SignatureInvalid(f"malformed ds:Signature: {e}") from e
        if expected != _DIGESTS[digest](c14n).digest():
            raise SignatureInvalid("the signed content was altered: a digest does not match")
        try:
            return etree.fromstring(c14n, _PARSER)
        except etree.XMLSyntaxError as e:
            raise SignatureCoverage("what the signature covers is not XML") from e


def _exclusive(element: etree._Element, method: etree._Element | None) -> bytes:
    """Exclusive C14N without comments, with the method's InclusiveNamespaces prefixes."""
    prefixes = None
    if method is not None:
        listed = method.find(f"{{{_EC}}}InclusiveNamespaces[@PrefixList]")
        if listed is not None:
            prefixes = (listed.get("PrefixList") or "").split(" ")
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False,
                          inclusive_ns_prefixes=prefixes)


def _resolve(root: etree._Element, uri: str | None) -> etree._Element:
    """The element a same-document reference points at (``""`` or ``#<Id>``)."""
    if uri == "":
        return root
    if uri is None or not uri.startswith("#") or uri.startswith("#xpointer("):
        raise ValueError(f"reference URI {uri!r} is not a same-document reference")
    for name in _ID_ATTRIBUTES:  # in signxml's order: the first name that matches decides
        found = root.xpath(f"//*[@*[local-name() = '{name}']=$uri]", uri=uri[1:])
        if len(found) > 1:  # type: ignore[arg-type]
            raise ValueError(f"reference URI {uri} resolves to {len(found)} elements")  # type: ignore[arg-type]
        if found:
            return found[0]  # type: ignore[index,return-value]
    raise ValueError(f"reference URI {uri} resolves to nothing")


def _remove_keeping_tail(element: etree._Element) -> None:
    """Take the enveloped signature out; the text after it stays where it was."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail is not None:
        previous = element.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + element.tail
        else:
            previous.tail = (previous.tail or "") + element.tail
    parent.remove(element)


def _embedded_certificate(signature: etree._Element) -> x509.Certificate | None:
    text = signature.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    if not text:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text))
    except ValueError:
        return None


def _utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
