"""The contract's XSD files, the catalogue, and the two validators (lxml and xmlschema)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

import schemas
from adapter.domain.identifiers import is_valid_uscc
from adapter.errors import SchemaInvalid, UnknownMessageType
from schemas import CATALOGUE, DS_NS, NS

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
C = f"{{{NS}}}"
SIGNATURE = f"{{{DS_NS}}}Signature"

# CONTRACT §5, written out again by hand so that a slip in the catalogue shows.
CONTRACT_TYPES = {
    "CDGI101": "CardBinding",
    "CDGI103": "OperatorGrant",
    "CDGI105": "AgreementSign",
    "CDGI107": "AuthorizationSign",
    "CDGI109": "QuotaApply",
    "CDGI111": "QuotaIncrease",
    "CDGI113": "PolicyApply",
    "CDGI115": "ClaimInfoQuery",
    "CDGI116": "ClaimInfoResult",
    "CDGI201": "AgreementResult",
    "CDGI301": "QuotaDecision",
    "CDGI303": "IncreaseDecision",
    "CDGI305": "PolicyDecision",
    "CDGI307": "ClaimSettlement",
    "CDGI401": "CreditInfo",
    "CDGI403": "PolicyRecordResult",
    "CDGI405": "GuaranteeDeduct",
    "CDGI407": "GuaranteeRestore",
    "CDGI409": "ClaimNotice",
    "CDGI501": "PolicyRecord",
    "CDGI503": "ClaimShare",
    "CDGI505": "StatusNotice",
    "CDGI507": "CreditShare",
    "CDGI900": "Receipt",
}
DOC_SIGNED = {"CDGI103", "CDGI105", "CDGI107", "CDGI109", "CDGI111", "CDGI113", "CDGI115"}
PARTY_KINDS = (
    ("PORTAL", re.compile(r"PORTAL")),
    ("BANK", re.compile(r"BANK\.[A-Z0-9]{2,12}")),
    ("INSURER", re.compile(r"INS\.[A-Z0-9]{2,12}")),
    ("CUSTOMS", re.compile(r"CUS\.[0-9]{4}")),
    ("ADAPTER", re.compile(r"DC")),
)


# -- helpers --------------------------------------------------------------------------------


def placeholder_signature() -> etree._Element:
    """A ds:Signature stand-in: the schema skips its content, the card package checks it."""
    signature = etree.Element(SIGNATURE, nsmap={"ds": DS_NS})
    etree.SubElement(signature, f"{{{DS_NS}}}SignedInfo")
    return signature


def business_of(envelope: etree._Element) -> etree._Element:
    body = envelope.find(f"{C}Body")
    assert body is not None
    return body[0]


def with_signatures(envelope: etree._Element) -> etree._Element:
    """A copy of an unsigned envelope with the signatures its type needs, as placeholders."""
    signed = copy.deepcopy(envelope)
    message_type = signed.findtext(f"{C}Head/{C}MessageType")
    assert message_type is not None
    if schemas.spec_for(message_type).doc_signed:
        business_of(signed).append(placeholder_signature())
    signed.append(placeholder_signature())
    return signed


def build_envelope(
    business: str,
    *,
    message_type: str,
    sender: str = "PORTAL",
    receiver: str = "DC",
    message_id: str = "6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1",
    send_time: str = "2026-11-24T10:15:00+08:00",
    signed: bool = True,
) -> etree._Element:
    """A full envelope around ``business`` (a cdgi element written with the cdgi prefix)."""
    text = (
        f'<cdgi:Envelope xmlns:cdgi="{NS}" version="1.0">\n'
        "<cdgi:Head>\n"
        f"<cdgi:MessageId>{message_id}</cdgi:MessageId>\n"
        f"<cdgi:MessageType>{message_type}</cdgi:MessageType>\n"
        f"<cdgi:SenderId>{sender}</cdgi:SenderId>\n"
        f"<cdgi:ReceiverId>{receiver}</cdgi:ReceiverId>\n"
        f"<cdgi:SendTime>{send_time}</cdgi:SendTime>\n"
        "</cdgi:Head>\n"
        f"<cdgi:Body>\n{business}\n</cdgi:Body>\n"
        "</cdgi:Envelope>"
    )
    envelope = etree.fromstring(text.encode())
    return with_signatures(envelope) if signed else envelope


def sample(message_type: str) -> etree._Element:
    return etree.parse(str(SAMPLES / f"{message_type}.xml")).getroot()


def lxml_accepts(root: etree._Element) -> bool:
    return bool(schemas.lxml_schema().validate(root))


@pytest.fixture(scope="module")
def xsd() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(schemas.xsd_path()), allow="sandbox", defuse="always")


@pytest.fixture(scope="module")
def published() -> etree.XMLSchema:
    """The published files compiled as they are (the hot path's copy types each Id xs:NCName)."""
    return etree.XMLSchema(etree.parse(str(schemas.xsd_path())))


def xmlschema_accepts(xsd: xmlschema.XMLSchema10, root: etree._Element) -> bool:
    resource = xmlschema.XMLResource(etree.ElementTree(root), allow="none", defuse="always")
    return bool(xsd.is_valid(resource, use_location_hints=False))


def reparsed(root: etree._Element) -> bytes:
    """Bytes with one element per line, so that a reported line number means something."""
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data


# -- the files ------------------------------------------------------------------------------


def test_the_package_ships_the_entry_point_and_every_part() -> None:
    names = {path.name for path in schemas.xsd_files()}
    assert schemas.xsd_path().name == "cdgi.xsd"
    assert schemas.xsd_path().is_file()
    assert names == {
        "cdgi.xsd",
        "common.xsd",
        "envelope.xsd",
        "receipt.xsd",
        "portal.xsd",
        "bank.xsd",
        "insurer.xsd",
        "customs.xsd",
        "adapter.xsd",
    }


@pytest.mark.parametrize("path", schemas.xsd_files(), ids=lambda path: path.name)
def test_every_schema_file_loads_on_its_own_with_lxml_and_with_xmlschema(path: Path) -> None:
    etree.XMLSchema(etree.parse(str(path)))
    loaded = xmlschema.XMLSchema10(str(path), allow="sandbox", defuse="always")
    assert loaded.target_namespace == NS


@pytest.mark.parametrize("path", schemas.xsd_files(), ids=lambda path: path.name)
def test_every_schema_file_is_xsd_1_0_qualified_and_refers_only_to_local_files(
    path: Path,
) -> None:
    root = etree.parse(str(path)).getroot()
    assert root.get("targetNamespace") == NS
    assert root.get("elementFormDefault") == "qualified"
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for reference in root.iter(f"{xs}include", f"{xs}import", f"{xs}redefine"):
        location = reference.get("schemaLocation", "")
        assert reference.tag == f"{xs}include"
        assert "/" not in location and ":" not in location
        assert (path.parent / location).is_file()


def test_the_entry_point_compiles_once_and_is_cached() -> None:
    first = schemas.lxml_schema()
    assert isinstance(first, etree.XMLSchema)
    assert schemas.lxml_schema() is first


def test_every_xs_id_of_the_contract_is_a_business_elements_so_a_document_holds_one(
    xsd: xmlschema.XMLSchema10,
) -> None:
    # The hot path declares them xs:NCName (schemas._HotPathFiles): the same documents are
    # valid only while no document can hold two.
    xs_id = xsd.maps.types["{http://www.w3.org/2001/XMLSchema}ID"]
    found: list[str] = []

    def walk(element: xmlschema.validators.XsdElement, path: str, seen: frozenset[int]) -> None:
        if not element.type.is_complex():
            return
        found.extend(f"{path}/@{name}" for name, attribute in element.type.attributes.items()
                     if attribute.type.is_derived(xs_id))
        for child in element.type.content.iter_elements():
            if isinstance(child, xmlschema.validators.XsdElement) and id(child) not in seen:
                walk(child, f"{path}/{child.local_name}", seen | {id(child)})

    walk(xsd.elements["Envelope"], "Envelope", frozenset())
    assert sorted(found) == sorted(f"Envelope/Body/{e}/@Id" for e in CONTRACT_TYPES.values())


def test_the_hot_path_registers_no_id_so_unique_ids_keep_no_memory(
    published: etree.XMLSchema,
) -> None:
    # libxml2 registers each xs:ID it validates, its value kept in lxml's string dictionary
    # for the life of the process; the registration is what XPath's id() finds.
    for schema, registers in ((published, True), (schemas.lxml_schema(), False)):
        root = etree.fromstring(etree.tostring(with_signatures(sample("CDGI109"))),
                                etree.XMLParser(collect_ids=False))
        assert schema.validate(root), schema.error_log
        assert bool(root.xpath("id($v)", v=business_of(root).get("Id"))) is registers


@pytest.mark.parametrize("value", ["D1", "d_1.x-2", "1D", "D:1", "D 1", ""])
def test_the_hot_path_and_the_published_schema_agree_on_every_id(
    value: str, published: etree.XMLSchema
) -> None:
    root = with_signatures(sample("CDGI109"))
    business_of(root).set("Id", value)
    assert schemas.lxml_schema().validate(root) is published.validate(root)
    if not published.validate(root):
        with pytest.raises(SchemaInvalid, match=f"'{re.escape(value)}' is not a valid value "
                           "of the atomic type 'xs:ID'"):
            schemas.validate(root)


def test_the_body_offers_exactly_the_catalogues_elements() -> None:
    envelope_xsd = etree.parse(str(schemas.xsd_path().with_name("envelope.xsd")))
    xs = {"xs": "http://www.w3.org/2001/XMLSchema"}
    choice = envelope_xsd.xpath(
        "//xs:complexType[@name='BodyType']/xs:choice/xs:element/@name", namespaces=xs
    )
    assert sorted(choice) == sorted({spec.element for spec in CATALOGUE.values()})


# -- the samples ----------------------------------------------------------------------------


def test_there_is_one_sample_per_message_type_of_the_catalogue() -> None:
    assert {path.stem for path in SAMPLES.glob("CDGI*.xml")} == set(CATALOGUE)


@pytest.mark.parametrize("message_type", sorted(CONTRACT_TYPES))
def test_every_sample_is_an_unsigned_envelope_of_its_own_type(message_type: str) -> None:
    envelope = sample(message_type)
    spec = schemas.spec_for(message_type)
    assert envelope.tag == f"{C}Envelope"
    assert envelope.findtext(f"{C}Head/{C}MessageType") == message_type
    assert business_of(envelope).tag == f"{C}{spec.element}"
    assert not list(envelope.iter(SIGNATURE))
    sender = envelope.findtext(f"{C}Head/{C}SenderId") or ""
    kinds = {kind for kind, pattern in PARTY_KINDS if pattern.fullmatch(sender)}
    assert kinds & spec.senders
    for uscc in envelope.iter(f"{C}USCC"):
        assert is_valid_uscc(uscc.text or "")


@pytest.mark.parametrize("message_type", sorted(CONTRACT_TYPES))
def test_every_sample_is_valid_once_signed(message_type: str, xsd: xmlschema.XMLSchema10) -> None:
    signed = with_signatures(sample(message_type))
    assert lxml_accepts(signed), schemas.lxml_schema().error_log
    assert xmlschema_accepts(xsd, signed)
    schemas.validate(signed)
    assert schemas.problems(reparsed(signed)) == []


@pytest.mark.parametrize("message_type", sorted(CONTRACT_TYPES))
def test_a_sample_without_its_signatures_is_refused(message_type: str) -> None:
    with pytest.raises(SchemaInvalid):
        schemas.validate(sample(message_type))


def test_the_helper_builds_a_valid_envelope_around_a_business_element(
    xsd: xmlschema.XMLSchema10,
) -> None:
    envelope = build_envelope(
        '<cdgi:QuotaIncrease Id="D1"><cdgi:IncreaseNo>I1</cdgi:IncreaseNo>'
        "<cdgi:QuotaNo>Q1</cdgi:QuotaNo><cdgi:Amount>1.5</cdgi:Amount></cdgi:QuotaIncrease>",
        message_type="CDGI111",
    )
    assert lxml_accepts(envelope)
    assert xmlschema_accepts(xsd, envelope)


# -- what both validators refuse ------------------------------------------------------------

Mutation = Callable[[etree._Element], None]


def _field(root: etree._Element, name: str) -> etree._Element:
    found = root.find(f".//{C}{name}")
    assert found is not None, name
    return found


def _set(name: str, value: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        _field(root, name).text = value

    return mutate


def _remove(name: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        node = _field(root, name)
        parent = node.getparent()
        assert parent is not None
        parent.remove(node)

    return mutate


def _swap_term_dates(root: etree._Element) -> None:
    end = _field(root, "TermEnd")
    _field(root, "TermStart").addprevious(end)


def _second_business_element(root: etree._Element) -> None:
    business = business_of(root)
    twin = copy.deepcopy(business)
    twin.set("Id", "D2")
    business.addnext(twin)


def _drop_envelope_signature(root: etree._Element) -> None:
    root.remove(root[-1])


def _drop_document_signature(root: etree._Element) -> None:
    business = business_of(root)
    business.remove(business[-1])


def _wrong_namespace(root: etree._Element) -> None:
    _field(root, "QuotaNo").tag = "{urn:cdgi:2}QuotaNo"


def _no_namespace(root: etree._Element) -> None:
    _field(root, "InsurerCode").tag = "InsurerCode"


def _signature_on_a_document_that_takes_none(root: etree._Element) -> None:
    business_of(root).append(placeholder_signature())


def _wrong_version(root: etree._Element) -> None:
    root.set("version", "2.0")


INVALID: dict[str, tuple[str, Mutation]] = {
    "a wrong enumeration": ("CDGI301", _set("Result", "ACCEPTED")),
    "an amount with 3 fraction digits": ("CDGI109", _set("AppliedAmount", "5000000.005")),
    "an amount written as a float": ("CDGI109", _set("AppliedAmount", "5E6")),
    "a negative amount": ("CDGI111", _set("Amount", "-1.00")),
    "an amount of 17 integer digits": ("CDGI111", _set("Amount", "10000000000000000")),
    "a missing required field": ("CDGI109", _remove("TermEnd")),
    "fields out of order": ("CDGI109", _swap_term_dates),
    "two business elements in Body": ("CDGI109", _second_business_element),
    "a missing envelope signature": ("CDGI109", _drop_envelope_signature),
    "a SendTime without offset": ("CDGI109", _set("SendTime", "2026-11-24T10:15:00")),
    "a lower-case MessageId": (
        "CDGI109",
        _set("MessageId", "6f1c2b9e-3a44-4c0b-9d0e-7a51c2e4b8f1"),
    ),
    "a doc-signed element without its signature": ("CDGI113", _drop_document_signature),
    "an element in the wrong namespace": ("CDGI109", _wrong_namespace),
    "an element in no namespace": ("CDGI109", _no_namespace),
    "a signature on a document that takes none": (
        "CDGI201",
        _signature_on_a_document_that_takes_none,
    ),
    "an envelope version other than 1.0": ("CDGI109", _wrong_version),
    "an unknown sender id": ("CDGI109", _set("SenderId", "portal")),
    "a customs id of 3 digits": ("CDGI401", _set("SenderId", "CUS.080")),
    "a USCC with a forbidden letter": ("CDGI109", _set("USCC", "91210100MA0XXXXI10")),
    "a USCC of 17 characters": ("CDGI109", _set("USCC", "91210100MA0XXXXX1")),
    "a customs code of 9 characters": ("CDGI401", _set("CustomsCode", "210196000")),
    "a district of 3 digits": ("CDGI105", _set("CustomsDistrict", "080")),
    "an entry id of 17 digits": ("CDGI405", _set("EntryId", "08002027100012345")),
    "an upper-case Sha256": ("CDGI501", _set("EPolicySha256", "AB" * 32)),
    "a date with an offset": ("CDGI109", _set("TermStart", "2026-12-01+08:00")),
    "a blank name": ("CDGI101", _set("EnterpriseName", "   ")),
    "a name longer than 200 characters": ("CDGI101", _set("EnterpriseName", "公" * 201)),
    "a reason longer than 1000 characters": ("CDGI303", _set("Reason", "x" * 1001)),
    "a rate above 1": ("CDGI301", _set("Rate", "1.5")),
    "a permission named twice": ("CDGI103", _set("Permission", "QUERY")),
    "a tax kind named twice": ("CDGI405", _set("TaxKind", "VAT")),
    "an EPolicy media type other than pdf or ofd": ("CDGI305", _set("MediaType", "text/html")),
    "a certificate that is not base64": ("CDGI101", _set("Certificate", "not base64!")),
    "a receipt status of 0": ("CDGI900", _set("ReturnStatus", "0")),
    "a receipt code of 3 digits": ("CDGI900", _set("ReturnCode", "000")),
    "a flag that is not a boolean": ("CDGI101", _set("Revoked", "yes")),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_both_validators_refuse(case: str, xsd: xmlschema.XMLSchema10) -> None:
    message_type, mutate = INVALID[case]
    root = with_signatures(sample(message_type))
    assert lxml_accepts(root), "the case must start from a valid message"
    mutate(root)
    assert not lxml_accepts(root)
    assert not xmlschema_accepts(xsd, root)
    with pytest.raises(SchemaInvalid) as refused:
        schemas.validate(etree.fromstring(reparsed(root)))
    assert refused.value.code == "0002"
    assert re.search(r"line \d+, at /cdgi:Envelope", refused.value.message)
    found = schemas.problems(reparsed(root))
    assert found
    for problem in found:
        assert isinstance(problem.line, int) and problem.line > 0
        assert problem.path and problem.path.startswith("/cdgi:Envelope")
        assert problem.message


def test_problems_points_at_the_offending_line_and_field() -> None:
    root = with_signatures(sample("CDGI109"))
    _set("AppliedAmount", "5000000.005")(root)
    data = reparsed(root)
    line = next(
        number
        for number, text in enumerate(data.decode().splitlines(), start=1)
        if "AppliedAmount" in text
    )
    found = schemas.problems(data)
    assert {problem.line for problem in found} == {line}
    assert {problem.path for problem in found} == {
        "/cdgi:Envelope/cdgi:Body/cdgi:QuotaApply/cdgi:AppliedAmount"
    }
    assert any("5000000.005" in problem.message for problem in found)


def test_a_business_element_is_not_a_document_on_its_own(xsd: xmlschema.XMLSchema10) -> None:
    business = business_of(with_signatures(sample("CDGI201")))
    alone = etree.fromstring(etree.tostring(business))
    assert not lxml_accepts(alone)
    assert not xmlschema_accepts(xsd, alone)


def test_a_not_well_formed_document_gives_one_problem_with_its_line() -> None:
    found = schemas.problems(
        b'<?xml version="1.0"?>\n<cdgi:Envelope xmlns:cdgi="urn:cdgi:1">\n<a>\n'
    )
    assert len(found) == 1
    assert found[0].line is not None and found[0].line >= 3
    assert found[0].path is None
    assert "not well-formed" in found[0].message


def test_problems_does_not_follow_a_schema_location_hint_in_the_document() -> None:
    root = with_signatures(sample("CDGI109"))
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    root.set(f"{{{xsi}}}schemaLocation", f"{NS} http://example.invalid/evil.xsd")
    assert schemas.problems(reparsed(root)) == []


def test_validate_reports_at_most_five_problems_and_how_many_more() -> None:
    root = with_signatures(sample("CDGI103"))
    for permission in root.iter(f"{C}Permission"):
        permission.text = "EVERYTHING"
    _set("USCC", "bad")(root)
    _set("OperatorCardNo", "?")(root)
    with pytest.raises(SchemaInvalid) as refused:
        schemas.validate(etree.fromstring(reparsed(root)))
    message = refused.value.message
    assert len(re.findall(r"line \d+, at /cdgi:", message)) == 5
    assert re.search(r"and \d+ more$", message)
    assert len(message) <= 1000


# -- what both validators accept ------------------------------------------------------------

VALID: dict[str, tuple[str, Mutation]] = {
    "a SendTime in UTC": ("CDGI109", _set("SendTime", "2026-11-24T02:15:00Z")),
    "a SendTime with milliseconds": ("CDGI109", _set("SendTime", "2026-11-24T10:15:00.123+08:00")),
    "an amount without fraction": ("CDGI111", _set("Amount", "1000000")),
    "an amount of 16 integer digits": ("CDGI111", _set("Amount", "9999999999999999.99")),
    "a zero amount": ("CDGI407", _set("Amount", "0.00")),
    "a receipt about an unreadable message": ("CDGI900", _set("OriMessageId", "Unknown")),
    "a receipt about an unknown type": ("CDGI900", _set("OriMessageType", "Unknown")),
    "a refusal receipt": ("CDGI900", _set("ReturnStatus", "-1")),
    "a receipt for a lower-case id": (
        "CDGI900",
        _set("OriMessageId", "6f1c2b9e-3a44-4c0b-9d0e-7a51c2e4b8f1"),
    ),
    "a decision without its result-dependent fields": ("CDGI301", _remove("ApprovedAmount")),
    "an adapter id other than DC": ("CDGI505", _set("SenderId", "DCLN")),
    "a multi-line reason": ("CDGI303", _set("Reason", "first line\nsecond line")),
    "a flag written as 1": ("CDGI101", _set("Revoked", "1")),
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_both_validators_accept(case: str, xsd: xmlschema.XMLSchema10) -> None:
    message_type, mutate = VALID[case]
    root = with_signatures(sample(message_type))
    mutate(root)
    assert lxml_accepts(root), schemas.lxml_schema().error_log
    assert xmlschema_accepts(xsd, root)
    assert schemas.problems(reparsed(root)) == []


# -- the catalogue --------------------------------------------------------------------------


def test_the_catalogue_covers_every_message_type_of_the_contract() -> None:
    assert {t: spec.element for t, spec in CATALOGUE.items()} == CONTRACT_TYPES
    assert all(spec.type == t for t, spec in CATALOGUE.items())


def test_exactly_the_enterprise_documents_are_doc_signed() -> None:
    assert {t for t, spec in CATALOGUE.items() if spec.doc_signed} == DOC_SIGNED


def test_the_catalogue_names_who_may_send_each_type() -> None:
    kinds = {"PORTAL", "BANK", "INSURER", "CUSTOMS", "ADAPTER"}
    assert CATALOGUE["CDGI900"].senders == kinds
    assert CATALOGUE["CDGI900"].inbound
    assert CATALOGUE["CDGI409"].senders == {"CUSTOMS", "ADAPTER"}
    assert CATALOGUE["CDGI409"].inbound
    assert CATALOGUE["CDGI201"].senders == {"BANK"}
    assert CATALOGUE["CDGI305"].senders == {"INSURER"}
    assert CATALOGUE["CDGI101"].senders == {"PORTAL"}
    assert CATALOGUE["CDGI109"].senders == {"PORTAL", "ADAPTER"}
    assert all(spec.senders <= kinds for spec in CATALOGUE.values())


def test_only_what_the_adapter_itself_makes_is_not_accepted_inbound() -> None:
    outbound_only = {t for t, spec in CATALOGUE.items() if not spec.inbound}
    assert outbound_only == {"CDGI116", "CDGI501", "CDGI503", "CDGI505", "CDGI507"}
    assert all(CATALOGUE[t].senders == {"ADAPTER"} for t in outbound_only)


def test_the_catalogue_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        CATALOGUE["CDGI999"] = CATALOGUE["CDGI900"]  # type: ignore[index]


def test_spec_for_finds_a_known_type() -> None:
    assert schemas.spec_for("CDGI109").element == "QuotaApply"


@pytest.mark.parametrize("unknown", ["CDGI999", "CDGI102", "cdgi109", ""])
def test_spec_for_an_unknown_type_raises_unknown_message_type_0003(unknown: str) -> None:
    with pytest.raises(UnknownMessageType) as raised:
        schemas.spec_for(unknown)
    assert raised.value.code == "0003"
    assert repr(unknown) in raised.value.message
