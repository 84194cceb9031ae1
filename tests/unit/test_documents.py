"""The business-element builders of ``adapter.documents``, checked against the contract.

Every builder is called with the values of its sample in ``tests/samples`` and must give back,
field for field and in the same order, what the sample holds; wrapped in a signed envelope it
must pass the XSD; read back with the parse helpers it must give the values it was built from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import schemas
from adapter import documents as d
from adapter.domain.identifiers import make_uscc
from adapter.envelope import NS, build_envelope, business_element, contract_time, q, serialize
from adapter.errors import SchemaInvalid
from card import SoftwareSigner, sign_document, sign_envelope, verify_document, verify_envelope

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CHINA = timezone(timedelta(hours=8))
USCC = make_uscc("91210100MA0XXXXX1")
ENTERPRISE = "沈阳示例进出口贸易有限公司"
BANK = "中国银行股份有限公司沈阳分行"
PICC = "中国人民财产保险股份有限公司"
POLICY_NO = "PDAA202621010000000123"
QUOTA_NO = "Q2026112400017"
RECORD_NO = "DB0800202612000031"
PDF = b"%PDF-1.7\n% sample electronic policy PDAA202621010000000123\n%%EOF\n"
PDF_SHA256 = "38d8f8f41e63345522f444508613a312a6a50f018d9aa4e62df81302c5af9e37"
CERTIFICATE = b"0\x82\x01\x00 placeholder DER certificate of card LP-0001"
PAID = datetime(2027, 8, 1, 15, 20, tzinfo=CHINA)
RECORD = d.CreditRecord(date(2025, 6, 18), "行政处罚", "申报不实，已结案")


@dataclass(frozen=True)
class Case:
    """A builder and the values of its sample."""

    build: Callable[..., etree._Element]
    values: dict[str, Any]


# The values of tests/samples/<type>.xml, one builder each.
CASES: dict[str, Case] = {
    "CDGI101": Case(
        d.card_binding,
        {
            "uscc": USCC,
            "enterprise_name": ENTERPRISE,
            "customs_code": "2101960001",
            "card_no": "LP-0001",
            "card_role": "LEGAL",
            "certificate": CERTIFICATE,
            "valid_from": date(2026, 1, 1),
            "valid_to": date(2030, 12, 31),
            "seals": [d.Seal("SEAL-L-0001", "李强", date(2026, 1, 1), date(2030, 12, 31))],
            "revoked": False,
        },
    ),
    "CDGI103": Case(
        d.operator_grant,
        {
            "uscc": USCC,
            "operator_card_no": "OP-0001",
            "permissions": ["AUTHORIZE", "QUOTA", "POLICY", "QUERY"],
        },
    ),
    "CDGI105": Case(
        d.agreement_sign,
        {
            "agreement_no": "A2026110300001",
            "uscc": USCC,
            "payer_name": ENTERPRISE,
            "bank_code": "BOC",
            "bank_name": BANK,
            "clearing_bank_code": "104221000010",
            "account_no": "304800012345678901",
            "customs_district": "0800",
            "seal_id": "SEAL-L-0001",
        },
    ),
    "CDGI107": Case(
        d.authorization_sign,
        {
            "auth_no": "AU2026110500001",
            "uscc": USCC,
            "insurer_code": "PICC",
            "scopes": ["CREDIT_QUERY"],
            "valid_to": date(2027, 11, 30),
            "seal_id": "SEAL-O-0001",
        },
    ),
    "CDGI109": Case(
        d.quota_apply,
        {
            "quota_no": QUOTA_NO,
            "uscc": USCC,
            "insurer_code": "PICC",
            "applied_amount": Decimal("5000000.00"),
            "term_start": date(2026, 12, 1),
            "term_end": date(2027, 11, 30),
            "contact": d.Contact("王芳", "024-88886666"),
        },
    ),
    "CDGI111": Case(
        d.quota_increase,
        {"increase_no": "I2027020100003", "quota_no": QUOTA_NO, "amount": Decimal(1000000)},
    ),
    "CDGI113": Case(
        d.policy_apply,
        {
            "apply_no": "P2026120200005",
            "quota_no": QUOTA_NO,
            "uscc": USCC,
            "insured_amount": Decimal("2000000.00"),
            "term_start": date(2026, 12, 5),
            "term_end": date(2027, 11, 30),
            "insured_customs": ["0800", "0900"],
            "coverage": ["DUTY", "VAT", "LATE_FEE"],
            "invoice": d.Invoice(
                type="SPECIAL",
                title=ENTERPRISE,
                taxpayer_id=USCC,
                address="辽宁省沈阳市和平区示例路1号",
                phone="024-88886666",
                bank_name=BANK,
                bank_account="304800012345678901",
                email="finance@example.cn",
            ),
        },
    ),
    "CDGI115": Case(
        d.claim_info_query,
        {
            "query_no": "CQ2027081500001",
            "uscc": USCC,
            "insurer_code": "PICC",
            "insurer_name": PICC,
            "policy_no": POLICY_NO,
        },
    ),
    "CDGI116": Case(
        d.claim_info_result,
        {
            "query_no": "CQ2027081500001",
            "uscc": USCC,
            "claims": [
                d.ClaimSummary(
                    claim_no="CN2027072300002",
                    policy_no=POLICY_NO,
                    insurer_code="PICC",
                    insurer_name=PICC,
                    claimed_amount=Decimal("61056.00"),
                    paid_amount=Decimal("61056.00"),
                    paid_time=PAID,
                    status="PAID",
                )
            ],
        },
    ),
    "CDGI201": Case(
        d.agreement_result,
        {
            "agreement_no": "A2026110300001",
            "result": "EFFECTIVE",
            "effective_date": date(2026, 11, 4),
        },
    ),
    "CDGI301": Case(
        d.quota_decision,
        {
            "quota_no": QUOTA_NO,
            "result": "APPROVED",
            "approved_amount": Decimal("5000000.00"),
            "rate": Decimal("0.0080"),
            "valid_from": date(2026, 12, 1),
            "valid_to": date(2027, 11, 30),
        },
    ),
    "CDGI303": Case(
        d.increase_decision,
        {
            "increase_no": "I2027020100003",
            "quota_no": QUOTA_NO,
            "result": "REJECTED",
            "reason": "追加额度超过承保能力",
        },
    ),
    "CDGI305": Case(
        d.policy_decision,
        {
            "apply_no": "P2026120200005",
            "result": "ISSUED",
            "policy_no": POLICY_NO,
            "premium": Decimal("16000.00"),
            "rate": Decimal("0.0080"),
            "term_start": date(2026, 12, 5),
            "term_end": date(2027, 11, 30),
            "e_policy": d.EPolicy.of(f"{POLICY_NO}.pdf", "application/pdf", PDF),
        },
    ),
    "CDGI307": Case(
        d.claim_settlement,
        {
            "claim_no": "CN2027072300002",
            "policy_no": POLICY_NO,
            "result": "PAID",
            "paid_amount": Decimal("61056.00"),
            "paid_time": PAID,
        },
    ),
    "CDGI401": Case(
        d.credit_info,
        {
            "uscc": USCC,
            "customs_code": "2101960001",
            "rating": "GENERAL",
            "rated_date": date(2026, 10, 15),
            "records": [RECORD],
        },
    ),
    "CDGI403": Case(
        d.policy_record_result,
        {"policy_no": POLICY_NO, "result": "RECORDED", "guarantee_record_no": RECORD_NO},
    ),
    "CDGI405": Case(
        d.guarantee_deduct,
        {
            "guarantee_record_no": RECORD_NO,
            "entry_id": "080020271000123456",
            "declaration_type": "TT",
            "customs_district": "0800",
            "tax_items": [
                d.TaxItem("DUTY", Decimal("12000.00")),
                d.TaxItem("VAT", Decimal("45600.00")),
            ],
            "total": Decimal("57600.00"),
            # Given in UTC on purpose: the wire carries China time.
            "deduct_time": datetime(2027, 3, 10, 1, 30, tzinfo=UTC),
            "payment_due_date": date(2027, 3, 25),
        },
    ),
    "CDGI407": Case(
        d.guarantee_restore,
        {
            "guarantee_record_no": RECORD_NO,
            "entry_id": "080020271000120001",
            "amount": Decimal("8300.50"),
            "paid_time": datetime(2027, 2, 20, 11, 5, tzinfo=CHINA),
        },
    ),
    "CDGI409": Case(
        d.claim_notice,
        {
            "claim_no": "CN2027072300002",
            "policy_no": POLICY_NO,
            "guarantee_record_no": RECORD_NO,
            "cause": "OVERDUE",
            "entries": [
                d.ClaimEntry(
                    "080020271000123456",
                    Decimal("57600.00"),
                    date(2027, 3, 25),
                    120,
                    Decimal("3456.00"),
                )
            ],
            "total": Decimal("61056.00"),
            "notice_date": date(2027, 7, 23),
        },
    ),
    "CDGI501": Case(
        d.policy_record,
        {
            "policy_no": POLICY_NO,
            "uscc": USCC,
            "enterprise_name": ENTERPRISE,
            "customs_code": "2101960001",
            "insurer_code": "PICC",
            "insured_amount": Decimal("2000000.00"),
            "term_start": date(2026, 12, 5),
            "term_end": date(2027, 11, 30),
            "insured_customs": ["0800", "0900"],
            "coverage": ["DUTY", "VAT", "LATE_FEE"],
            "e_policy_sha256": PDF_SHA256,
        },
    ),
    "CDGI503": Case(
        d.claim_share,
        {
            "claim_no": "CN2027072300002",
            "policy_no": POLICY_NO,
            "insurer_code": "PICC",
            "uscc": USCC,
            "enterprise_name": ENTERPRISE,
            "claimed_amount": Decimal("61056.00"),
            "paid_amount": Decimal("61056.00"),
            "paid_time": PAID,
        },
    ),
    "CDGI505": Case(
        d.status_notice,
        {
            "uscc": USCC,
            "subject": "QUOTA",
            "subject_no": QUOTA_NO,
            "status": "APPROVED",
            "time": datetime(2026, 11, 28, 16, 40, tzinfo=CHINA),
        },
    ),
    "CDGI507": Case(
        d.credit_share,
        {
            "quota_no": QUOTA_NO,
            "uscc": USCC,
            "rating": "GENERAL",
            "rated_date": date(2026, 10, 15),
            "records": [RECORD],
        },
    ),
    "CDGI900": Case(
        d.receipt,
        {
            "ori_message_id": "263D535F-309A-5073-B92A-8216074A6569",
            "ori_message_type": "CDGI109",
            "return_status": 2,
            "return_code": "0000",
            "return_info": "accepted and forwarded to INS.PICC",
            "return_time": datetime(2026, 11, 24, 10, 15, 1, 204000, tzinfo=CHINA),
        },
    ),
}

# Parameter names whose element name is not the plain CamelCase of the name.
IRREGULAR_TAGS = {
    "uscc": "USCC",
    "e_policy": "EPolicy",
    "e_policy_sha256": "EPolicySha256",
    "seals": "Seal",
    "permissions": "Permission",
    "scopes": "Scope",
    "tax_items": "TaxItem",
    "entries": "Entry",
    "records": "Record",
    "claims": "Claim",
}


def tag_of(parameter: str) -> str:
    return IRREGULAR_TAGS.get(parameter) or "".join(p.capitalize() for p in parameter.split("_"))


@pytest.fixture(scope="module")
def party() -> SoftwareSigner:
    return SoftwareSigner.generate("partner", key_name="PARTNER-01")


@pytest.fixture(scope="module")
def card() -> SoftwareSigner:
    return SoftwareSigner.generate(f"Operator of {USCC}", key_name="OP-0001")


def sample(message_type: str) -> etree._Element:
    return etree.parse(str(SAMPLES / f"{message_type}.xml")).getroot()


def built(message_type: str) -> etree._Element:
    case = CASES[message_type]
    return case.build(**case.values)


def travelled(
    message_type: str, party: SoftwareSigner, card: SoftwareSigner
) -> tuple[etree._Element, etree._Element]:
    """The built element in a signed envelope, as its receiver parses it: (envelope, element)."""
    head = sample(message_type).find(q("Head"))
    assert head is not None
    business = built(message_type)
    if schemas.spec_for(message_type).doc_signed:
        business = sign_document(business, card)
    root = build_envelope(
        message_type=message_type,
        sender_id=head.findtext(q("SenderId")) or "",
        receiver_id=head.findtext(q("ReceiverId")) or "",
        business=business,
        send_time=contract_time(datetime.now(UTC)),
        correlation_id=head.findtext(q("CorrelationId")),
    )
    root = etree.fromstring(serialize(sign_envelope(root, party)))
    element = business_element(root)
    assert element is not None
    return root, element


def leaves(node: etree._Element) -> list[tuple[str, object]]:
    """Every field below ``node`` as (path, value), in document order, signatures left out.

    Times compare as instants: the builders always write milliseconds, the samples do not.
    """
    found: list[tuple[str, object]] = []
    for child in node.iterchildren(tag=etree.Element):
        if etree.QName(child).namespace != NS:
            continue  # ds:Signature
        name = etree.QName(child).localname
        if len(child):
            found += [(f"{name}/{path}", value) for path, value in leaves(child)]
        else:
            text = (child.text or "").strip()
            found.append((name, d.parse_time(text) if name.endswith("Time") else text))
    return found


def read_back(element: etree._Element, parameter: str, expected: object) -> object:
    """A field of ``element`` read with the parse helpers, typed like ``expected``."""
    tag = tag_of(parameter)
    if isinstance(expected, list):
        if expected and isinstance(expected[0], str):
            return d.texts_of(element, tag)
        kind = type(expected[0]) if expected else None
        nodes = element.findall(q(tag))
        return [kind.from_element(n) for n in nodes] if kind else nodes  # type: ignore[union-attr]
    if hasattr(type(expected), "from_element"):
        node = element.find(q(tag))
        assert node is not None, tag
        return type(expected).from_element(node)  # type: ignore[attr-defined]
    text = d.text_of(element, tag)
    assert text is not None, f"{tag} is missing"
    if isinstance(expected, bool):
        return d.parse_bool(text)
    if isinstance(expected, Decimal):
        return d.parse_rate(text) if parameter == "rate" else d.parse_amount(text)
    if isinstance(expected, datetime):
        return d.parse_time(text)
    if isinstance(expected, date):
        return d.parse_date(text)
    if isinstance(expected, bytes):
        return d.parse_base64(text)
    if isinstance(expected, int):
        return int(text)
    return text


# -- every builder ---------------------------------------------------------------------------
def test_there_is_a_builder_case_for_every_message_type_of_the_catalogue() -> None:
    assert sorted(CASES) == sorted(schemas.CATALOGUE)
    for message_type in CASES:
        assert etree.QName(built(message_type)).localname == (
            schemas.CATALOGUE[message_type].element
        )


@pytest.mark.parametrize("message_type", sorted(CASES))
def test_each_built_element_in_a_signed_envelope_is_accepted_by_the_schema(
    message_type: str, party: SoftwareSigner, card: SoftwareSigner
) -> None:
    root, element = travelled(message_type, party, card)
    schemas.validate(root)
    verify_envelope(root, [party.certificate])
    if schemas.spec_for(message_type).doc_signed:
        verify_document(element, [card.certificate])


@pytest.mark.parametrize("message_type", sorted(CASES))
def test_each_built_element_holds_its_sample_field_for_field_in_the_same_order(
    message_type: str,
) -> None:
    expected = business_element(sample(message_type))
    assert expected is not None
    assert leaves(built(message_type)) == leaves(expected)


@pytest.mark.parametrize("message_type", sorted(CASES))
def test_each_built_element_reads_back_to_the_values_it_was_built_from(
    message_type: str, party: SoftwareSigner, card: SoftwareSigner
) -> None:
    _, element = travelled(message_type, party, card)
    for parameter, value in CASES[message_type].values.items():
        assert read_back(element, parameter, value) == value, parameter


@pytest.mark.parametrize("message_type", sorted(CASES))
def test_each_builder_gives_a_fresh_id_every_time(message_type: str) -> None:
    first, second = built(message_type), built(message_type)
    prefix = "R" if message_type == "CDGI900" else "D"
    assert first.get("Id", "").startswith(prefix)
    assert second.get("Id", "").startswith(prefix)
    assert first.get("Id") != second.get("Id")


def test_a_doc_signed_element_is_built_without_a_signature_and_signed_as_its_last_child(
    card: SoftwareSigner,
) -> None:
    element = built("CDGI109")
    assert [etree.QName(c).localname for c in element][-1] == "Contact"
    signed = sign_document(element, card)
    assert etree.QName(signed[-1]).localname == "Signature"


# -- optional and repeated fields ------------------------------------------------------------
def test_optional_fields_given_as_none_are_left_out() -> None:
    element = d.quota_decision(quota_no=QUOTA_NO, result="REJECTED", reason="企业信用不足")
    assert [etree.QName(c).localname for c in element] == ["QuotaNo", "Result", "Reason"]
    query = d.claim_info_query(query_no="CQ1", uscc=USCC, policy_no=POLICY_NO)
    assert [etree.QName(c).localname for c in query] == ["QueryNo", "USCC", "PolicyNo"]


def test_a_prev_quota_no_sits_between_the_term_and_the_contact() -> None:
    values = {**CASES["CDGI109"].values, "prev_quota_no": "Q2025112400003"}
    names = [etree.QName(c).localname for c in d.quota_apply(**values)]
    assert names[-3:] == ["TermEnd", "PrevQuotaNo", "Contact"]


def test_optional_parts_of_a_claim_summary_are_left_out_and_read_back_as_none() -> None:
    claim = d.ClaimSummary(
        claim_no="CN2027072300002",
        policy_no=POLICY_NO,
        insurer_code="PICC",
        insurer_name=PICC,
        claimed_amount=Decimal("61056.00"),
        status="NOTIFIED",
    )
    node = claim.to_element()
    assert d.text_of(node, "PaidAmount") is None and d.text_of(node, "PaidTime") is None
    assert d.ClaimSummary.from_element(node) == claim


def test_an_epolicy_without_content_has_no_content_element() -> None:
    e_policy = d.EPolicy(f"{POLICY_NO}.ofd", "application/ofd", PDF_SHA256)
    node = e_policy.to_element()
    assert [etree.QName(c).localname for c in node] == ["FileName", "MediaType", "Sha256"]
    assert d.EPolicy.from_element(node) == e_policy


def test_epolicy_of_computes_the_lower_case_sha256_of_its_content() -> None:
    assert d.EPolicy.of("p.pdf", "application/pdf", PDF).sha256 == PDF_SHA256


def test_a_one_or_more_field_refuses_an_empty_list_and_a_bare_string() -> None:
    values = CASES["CDGI103"].values
    with pytest.raises(ValueError, match="permissions"):
        d.operator_grant(**{**values, "permissions": []})
    with pytest.raises(TypeError):
        d.operator_grant(**{**values, "permissions": "QUOTA"})
    with pytest.raises(ValueError, match="entries"):
        d.claim_notice(**{**CASES["CDGI409"].values, "entries": []})


def test_a_group_of_the_wrong_kind_is_refused() -> None:
    seal = d.Seal("SEAL-L-0001", "李强", date(2026, 1, 1), date(2030, 12, 31))
    with pytest.raises(TypeError, match="Contact"):
        d.quota_apply(**{**CASES["CDGI109"].values, "contact": seal})
    with pytest.raises(TypeError):
        d.credit_info(**{**CASES["CDGI401"].values, "records": [seal]})


def test_a_group_reads_back_only_from_its_own_element() -> None:
    with pytest.raises(ValueError, match="Contact"):
        d.Contact.from_element(RECORD.to_element())


# -- amounts and rates -------------------------------------------------------------------
@pytest.mark.parametrize("amount", [5000000.0, 0.1, 5000000, True])
def test_an_amount_that_is_not_a_decimal_is_refused(amount: object) -> None:
    with pytest.raises(TypeError):
        d.quota_increase(increase_no="I1", quota_no=QUOTA_NO, amount=amount)  # type: ignore[arg-type]


def test_a_float_is_refused_inside_a_group_too() -> None:
    with pytest.raises(TypeError):
        d.TaxItem("DUTY", 12000.0).to_element()  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        d.quota_decision(quota_no=QUOTA_NO, result="APPROVED", rate=0.008)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "amount",
    ["0.001", "100.005", "-1.00", "NaN", "Infinity", "10000000000000000", "1E+16"],
)
def test_an_amount_that_is_not_a_whole_number_of_fen_within_the_limits_is_refused(
    amount: str,
) -> None:
    with pytest.raises(ValueError):
        d.quota_increase(increase_no="I1", quota_no=QUOTA_NO, amount=Decimal(amount))


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("5000000", "5000000.00"),
        ("8300.5", "8300.50"),
        ("0.010000", "0.01"),
        ("-0", "0.00"),
        ("1E+3", "1000.00"),
        ("9999999999999999.99", "9999999999999999.99"),
    ],
)
def test_an_amount_is_written_with_exactly_two_fraction_digits(amount: str, text: str) -> None:
    element = d.quota_increase(increase_no="I1", quota_no=QUOTA_NO, amount=Decimal(amount))
    assert d.text_of(element, "Amount") == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        ("0.0080", "0.0080"),
        ("0.008", "0.008"),
        ("0.00800000", "0.008"),
        ("1", "1"),
        ("8E-3", "0.008"),
    ],
)
def test_a_rate_is_written_as_given_within_six_fraction_digits(rate: str, text: str) -> None:
    element = d.quota_decision(quota_no=QUOTA_NO, result="APPROVED", rate=Decimal(rate))
    assert d.text_of(element, "Rate") == text


@pytest.mark.parametrize("rate", ["0.0080001", "0.1234567", "1.01", "-0.01", "NaN"])
def test_a_rate_with_too_many_digits_or_out_of_range_is_refused(rate: str) -> None:
    with pytest.raises(ValueError):
        d.quota_decision(quota_no=QUOTA_NO, result="APPROVED", rate=Decimal(rate))


# -- dates, times, flags, bytes --------------------------------------------------------------
def test_a_time_is_written_in_china_time_with_milliseconds() -> None:
    element = d.status_notice(
        uscc=USCC,
        subject="QUOTA",
        subject_no=QUOTA_NO,
        status="APPROVED",
        time=datetime(2026, 11, 28, 8, 40, 0, 123456, tzinfo=UTC),
    )
    assert d.text_of(element, "Time") == "2026-11-28T16:40:00.123+08:00"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        d.guarantee_restore(
            guarantee_record_no=RECORD_NO,
            entry_id="080020271000120001",
            amount=Decimal("1.00"),
            paid_time=datetime(2027, 2, 20, 11, 5),
        )


def test_a_datetime_where_a_date_belongs_is_refused() -> None:
    with pytest.raises(TypeError):
        d.agreement_result(
            agreement_no="A1", result="EFFECTIVE", effective_date=datetime(2026, 11, 4, tzinfo=UTC)
        )


def test_flags_are_written_true_and_false() -> None:
    values = CASES["CDGI103"].values
    assert d.text_of(d.operator_grant(**values, revoke=True), "Revoke") == "true"
    assert d.text_of(d.operator_grant(**values, revoke=False), "Revoke") == "false"
    with pytest.raises(TypeError):
        d.operator_grant(**values, revoke="true")  # type: ignore[arg-type]


def test_text_fields_refuse_what_is_not_a_string() -> None:
    # A district as an int would lose its leading zero.
    with pytest.raises(TypeError):
        d.agreement_sign(**{**CASES["CDGI105"].values, "customs_district": 800})


def test_empty_binary_content_is_refused() -> None:
    with pytest.raises(ValueError):
        d.card_binding(**{**CASES["CDGI101"].values, "certificate": b""})


# -- the parse helpers -----------------------------------------------------------------------
def test_the_parse_helpers_read_the_wire_forms() -> None:
    assert d.parse_amount("61056") == Decimal("61056.00")
    assert str(d.parse_amount("8300.5")) == "8300.50"
    assert str(d.parse_rate("0.0080")) == "0.0080"
    assert d.parse_date("2027-03-25") == date(2027, 3, 25)
    moment = d.parse_time("2027-08-01T07:20:00Z")
    assert moment == PAID and moment.utcoffset() == timedelta(0)
    assert d.parse_time("2027-08-01T15:20:00.123456789+08:00").microsecond == 123456
    assert d.parse_bool("1") is True and d.parse_bool("false") is False
    assert d.parse_base64("JVBE\nRi0=") == b"%PDF-"
    assert d.parse_days("120") == 120


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (d.parse_amount, "1.005"),
        (d.parse_amount, "-1.00"),
        (d.parse_amount, "1e3"),
        (d.parse_amount, "12345678901234567"),
        (d.parse_rate, "1.5"),
        (d.parse_rate, "0.0000001"),
        (d.parse_date, "2027-3-25"),
        (d.parse_date, "2027-03-25+08:00"),
        (d.parse_time, "2027-08-01T15:20:00"),
        (d.parse_time, "2027-08-01 15:20:00+08:00"),
        (d.parse_bool, "yes"),
        (d.parse_days, "-1"),
        (d.parse_base64, "not base64!"),
    ],
)
def test_the_parse_helpers_refuse_what_the_contract_does_not_allow(
    parse: Callable[[str], object], text: str
) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_text_of_and_texts_of_read_single_and_repeated_fields() -> None:
    element = built("CDGI113")
    assert d.text_of(element, "ApplyNo") == "P2026120200005"
    assert d.text_of(element, "Nothing") is None
    assert d.texts_of(element, "Coverage") == ["DUTY", "VAT", "LATE_FEE"]
    assert d.texts_of(element, "Nothing") == []


def test_an_element_whose_fields_are_swapped_is_refused_by_the_schema(
    party: SoftwareSigner, card: SoftwareSigner
) -> None:
    # The order test above is only worth something if the schema cares about order.
    root, element = travelled("CDGI301", party, card)
    rate = element.find(q("Rate"))
    assert rate is not None
    element.remove(rate)
    element.insert(1, rate)
    with pytest.raises(SchemaInvalid):
        schemas.validate(root)
