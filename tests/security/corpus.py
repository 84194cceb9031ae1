"""The bad-input corpus: hostile and malformed messages, each with the receipt code the
contract gives it (CONTRACT §4, §5 "The receipt").

Every case is built from a message the adapter would accept (signed by a registered key,
schema-valid, for a state set up beforehand), then broken in exactly one way, so that the
code it earns is the one for that flaw and not an accident of the message around it.

Where a flaw would earn two codes, the pipeline's order decides (DESIGN "One message's way
through"): size, then the hardened parse, then the sender, then the schema, then the
envelope signature, then duplicates, then the document signature and the card. So a wrapping
variant that also breaks the XSD (a second Body, a Body in the Head) is answered 0002, not
1004: the schema is checked first on purpose, it is one of the defences against wrapping.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner, methods

from adapter import documents as doc
from adapter.domain.identifiers import make_uscc
from adapter.envelope import build_envelope, contract_time, new_message_id, serialize
from adapter.sim import SimEnterprise
from card import SoftwareSigner, sign_envelope
from card.xmldsig import DS

CDGI = "urn:cdgi:1"
NS = {"cdgi": CDGI, "ds": DS}
MAX_BYTES = 4 * 1024 * 1024  # CONTRACT §5: 4 MiB by default
MAX_DEPTH = 64  # and depth 64

CUSTOMS, PORTAL = "CUS.0800", "PORTAL"
EXPIRED = "CUS.4200"  # registered, but with a certificate that has expired
DISABLED = "INS.OFF"  # registered, then disabled
UNREGISTERED = "INS.NOBODY"  # not registered at all: nobody to answer


@dataclass(frozen=True)
class Case:
    """One bad message, how it travels, and what the contract says it earns."""

    name: str
    body: bytes
    code: str
    routing_key: str
    reply_to: str | None
    """The partner the receipt must reach; None where there is no one to answer."""
    message_id: str | None
    """The envelope's MessageId where the receipt can name it (else ``Unknown``)."""
    message_type: str | None = None
    """The receipt's ``OriMessageType`` (None: ``Unknown``)."""


@dataclass
class World:
    """The partners' keys and the enterprises whose cards sign documents."""

    today: date
    keys: dict[str, SoftwareSigner]
    a: SimEnterprise
    b: SimEnterprise
    setup_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def make(cls) -> World:
        today = datetime.now(UTC).date()
        start = datetime.now(UTC) - timedelta(days=730)
        keys = {
            party: SoftwareSigner.generate(f"{party} (security suite)", key_name=party)
            for party in (PORTAL, CUSTOMS, "INS.PICC", DISABLED)
        }
        keys[EXPIRED] = SoftwareSigner.generate(
            f"{EXPIRED} 2024", key_name=EXPIRED, not_before=start,
            not_after=start + timedelta(days=365),
        )
        a = (SimEnterprise(make_uscc("91210100MA0TECA01"), "辽宁安全测试进出口有限公司",
                           "2101960011")
             .add_card("LA0001", "LEGAL", "张伟")
             .add_card("OA0001", "OPERATOR", "王芳")  # granted QUOTA
             .add_card("OA0002", "OPERATOR", "李强")  # never granted anything
             .add_card("OA0003", "OPERATOR", "赵敏"))  # granted QUOTA, then revoked
        b = (SimEnterprise(make_uscc("91210200MA0TECB01"), "大连安全测试贸易有限公司",
                           "2102960012")
             .add_card("LB0001", "LEGAL", "孙丽")
             .add_card("OB0001", "OPERATOR", "周杰"))  # granted QUOTA
        return cls(today, keys, a, b)

    def registered(self) -> dict[str, SoftwareSigner]:
        """The partners to register, with the key each signs with."""
        return dict(self.keys)

    # -- the state the cases run against -----------------------------------------------
    def setup(self) -> list[tuple[str, str, etree._Element]]:
        """(party, type, business) messages that must all be accepted, in order."""
        t, a, b = self.today, self.a, self.b
        valid = {"valid_from": t - timedelta(days=30), "valid_to": t + timedelta(days=730)}
        out: list[tuple[str, str, etree._Element]] = []
        for ent in (a, b):
            for card in ent.cards:
                out.append((PORTAL, "CDGI101", ent.binding(card, **valid)))
        for ent, legal, operator in ((a, "LA0001", "OA0001"), (a, "LA0001", "OA0003"),
                                     (b, "LB0001", "OB0001")):
            out.append((PORTAL, "CDGI103", ent.sign(doc.operator_grant(
                uscc=ent.uscc, operator_card_no=operator, permissions=["QUOTA"]), legal)))
        out.append((PORTAL, "CDGI101", a.binding("OA0003", **valid, revoked=True)))
        out.append((CUSTOMS, "CDGI401", self.credit("GENERAL")))
        return out

    def credit(self, rating: str = "ADVANCED", *, rated: date | None = None,
               description: str = "海关信用记录") -> etree._Element:
        """Enterprise A's credit rating, as customs sends it."""
        day = rated or self.today
        return doc.credit_info(
            uscc=self.a.uscc, customs_code=self.a.customs_code, rating=rating, rated_date=day,
            records=[doc.CreditRecord(date=day, kind="AEO", description=description)],
        )

    def quota_apply(self, uscc: str | None = None) -> etree._Element:
        """An unsigned quota application of enterprise A (an operator with QUOTA signs it)."""
        return doc.quota_apply(
            quota_no=f"QSEC{new_message_id()[:8]}", uscc=uscc or self.a.uscc,
            insurer_code="PICC", applied_amount=Decimal("1000000.00"), term_start=self.today,
            term_end=self.today + timedelta(days=300),
            contact=doc.Contact(name="王芳", phone="024-88886666"),
        )

    # -- envelopes ----------------------------------------------------------------------
    def envelope(self, sender: str, message_type: str, business: etree._Element, *,
                 signer: SoftwareSigner | None = None, message_id: str | None = None,
                 sign: bool = True) -> etree._Element:
        """A signed (or not) envelope, as a tree to break before it is serialised."""
        root = build_envelope(
            message_type=message_type, sender_id=sender, receiver_id="DC", business=business,
            send_time=contract_time(datetime.now(UTC)), message_id=message_id,
        )
        if not sign:
            return root
        return _travelled(sign_envelope(root, signer or self.keys[sender]))


def _travelled(root: etree._Element) -> etree._Element:
    """The tree as a receiver parses it off the wire (no signxml leftovers)."""
    return etree.fromstring(serialize(root))


def message_id_of(root: etree._Element) -> str:
    """The MessageId in an envelope's head."""
    return root.findtext("cdgi:Head/cdgi:MessageId", namespaces=NS) or ""


def _signature(parent: etree._Element) -> etree._Element:
    found = parent.find("ds:Signature", NS)
    assert found is not None
    return found


def _business(root: etree._Element) -> etree._Element:
    body = root.find("cdgi:Body", NS)
    assert body is not None
    return body[0]


class _LegacySigner(XMLSigner):
    """signxml refuses to make SHA-1 signatures; a legacy partner's software still does."""

    def check_deprecated_methods(self) -> None:
        pass


def _signxml(root: etree._Element, signer: SoftwareSigner, **options: object) -> etree._Element:
    settings: dict[str, object] = {
        "method": methods.enveloped,
        "signature_algorithm": SignatureMethod.RSA_SHA256,
        "digest_algorithm": DigestAlgorithm.SHA256,
        "c14n_algorithm": CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    }
    settings.update(options)
    reference_uri = settings.pop("reference_uri", None)
    signed = _LegacySigner(**settings).sign(  # type: ignore[arg-type]
        root, key=signer.key_pem(), cert=[signer.certificate], reference_uri=reference_uri
    )
    return _travelled(signed)


# -- the corpus --------------------------------------------------------------------------
Builder = Callable[[World], Case]
BUILDERS: dict[str, Builder] = {}
KNOWN_WRONG: dict[str, str] = {}
"""Cases the product is known to answer otherwise, and why: strict xfails, so that the fix
turns them into failures that ask for the mark to go."""


def case(fn: Builder | None = None, *, known_wrong: str | None = None) -> Any:
    """Register a case builder under its function's name (the test id)."""

    def register(fn: Builder) -> Builder:
        BUILDERS[fn.__name__] = fn
        if known_wrong:
            KNOWN_WRONG[fn.__name__] = known_wrong
        return fn

    return register(fn) if fn is not None else register


def _customs(name: str, body: bytes, code: str, *, message_id: str | None = None,
             message_type: str | None = None) -> Case:
    return Case(name, body, code, CUSTOMS, CUSTOMS, message_id, message_type)


def _with_dtd(envelope: bytes, subset: str) -> bytes:
    """The envelope's bytes with a DOCTYPE (internal subset ``subset``) after the declaration."""
    declaration, rest = envelope.split(b"?>", 1)
    return declaration + b"?>" + f"<!DOCTYPE cdgi:Envelope [{subset}]>".encode() + rest


def _signed_credit(w: World) -> tuple[bytes, str]:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"))
    return serialize(root), message_id_of(root)


# 0xxx: format ---------------------------------------------------------------------------
@case
def not_well_formed(w: World) -> Case:
    return _customs("not well-formed",
                    b"<cdgi:Envelope xmlns:cdgi='urn:cdgi:1'><cdgi:Head></cdgi:Envelope>", "0001")


@case
def dtd(w: World) -> Case:
    body, _ = _signed_credit(w)
    return _customs("DTD (harmless internal subset)",
                    _with_dtd(body, "<!ELEMENT cdgi:Envelope ANY>"), "0001")


@case
def external_entity(w: World) -> Case:
    body, _ = _signed_credit(w)
    body = _with_dtd(body, '<!ENTITY xxe SYSTEM "file:///etc/passwd">')
    body = body.replace("海关信用记录".encode(), b"&xxe;")
    return _customs("external entity (file:///etc/passwd)", body, "0001")


@case
def external_dtd(w: World) -> Case:
    body, _ = _signed_credit(w)
    declaration, rest = body.split(b"?>", 1)
    body = (declaration + b"?>" + b'<!DOCTYPE cdgi:Envelope SYSTEM "http://127.0.0.1:9/cdgi.dtd">'
            + rest)
    return _customs("external DTD over the network", body, "0001")


@case
def billion_laughs(w: World) -> Case:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    body, _ = _signed_credit(w)
    body = _with_dtd(body, "".join(entities)).replace("海关信用记录".encode(), b"&lol9;")
    return _customs("billion laughs", body, "0001")


@case
def quadratic_blowup(w: World) -> Case:
    body, _ = _signed_credit(w)
    body = _with_dtd(body, f'<!ENTITY big "{"x" * 50_000}">')
    body = body.replace("海关信用记录".encode(), b"&big;" * 2_000)
    return _customs("quadratic blow-up", body, "0001")


@case
def oversize(w: World) -> Case:
    body, _ = _signed_credit(w)
    # A signed, schema-valid message, only too long (trailing whitespace is well-formed).
    return _customs("oversize (4 MiB + 1)", body + b" " * (MAX_BYTES + 1 - len(body)), "0004")


@case
def deep_nesting(w: World) -> Case:
    body, _ = _signed_credit(w)
    depth = MAX_DEPTH + 10  # deeper than allowed, shallower than libxml2's own limit (256)
    nested = b"<cdgi:X>" * depth + b"</cdgi:X>" * depth
    return _customs("deep nesting", body.replace("海关信用记录".encode(), nested), "0004")


@case(known_wrong="the sender is looked up before the schema, so an envelope in a foreign "
                  "namespace gets 1003 'sender (none) is not registered', not 0002")
def wrong_namespace_envelope(w: World) -> Case:
    body, _ = _signed_credit(w)
    return _customs("wrong namespace (envelope)", body.replace(b"urn:cdgi:1", b"urn:cdgi:2"),
                    "0002")


@case
def wrong_namespace_business(w: World) -> Case:
    business = w.credit()
    for el in business.iter():
        el.tag = "{urn:cdgi:credit}" + etree.QName(el).localname
    etree.cleanup_namespaces(business)
    root = w.envelope(CUSTOMS, "CDGI401", business)
    return _customs("wrong namespace (business element)", serialize(root), "0002",
                    message_id=message_id_of(root), message_type="CDGI401")


@case
def schema_invalid(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("EXCELLENT"))
    return _customs("schema-invalid value", serialize(root), "0002", message_id=message_id_of(root),
                    message_type="CDGI401")


@case
def unknown_type(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI999", w.credit())
    return _customs("unknown message type", serialize(root), "0003", message_id=message_id_of(root),
                    message_type="CDGI999")


@case
def type_not_from_this_sender(w: World) -> Case:
    decision = doc.quota_decision(quota_no="Q-NOT-FROM-CUSTOMS", result="UNDERWRITING")
    root = w.envelope(CUSTOMS, "CDGI301", decision)
    return _customs("a type this sender may not send", serialize(root), "0003",
                    message_id=message_id_of(root), message_type="CDGI301")


# 1xxx: who signed, and how -------------------------------------------------------------
@case
def unsigned(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"), sign=False)
    return _customs("unsigned", serialize(root), "1004", message_id=message_id_of(root),
                    message_type="CDGI401")


@case
def another_partners_key(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"), signer=w.keys[PORTAL])
    return _customs("signed by another partner's key", serialize(root), "1003",
                    message_id=message_id_of(root), message_type="CDGI401")


@case
def unregistered_key(w: World) -> Case:
    stranger = SoftwareSigner.generate("CUS.0800 (impostor)", key_name=CUSTOMS)
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"), signer=stranger)
    return _customs("signed by an unregistered key", serialize(root), "1003",
                    message_id=message_id_of(root), message_type="CDGI401")


@case
def unregistered_sender(w: World) -> Case:
    stranger = SoftwareSigner.generate(UNREGISTERED, key_name=UNREGISTERED)
    decision = doc.quota_decision(quota_no="Q-FROM-NOBODY", result="UNDERWRITING")
    root = w.envelope(UNREGISTERED, "CDGI301", decision, signer=stranger)
    return Case("unregistered sender (nobody to answer)", serialize(root), "1003",
                UNREGISTERED, None, message_id_of(root), "CDGI301")


@case
def disabled_sender(w: World) -> Case:
    decision = doc.quota_decision(quota_no="Q-FROM-DISABLED", result="UNDERWRITING")
    root = w.envelope(DISABLED, "CDGI301", decision)
    return Case("disabled sender", serialize(root), "1003", DISABLED, DISABLED, message_id_of(root),
                "CDGI301")


@case
def routing_key_of_another(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"))
    return Case("SenderId not the publisher's (customs' message under the portal's key)",
                serialize(root), "1003", PORTAL, PORTAL, message_id_of(root), "CDGI401")


@case
def expired_certificate(w: World) -> Case:
    root = w.envelope(EXPIRED, "CDGI401", w.credit("DISHONEST"))
    return Case("registered certificate expired", serialize(root), "1002", EXPIRED, EXPIRED,
                message_id_of(root), "CDGI401")


@case
def rsa_sha1(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"), sign=False)
    root = _signxml(root, w.keys[CUSTOMS], signature_algorithm=SignatureMethod.RSA_SHA1,
                    digest_algorithm=DigestAlgorithm.SHA1)
    return _customs("RSA-SHA1", serialize(root), "1007", message_id=message_id_of(root),
                    message_type="CDGI401")


@case
def sha1_digest(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"), sign=False)
    root = _signxml(root, w.keys[CUSTOMS], digest_algorithm=DigestAlgorithm.SHA1)
    return _customs("RSA-SHA256 over a SHA-1 digest", serialize(root), "1007",
                    message_id=message_id_of(root), message_type="CDGI401")


@case
def tampered(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("GENERAL"))
    body = serialize(root).replace(b">GENERAL<", b">DISHONEST<")
    return _customs("changed after signing", body, "1001", message_id=message_id_of(root),
                    message_type="CDGI401")


@case
def content_added_after_signing(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("GENERAL"))
    extra = copy.deepcopy(_business(root).find("cdgi:Record", NS))
    _business(root).append(extra)  # type: ignore[arg-type]
    return _customs("a record added after signing", serialize(root), "1001",
                    message_id=message_id_of(root), message_type="CDGI401")


# Signature wrapping ---------------------------------------------------------------------
@case
def signature_first(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"))
    root.insert(0, _signature(root))
    return _customs("signature moved to the front", serialize(root), "1004",
                    message_id=message_id_of(root), message_type="CDGI401")


@case
def signature_in_head(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"))
    root.find("cdgi:Head", NS).append(_signature(root))  # type: ignore[union-attr]
    return _customs("signature moved into the Head", serialize(root), "1004",
                    message_id=message_id_of(root), message_type="CDGI401")


@case
def signature_twice(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"))
    root.append(copy.deepcopy(_signature(root)))
    return _customs("signature duplicated (schema first)", serialize(root), "0002",
                    message_id=message_id_of(root), message_type="CDGI401")


@case
def body_moved(w: World) -> Case:
    # The signed Body hidden in the Head, a forged one in its place: the classic wrapping.
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("GENERAL"))
    signed_body = root.find("cdgi:Body", NS)
    forged = copy.deepcopy(signed_body)
    forged.find(".//cdgi:Rating", NS).text = "DISHONEST"  # type: ignore[union-attr]
    root.find("cdgi:Head", NS).append(signed_body)  # type: ignore[union-attr,arg-type]
    root.insert(1, forged)  # type: ignore[arg-type]
    return _customs("signed Body moved into the Head, forged Body in place (schema first)",
                    serialize(root), "0002", message_id=message_id_of(root), message_type="CDGI401")


@case
def body_duplicated(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("GENERAL"))
    forged = copy.deepcopy(root.find("cdgi:Body", NS))
    forged.find(".//cdgi:Rating", NS).text = "DISHONEST"  # type: ignore[union-attr]
    forged[0].set("Id", "DFORGED")  # type: ignore[index]
    root.insert(1, forged)  # type: ignore[arg-type]
    return _customs("Body duplicated, the forged one first (schema first)", serialize(root),
                    "0002", message_id=message_id_of(root), message_type="CDGI401")


@case
def duplicate_id(w: World) -> Case:
    # The signature element may carry an Id, and the XSD skips its contents: the profile
    # alone must notice that "#<Id>" would now resolve to two elements.
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"))
    _signature(root).set("Id", _business(root).get("Id") or "")
    return _customs("duplicate Id", serialize(root), "1004", message_id=message_id_of(root),
                    message_type="CDGI401")


@case
def reference_to_business_only(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"), sign=False)
    root = _signxml(root, w.keys[CUSTOMS], reference_uri=f"#{_business(root).get('Id')}")
    return _customs("envelope signature referencing the business element only",
                    serialize(root), "1004", message_id=message_id_of(root), message_type="CDGI401")


@case
def unsigned_object_beside_signed(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("GENERAL"))
    forged = copy.deepcopy(_business(root))
    forged.set("Id", "DFORGED")
    forged.find("cdgi:Rating", NS).text = "DISHONEST"  # type: ignore[union-attr]
    etree.SubElement(_signature(root), f"{{{DS}}}Object").append(forged)
    return _customs("unsigned ds:Object with a forged document beside the signed",
                    serialize(root), "1004", message_id=message_id_of(root), message_type="CDGI401")


@case
def second_reference(w: World) -> Case:
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"))
    signed_info = _signature(root).find("ds:SignedInfo", NS)
    signed_info.append(copy.deepcopy(signed_info.find("ds:Reference", NS)))  # type: ignore[union-attr,arg-type]
    return _customs("two references", serialize(root), "1004", message_id=message_id_of(root),
                    message_type="CDGI401")


@case
def replayed_message_id(w: World) -> Case:
    # The MessageId of the credit accepted during setup, now with other content.
    mid = w.setup_ids["credit"]
    root = w.envelope(CUSTOMS, "CDGI401", w.credit("DISHONEST"), message_id=mid)
    return _customs("replayed MessageId with different content", serialize(root), "1005",
                    message_id=mid, message_type="CDGI401")


# Document signatures and cards (the portal relays what an enterprise card signed) ---------
def _portal_case(w: World, name: str, business: etree._Element, code: str) -> Case:
    root = w.envelope(PORTAL, "CDGI109", business)
    return Case(name, serialize(root), code, PORTAL, PORTAL, message_id_of(root), "CDGI109")


@case
def operator_without_permission(w: World) -> Case:
    return _portal_case(w, "operator card without the permission",
                        w.a.sign(w.quota_apply(), "OA0002"), "1006")


@case
def revoked_card(w: World) -> Case:
    return _portal_case(w, "revoked card", w.a.sign(w.quota_apply(), "OA0003"), "1003")


@case
def another_enterprises_card(w: World) -> Case:
    return _portal_case(w, "another enterprise's card",
                        w.b.sign(w.quota_apply(), "OB0001"), "1003")


@case
def wrong_role(w: World) -> Case:
    return _portal_case(w, "legal-person card on an operator's document",
                        w.a.sign(w.quota_apply(), "LA0001"), "1003")


@case
def document_changed_after_card_signed(w: World) -> Case:
    signed = w.a.sign(w.quota_apply(), "OA0001")
    signed.find("cdgi:AppliedAmount", NS).text = "9000000.00"  # type: ignore[union-attr]
    return _portal_case(w, "document changed after the card signed, envelope re-signed",
                        signed, "1001")


@case
def document_inclusive_c14n(w: World) -> Case:
    # A sound signature by the right card over "#<Id>", but canonicalised inclusively: it would
    # break when the document is moved into the adapter's envelope (CONTRACT §4).
    signed = _signxml(w.quota_apply(), w.a.cards["OA0001"][1],
                      c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1)
    return _portal_case(w, "document signature with inclusive C14N", signed, "1004")


REASONS: dict[str, str] = {
    # What the refusal must say (a regular expression on the journal's info, which the
    # receipt's ReturnInfo repeats), where the code alone would not tell the rule apart.
    "not_well_formed": r"not well-formed",
    "dtd": r"DTD",
    "external_entity": r"DTD",
    "external_dtd": r"network entity|DTD",
    "billion_laughs": r"amplification|DTD|entit",
    "quadratic_blowup": r"amplification|DTD|entit",
    "oversize": r"exceeds the limit",
    "deep_nesting": r"nesting deeper than",
    "wrong_namespace_business": r"schema-invalid.*CreditInfo",
    "schema_invalid": r"schema-invalid.*EXCELLENT",
    "unknown_type": r"CDGI999' is not in the contract",
    "type_not_from_this_sender": r"CDGI301 is not accepted from a CUSTOMS",
    "unsigned": r"signature is missing",
    "another_partners_key": r"PORTAL .*not registered for this sender",
    "unregistered_key": r"impostor.*not registered for this sender",
    "unregistered_sender": r"INS.NOBODY is not registered",
    "disabled_sender": r"INS.OFF is disabled",
    "routing_key_of_another": r"does not match the routing key",
    "expired_certificate": r"not valid at",
    "rsa_sha1": r"rsa-sha1 is not allowed",
    "sha1_digest": r"digest method .*sha1 is not allowed",
    "tampered": r"altered",
    "content_added_after_signing": r"altered",
    "signature_first": r"not its last child",
    "signature_in_head": r"not its last child",
    "signature_twice": r"schema-invalid.*Signature\[2\]",
    "body_moved": r"schema-invalid.*Head/cdgi:Body",
    "body_duplicated": r"schema-invalid.*Body\[2\]",
    "duplicate_id": r"Id values occur more than once",
    "reference_to_business_only": r"reference URI is '#",
    "unsigned_object_beside_signed": r"ds:Object",
    "second_reference": r"2 references",
    "replayed_message_id": r"seen before with different content",
    "operator_without_permission": r"no QUOTA permission",
    "revoked_card": r"revoked",
    "another_enterprises_card": r"not signed by a card bound to enterprise",
    "wrong_role": r"must be signed by a OPERATOR card",
    "document_changed_after_card_signed": r"altered",
    "document_inclusive_c14n": r"exclusive C14N",
}
