"""The dialect registry and the ``legacy-gbk`` dialect of CONTRACT §7.

Every message an insurer sends or receives has two golden files in ``tests/golden/legacy-gbk``:
``<TYPE>.canonical.xml``, the canonical envelope (unsigned; the doc-signed ones carry the
enterprise's document signature) as the ``adapter.documents`` builders make it, and
``<TYPE>.legacy.xml``, the GBK bytes ``from_canonical`` + ``serialize`` must give for it, byte for
byte. A missing golden file fails its test with the one-liner that writes it (review it before
committing it); nothing rewrites a golden file behind the tests' back.
"""

from __future__ import annotations

import base64
import re
import sys
import uuid
from copy import deepcopy
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

import mappings
import schemas
from adapter import documents as d
from adapter.domain.identifiers import make_uscc
from adapter.envelope import build_envelope, contract_time, parse, q, serialize
from adapter.errors import FormatError, NotWellFormed, SchemaInvalid, UnknownMessageType
from card import SoftwareSigner, sign_document, sign_envelope, verify_document, verify_envelope
from mappings import legacy_gbk
from mappings.fields import KINDS, Kind
from mappings.legacy_gbk import (
    date_from_legacy,
    date_to_legacy,
    fen_to_yuan,
    time_from_legacy,
    time_to_legacy,
    upper_snake,
    yuan_to_fen,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "legacy-gbk"
DS = "http://www.w3.org/2000/09/xmldsig#"
CHINA = timezone(timedelta(hours=8))
USCC = make_uscc("91210100MA0XXXXX1")
ENTERPRISE = "沈阳辽海进出口贸易有限公司"
QUOTA_NO = "Q2026112400017"
POLICY_NO = "PICC2026LN000123"
CLAIM_NO = "LP2027060100001"
RECORD_NO = "DB0800202612000045"
PDF = b"%PDF-1.7\n% electronic policy PICC2026LN000123\n%%EOF\n"
SEND_TIME = datetime(2026, 11, 24, 10, 15, 0, tzinfo=CHINA)
PAID = datetime(2027, 6, 20, 14, 30, 5, tzinfo=CHINA)
MAPPED = sorted(legacy_gbk.MESSAGE_TYPES)
DOC_SIGNED = [t for t in MAPPED if schemas.CATALOGUE[t].doc_signed]
ONE_LINER = (
    "python -c \"from tests.unit.test_mappings import write_golden; write_golden('{type}')\""
)


# -- the messages ----------------------------------------------------------------------------
def _entries() -> list[d.ClaimEntry]:
    # Late fee = Tax × 0.05% × OverdueDays, half-up to the fen (CONTRACT §6).
    return [
        d.ClaimEntry(
            "080020261000123456", Decimal("12500.00"), date(2027, 3, 1), 92, Decimal("575.00")
        ),
        d.ClaimEntry(
            "080020261000123789", Decimal("5600.30"), date(2027, 4, 10), 52, Decimal("145.61")
        ),
    ]


def _business(message_type: str) -> etree._Element:
    """The business element of a golden message, realistic values, a fixed Id."""
    start, end = date(2026, 12, 1), date(2027, 11, 30)
    builders = {
        "CDGI107": lambda: d.authorization_sign(
            auth_no="AUTH2026112400003",
            uscc=USCC,
            insurer_code="PICC",
            scopes=["CREDIT_QUERY"],
            valid_to=date(2027, 11, 30),
            seal_id="SEAL-2101002026001",
        ),
        "CDGI109": lambda: d.quota_apply(
            quota_no=QUOTA_NO,
            uscc=USCC,
            insurer_code="PICC",
            applied_amount=Decimal("5000000.00"),
            prev_quota_no="Q2025112000009",
            contact=d.Contact("王芳", "024-88886666"),
            term_start=start,
            term_end=end,
        ),
        "CDGI111": lambda: d.quota_increase(
            increase_no="QI2027031500002", quota_no=QUOTA_NO, amount=Decimal("1500000.50")
        ),
        "CDGI113": lambda: d.policy_apply(
            apply_no="TB2026120100005",
            quota_no=QUOTA_NO,
            uscc=USCC,
            insured_amount=Decimal("3000000.00"),
            insured_customs=["0800", "0801"],
            coverage=["DUTY", "VAT", "LATE_FEE"],
            invoice=d.Invoice(
                "SPECIAL",
                ENTERPRISE,
                USCC,
                "辽宁省沈阳市和平区南京北街206号",
                "024-23456789",
                "中国银行沈阳和平支行",
                "3312-5566-7788-9900",
                "finance@liaohai-trade.cn",
            ),
            term_start=start,
            term_end=end,
        ),
        "CDGI301": lambda: d.quota_decision(
            quota_no=QUOTA_NO,
            result="APPROVED",
            approved_amount=Decimal("4800000.00"),
            rate=Decimal("0.0080"),
            valid_from=date(2026, 12, 1),
            valid_to=date(2027, 11, 30),
            reason="核定额度低于申请额度：近一年进口额偏低",
        ),
        "CDGI303": lambda: d.increase_decision(
            increase_no="QI2027031500002",
            quota_no=QUOTA_NO,
            result="REJECTED",
            reason="追加额度超过承保能力，请联系客户经理",
        ),
        "CDGI305": lambda: d.policy_decision(
            apply_no="TB2026120100005",
            result="ISSUED",
            policy_no=POLICY_NO,
            premium=Decimal("24000.00"),
            rate=Decimal("0.0080"),
            e_policy=d.EPolicy.of("电子保单-PICC2026LN000123.pdf", "application/pdf", PDF),
            term_start=start,
            term_end=end,
        ),
        "CDGI307": lambda: d.claim_settlement(
            claim_no=CLAIM_NO,
            policy_no=POLICY_NO,
            result="PAID",
            paid_amount=Decimal("18820.91"),
            paid_time=PAID,
        ),
        "CDGI409": lambda: d.claim_notice(
            claim_no=CLAIM_NO,
            policy_no=POLICY_NO,
            guarantee_record_no=RECORD_NO,
            cause="OVERDUE",
            entries=_entries(),
            total=Decimal("18820.91"),
            notice_date=date(2027, 6, 1),
        ),
        "CDGI503": lambda: d.claim_share(
            claim_no=CLAIM_NO,
            policy_no=POLICY_NO,
            insurer_code="PICC",
            uscc=USCC,
            enterprise_name=ENTERPRISE,
            claimed_amount=Decimal("18820.91"),
            paid_amount=Decimal("18820.91"),
            paid_time=PAID,
        ),
        "CDGI507": lambda: d.credit_share(
            quota_no=QUOTA_NO,
            uscc=USCC,
            rating="GENERAL",
            rated_date=date(2026, 10, 15),
            records=[d.CreditRecord(date(2025, 8, 12), "行政处罚", "申报不实，处罚款人民币贰仟元")],
        ),
        "CDGI900": lambda: d.receipt(
            ori_message_id=_message_id("CDGI301"),
            ori_message_type="CDGI301",
            return_status=1,
            return_code="0000",
            return_info="已接收并处理：额度核定结果已通知企业",
            return_time=SEND_TIME + timedelta(seconds=1),
        ),
    }
    element = builders[message_type]()
    element.set("Id", f"{'R' if message_type == 'CDGI900' else 'D'}GOLDEN{message_type[4:]}")
    return element


def _message_id(message_type: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cdgi-golden-{message_type}")).upper()


def _route(message_type: str) -> tuple[str, str]:
    if message_type in ("CDGI301", "CDGI303", "CDGI305", "CDGI307"):
        return "INS.PICC", "DC"
    if message_type == "CDGI503":
        return "DC", "INS.CPIC"  # a claim share goes to the other insurers
    return "DC", "INS.PICC"


def canonical_envelope(
    message_type: str, *, signer: SoftwareSigner | None = None
) -> etree._Element:
    """A golden message as the builders make it; doc-signed ones signed when a signer is given."""
    business = _business(message_type)
    if signer is not None:
        business = sign_document(business, signer)
    sender, receiver = _route(message_type)
    return build_envelope(
        message_type=message_type,
        sender_id=sender,
        receiver_id=receiver,
        business=business,
        send_time=contract_time(SEND_TIME),
        message_id=_message_id(message_type),
        correlation_id=_message_id("CDGI301") if message_type == "CDGI900" else None,
    )


def _path(message_type: str, form: str) -> Path:
    return GOLDEN / f"{message_type}.{form}.xml"


def write_golden(message_type: str) -> None:
    """Write the golden files of ``message_type`` that are missing (never overwrites one)."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    canonical = _path(message_type, "canonical")
    if not canonical.exists():
        signer = None
        if schemas.CATALOGUE[message_type].doc_signed:
            signer = SoftwareSigner.generate(f"{ENTERPRISE} 操作员卡", key_name="OP-0001")
        canonical.write_bytes(serialize(canonical_envelope(message_type, signer=signer)))
        print(f"wrote {canonical}", file=sys.stderr)
    legacy = _path(message_type, "legacy")
    if not legacy.exists():
        root = etree.fromstring(canonical.read_bytes())
        legacy.write_bytes(legacy_gbk.serialize(legacy_gbk.from_canonical(root)))
        print(f"wrote {legacy}", file=sys.stderr)


def golden(message_type: str, form: str) -> bytes:
    """The committed golden file, or a failure that says how to create it."""
    path = _path(message_type, form)
    if not path.exists():
        pytest.fail(
            f"golden file {path} is missing; from the project root, create it with\n"
            f"    {ONE_LINER.format(type=message_type)}\n"
            "then read it through before committing it",
            pytrace=False,
        )
    return path.read_bytes()


def _c14n(root: etree._Element) -> bytes:
    return etree.tostring(root, method="c14n", exclusive=True)


def _legacy(message_type: str) -> etree._Element:
    return etree.fromstring(golden(message_type, "legacy"))


def _canonical(message_type: str) -> etree._Element:
    return etree.fromstring(golden(message_type, "canonical"))


def _business_of(root: etree._Element) -> etree._Element:
    return next(iter(root.find(q("Body"))))


def _enterprise_certificate(business: etree._Element) -> x509.Certificate:
    text = business.findtext(
        f"{{{DS}}}Signature/{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"
    )
    assert text
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


def _verify_enterprise_signature(business: etree._Element, certificate: x509.Certificate) -> None:
    # At a moment inside the test certificate's validity, so the golden file never expires.
    verify_document(
        business, [certificate], at=certificate.not_valid_before_utc + timedelta(minutes=5)
    )


def _validate(canonical: etree._Element) -> None:
    """The XSD, with a stand-in envelope signature where the pipeline appends the real one."""
    probe = deepcopy(canonical)
    probe.append(etree.Element(f"{{{DS}}}Signature"))
    schemas.validate(probe)


# -- the registry ----------------------------------------------------------------------------
def test_the_registry_knows_canonical_and_legacy_gbk() -> None:
    assert mappings.names() == ["canonical", "legacy-gbk"]
    assert mappings.get("canonical") is mappings.CANONICAL
    assert mappings.get("legacy-gbk") is mappings.LEGACY_GBK
    assert mappings.LEGACY_GBK.encodings == ("GBK",)
    assert mappings.CANONICAL.encodings == ("UTF-8",)


def test_an_unknown_dialect_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown dialect 'edifact'; known: canonical, legacy-gbk"):
        mappings.get("edifact")


def test_the_canonical_dialect_returns_the_tree_unchanged_and_serializes_utf8() -> None:
    root = canonical_envelope("CDGI301")
    assert mappings.CANONICAL.to_canonical(root) is root
    assert mappings.CANONICAL.from_canonical(root) is root
    assert mappings.CANONICAL.serialize(root) == serialize(root)


def test_every_mapping_error_is_a_format_error_with_its_receipt_code() -> None:
    assert issubclass(mappings.MappingError, FormatError)
    assert issubclass(mappings.NotExpressible, NotWellFormed)
    assert issubclass(mappings.MappingNotWellFormed, NotWellFormed)
    assert issubclass(mappings.MappingInvalid, SchemaInvalid)
    assert issubclass(mappings.NotInDialect, UnknownMessageType)
    assert [
        error("x").code
        for error in (
            mappings.NotExpressible,
            mappings.MappingNotWellFormed,
            mappings.MappingInvalid,
            mappings.NotInDialect,
        )
    ] == ["0001", "0001", "0002", "0003"]


# -- names and the field table ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("canonical", "legacy"),
    [
        ("MessageId", "MESSAGE_ID"),
        ("QuotaNo", "QUOTA_NO"),
        ("ApprovedAmount", "APPROVED_AMOUNT"),
        ("EPolicy", "E_POLICY"),
        ("EPolicySha256", "E_POLICY_SHA256"),
        ("Sha256", "SHA256"),
        ("USCC", "USCC"),
        ("OriMessageId", "ORI_MESSAGE_ID"),
        ("TaxpayerId", "TAXPAYER_ID"),
        ("Head", "HEAD"),
    ],
)
def test_a_canonical_name_becomes_its_upper_snake_case(canonical: str, legacy: str) -> None:
    assert upper_snake(canonical) == legacy
    assert legacy_gbk.LEGACY_NAMES[canonical] == legacy
    assert legacy_gbk.CANONICAL_NAMES[legacy] == canonical


def test_the_envelope_is_cdgi_msg_and_the_way_back_is_the_exact_inverse() -> None:
    assert legacy_gbk.LEGACY_NAMES["Envelope"] == "CDGI_MSG"
    assert set(legacy_gbk.LEGACY_NAMES) == set(KINDS)
    assert {v: k for k, v in legacy_gbk.LEGACY_NAMES.items()} == dict(legacy_gbk.CANONICAL_NAMES)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", n) for n in legacy_gbk.CANONICAL_NAMES)
    assert legacy_gbk.SIGNED_DOCUMENT not in legacy_gbk.CANONICAL_NAMES


def _xsd_kinds() -> dict[str, Kind]:
    xs = "{http://www.w3.org/2001/XMLSchema}"
    documents = [etree.parse(str(path)) for path in schemas.xsd_files()]
    complex_types = {
        f"cdgi:{node.get('name')}"
        for doc in documents
        for node in doc.iter(f"{xs}complexType")
        if node.get("name")
    }
    simple = {
        "cdgi:AmountType": Kind.AMOUNT,
        "cdgi:DateType": Kind.DATE,
        "cdgi:DateTimeType": Kind.TIME,
    }
    kinds: dict[str, Kind] = {}
    for doc in documents:
        for node in doc.iter(f"{xs}element"):
            name, type_ = node.get("name"), node.get("type")
            if name is None:
                continue
            if type_ is None or type_ in complex_types:
                kinds[name] = Kind.GROUP
            else:
                kinds[name] = simple.get(type_, Kind.TEXT)
    return kinds


def test_the_field_table_says_what_the_xsd_says_for_every_element_of_the_contract() -> None:
    assert dict(KINDS) == _xsd_kinds()


# -- golden files ----------------------------------------------------------------------------
@pytest.mark.parametrize("message_type", MAPPED)
def test_the_canonical_golden_file_is_what_the_builders_make(message_type: str) -> None:
    built = canonical_envelope(message_type)
    root = _canonical(message_type)
    if message_type in DOC_SIGNED:
        business = _business_of(root)
        _verify_enterprise_signature(business, _enterprise_certificate(business))
        unsigned = deepcopy(root)
        signed = _business_of(unsigned)
        signed.remove(signed[-1])
        assert _c14n(unsigned) == _c14n(built)
    else:
        assert golden(message_type, "canonical") == serialize(built)
    _validate(root)


@pytest.mark.parametrize("message_type", MAPPED)
def test_from_canonical_gives_the_legacy_golden_file_byte_for_byte(message_type: str) -> None:
    legacy = mappings.LEGACY_GBK.from_canonical(_canonical(message_type))
    assert mappings.LEGACY_GBK.serialize(legacy) == golden(message_type, "legacy")


@pytest.mark.parametrize("message_type", MAPPED)
def test_the_legacy_bytes_are_gbk_and_declare_it(message_type: str) -> None:
    data = golden(message_type, "legacy")

    assert data.startswith(b"<?xml version='1.0' encoding='GBK'?>\n<CDGI_MSG")
    text = data.decode("gbk")
    assert text.encode("gbk") == data
    if any(ord(char) > 0x7F for char in text):  # Chinese names, reasons, addresses ...
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    # The pipeline's hardened parser takes it from a legacy-gbk partner, and only from one.
    root = parse(data, max_bytes=4 << 20, max_depth=64, encodings=mappings.LEGACY_GBK.encodings)
    assert root.getroottree().docinfo.encoding == "GBK"
    with pytest.raises(NotWellFormed, match="encoding GBK is not accepted"):
        parse(data, max_bytes=4 << 20, max_depth=64, encodings=mappings.CANONICAL.encodings)


@pytest.mark.parametrize("message_type", MAPPED)
def test_to_canonical_reads_the_legacy_golden_file_back_to_the_canonical_one(
    message_type: str,
) -> None:
    canonical = mappings.LEGACY_GBK.to_canonical(_legacy(message_type))

    assert _c14n(canonical) == _c14n(_canonical(message_type))
    _validate(canonical)


@pytest.mark.parametrize("message_type", MAPPED)
def test_canonical_to_legacy_to_canonical_is_the_identity(message_type: str) -> None:
    original = _canonical(message_type)
    before = _c14n(original)

    legacy = legacy_gbk.from_canonical(original)
    back = legacy_gbk.to_canonical(etree.fromstring(legacy_gbk.serialize(legacy)))

    assert _c14n(back) == before
    assert _c14n(original) == before  # the input is left as it was


@pytest.mark.parametrize("message_type", DOC_SIGNED)
def test_a_forwarded_document_carries_the_enterprise_signature_through_the_dialect(
    message_type: str,
) -> None:
    original = _business_of(_canonical(message_type))
    legacy = _legacy(message_type)
    carried = legacy.find(f"BODY/*/{legacy_gbk.SIGNED_DOCUMENT}")
    assert carried is not None and carried.getparent()[-1] is carried
    assert base64.b64decode(carried.text or "") == etree.tostring(original, with_tail=False)
    # The insurer can check the enterprise's own signature on what it decodes ...
    decoded = etree.fromstring(base64.b64decode(carried.text or ""))
    _verify_enterprise_signature(decoded, _enterprise_certificate(original))
    # ... and the adapter gets the very document back, still verifiable.
    restored = _business_of(legacy_gbk.to_canonical(legacy))
    _verify_enterprise_signature(restored, _enterprise_certificate(original))


def test_a_message_survives_the_envelope_signature_the_pipeline_puts_on_the_legacy_bytes() -> None:
    insurer = SoftwareSigner.generate("INS.PICC", key_name="PICC-01")
    canonical = _canonical("CDGI301")

    data = legacy_gbk.serialize(sign_envelope(legacy_gbk.from_canonical(canonical), insurer))
    root = parse(data, max_bytes=4 << 20, max_depth=64, encodings=("GBK",))
    verified = verify_envelope(root, [insurer.certificate])

    assert _c14n(legacy_gbk.to_canonical(verified.signed)) == _c14n(canonical)


def test_an_insurers_own_receipt_in_gbk_becomes_a_valid_canonical_receipt() -> None:
    data = """<?xml version="1.0" encoding="GBK"?>
<CDGI_MSG>
  <HEAD>
    <MESSAGE_ID>0B7E1C7A-55F1-4C1D-9A51-3E0C2D4F6A10</MESSAGE_ID>
    <MESSAGE_TYPE>CDGI900</MESSAGE_TYPE>
    <SENDER_ID>INS.PICC</SENDER_ID>
    <RECEIVER_ID>DC</RECEIVER_ID>
    <SEND_TIME>20261124101600</SEND_TIME>
    <CORRELATION_ID>6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1</CORRELATION_ID>
  </HEAD>
  <BODY>
    <RECEIPT Id="RPICC0001">
      <ORI_MESSAGE_ID>6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1</ORI_MESSAGE_ID>
      <ORI_MESSAGE_TYPE>CDGI109</ORI_MESSAGE_TYPE>
      <RETURN_STATUS>-1</RETURN_STATUS>
      <RETURN_CODE>2101</RETURN_CODE>
      <RETURN_INFO>投保企业不在承保范围内</RETURN_INFO>
      <RETURN_TIME>20261124101559</RETURN_TIME>
    </RECEIPT>
  </BODY>
</CDGI_MSG>
""".encode("gbk")
    root = parse(data, max_bytes=4 << 20, max_depth=64, encodings=("GBK",))

    canonical = legacy_gbk.to_canonical(root)

    _validate(canonical)
    receipt = _business_of(canonical)
    assert receipt.get("Id") == "RPICC0001"
    assert receipt.findtext(q("ReturnInfo")) == "投保企业不在承保范围内"
    assert receipt.findtext(q("ReturnTime")) == "2026-11-24T10:15:59.000+08:00"
    assert canonical.findtext(f"{q('Head')}/{q('SendTime')}") == "2026-11-24T10:16:00.000+08:00"


# -- values: amounts, dates, times -----------------------------------------------------------
@pytest.mark.parametrize(
    ("yuan", "fen", "back"),
    [
        ("5000000.00", "500000000", "5000000.00"),
        ("0.01", "1", "0.01"),
        ("0", "0", "0.00"),
        ("5000000.5", "500000050", "5000000.50"),
        ("1.000", "100", "1.00"),
        ("9999999999999999.99", "999999999999999999", "9999999999999999.99"),
    ],
)
def test_an_amount_is_whole_fen_in_the_dialect(yuan: str, fen: str, back: str) -> None:
    assert yuan_to_fen(yuan) == fen
    assert fen_to_yuan(fen) == back


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.decimals(
        min_value=Decimal(0),
        max_value=Decimal("9999999999999999.99"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_yuan_to_fen_and_back_is_exact_up_to_sixteen_integer_digits(amount: Decimal) -> None:
    fen = yuan_to_fen(format(amount, "f"))

    assert re.fullmatch(r"0|[1-9][0-9]{0,17}", fen)
    assert Decimal(fen) == amount.scaleb(2)
    assert fen_to_yuan(fen) == format(amount.quantize(Decimal("0.01")), "f")


@settings(max_examples=500, deadline=None, database=None)
@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_fen_to_yuan_and_back_is_exact_for_every_fen_count(fen: int) -> None:
    yuan = fen_to_yuan(str(fen))

    assert re.fullmatch(r"[0-9]{1,16}\.[0-9]{2}", yuan)
    assert Decimal(yuan).scaleb(2) == fen
    assert yuan_to_fen(yuan) == str(fen)


@settings(max_examples=300, deadline=None, database=None)
@given(st.dates())
def test_a_date_is_yyyymmdd_both_ways(day: date) -> None:
    legacy = date_to_legacy(day.isoformat())

    assert legacy == f"{day.year:04d}{day:%m%d}"
    assert date_from_legacy(legacy) == day.isoformat()


_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_OFFSETS)
)
def test_a_time_with_any_offset_is_china_time_in_whole_seconds(moment: datetime) -> None:
    legacy = time_to_legacy(moment.isoformat())
    back = time_from_legacy(legacy)

    china = moment.astimezone(CHINA)
    assert legacy == f"{china.year:04d}{china:%m%d%H%M%S}"
    assert back.endswith(".000+08:00")
    # The dialect's precision is the second: the fraction is dropped, never rounded up.
    assert datetime.fromisoformat(back) == moment.replace(microsecond=0)


@pytest.mark.parametrize(
    ("canonical", "legacy"),
    [
        ("2026-11-24T10:15:00+08:00", "20261124101500"),
        ("2026-11-24T02:15:00Z", "20261124101500"),
        ("2026-11-23T21:15:00-05:00", "20261124101500"),
        ("2026-12-31T23:59:59.999+08:00", "20261231235959"),
        ("2026-12-31T16:00:00.000Z", "20270101000000"),
    ],
)
def test_times_become_china_time(canonical: str, legacy: str) -> None:
    assert time_to_legacy(canonical) == legacy


def test_the_adapters_milliseconds_are_dropped_as_the_dialect_has_whole_seconds() -> None:
    receipt = d.receipt(
        ori_message_id=_message_id("CDGI301"),
        ori_message_type="CDGI301",
        return_status=1,
        return_code="0000",
        return_info="accepted",
        return_time=datetime(2026, 11, 24, 10, 15, 1, 204000, tzinfo=CHINA),
    )
    root = build_envelope(
        message_type="CDGI900",
        sender_id="DC",
        receiver_id="INS.PICC",
        business=receipt,
        send_time="2026-11-24T10:15:01.204+08:00",
    )

    legacy = legacy_gbk.from_canonical(root)
    back = legacy_gbk.to_canonical(legacy)

    assert legacy.findtext("BODY/RECEIPT/RETURN_TIME") == "20261124101501"
    assert _business_of(back).findtext(q("ReturnTime")) == "2026-11-24T10:15:01.000+08:00"
    assert back.findtext(f"{q('Head')}/{q('SendTime')}") == "2026-11-24T10:15:01.000+08:00"


def test_rates_and_other_text_travel_unchanged() -> None:
    legacy = _legacy("CDGI301")
    decision = legacy.find("BODY/QUOTA_DECISION")
    assert decision is not None
    assert decision.findtext("RATE") == "0.0080"
    assert decision.findtext("APPROVED_AMOUNT") == "480000000"
    assert decision.findtext("VALID_FROM") == "20261201"
    assert decision.findtext("REASON") == "核定额度低于申请额度：近一年进口额偏低"
    assert decision.get("Id") == "DGOLDEN301"


# -- refusals --------------------------------------------------------------------------------
def test_a_character_gbk_cannot_encode_is_refused_with_0001_naming_it_and_its_field() -> None:
    root = _canonical("CDGI503")
    _business_of(root).find(q("EnterpriseName")).text = "沈阳𠀀进出口有限公司"

    with pytest.raises(mappings.NotExpressible) as caught:
        legacy_gbk.from_canonical(root)
    assert caught.value.code == "0001"
    assert "cannot be expressed in GBK: '𠀀' (U+20000) in EnterpriseName" in caught.value.message


def test_serialize_refuses_rather_than_escape_a_character_gbk_lacks() -> None:
    legacy = _legacy("CDGI301")
    legacy.find("BODY/QUOTA_DECISION/REASON").text = "emoji 🙂"

    with pytest.raises(mappings.NotExpressible, match="U[+]1F642"):
        legacy_gbk.serialize(legacy)


@pytest.mark.parametrize(
    ("yuan", "why"),
    [
        ("1.005", "not a whole number of fen"),
        ("0.001", "not a whole number of fen"),
        ("-1.00", "negative"),
        ("12345678901234567.00", "more than 16 integer digits"),
        ("1e3", "not an amount"),
        ("", "not an amount"),
        ("十元", "not an amount"),
    ],
)
def test_an_amount_the_dialect_cannot_carry_exactly_is_refused_with_0002(
    yuan: str, why: str
) -> None:
    root = _canonical("CDGI307")
    _business_of(root).find(q("PaidAmount")).text = yuan

    with pytest.raises(mappings.MappingInvalid, match=why) as caught:
        legacy_gbk.from_canonical(root)
    assert caught.value.code == "0002"


@pytest.mark.parametrize(
    ("fen", "why"),
    [
        ("12.5", "not a whole number of fen"),
        ("-100", "not a whole number of fen"),
        ("1e3", "not a whole number of fen"),
        ("", "PAID_AMOUNT is empty"),
        ("１２", "not a whole number of fen"),
        ("1000000000000000000", "more than 16 integer digits"),
    ],
)
def test_fen_that_is_not_a_whole_number_is_refused_with_0002(fen: str, why: str) -> None:
    legacy = _legacy("CDGI307")
    legacy.find("BODY/CLAIM_SETTLEMENT/PAID_AMOUNT").text = fen or None

    with pytest.raises(mappings.MappingInvalid, match=why) as caught:
        legacy_gbk.to_canonical(legacy)
    assert caught.value.code == "0002"


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("BODY/QUOTA_DECISION/VALID_TO", "20260230", "'20260230' is not a day of the calendar"),
        ("BODY/QUOTA_DECISION/VALID_TO", "2026-12-01", "not a date .YYYYMMDD."),
        ("BODY/QUOTA_DECISION/VALID_TO", "20261301", "not a day of the calendar"),
        ("HEAD/SEND_TIME", "20261124246000", "not a time of the calendar"),
        ("HEAD/SEND_TIME", "20260230101500", "not a time of the calendar"),
        ("HEAD/SEND_TIME", "20261124101560", "not a time of the calendar"),
        ("HEAD/SEND_TIME", "2026112410150", "not a time .YYYYMMDDhhmmss."),
    ],
)
def test_a_date_or_time_that_does_not_exist_is_refused_with_0002(
    field: str, value: str, why: str
) -> None:
    legacy = _legacy("CDGI301")
    legacy.find(field).text = value

    with pytest.raises(mappings.MappingInvalid, match=why):
        legacy_gbk.to_canonical(legacy)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-24T24:00:00+08:00",
        "2026-02-30T10:00:00+08:00",
        "2026-11-24T10:00:00+15:00",
        "2026-11-24T10:00:00",
        "0001-01-01T00:00:00+14:00",
    ],
)
def test_a_canonical_time_that_does_not_exist_is_refused_with_0002(value: str) -> None:
    with pytest.raises(mappings.MappingInvalid):
        time_to_legacy(value)


def test_an_unknown_legacy_element_is_refused_with_0002() -> None:
    legacy = _legacy("CDGI305")
    etree.SubElement(legacy.find("BODY/POLICY_DECISION"), "DISCOUNT").text = "5"

    with pytest.raises(
        mappings.MappingInvalid, match="unknown element DISCOUNT in POLICY_DECISION"
    ):
        legacy_gbk.to_canonical(legacy)


def test_an_element_outside_the_contract_is_refused_with_0002() -> None:
    root = _canonical("CDGI305")
    etree.SubElement(_business_of(root), "{urn:other}Discount").text = "5"

    with pytest.raises(mappings.MappingInvalid, match="not an element of the contract"):
        legacy_gbk.from_canonical(root)


@pytest.mark.parametrize("missing", ["HEAD", "BODY"])
def test_a_legacy_message_without_head_or_body_is_refused_with_0002(missing: str) -> None:
    legacy = _legacy("CDGI301")
    legacy.remove(legacy.find(missing))

    with pytest.raises(mappings.MappingInvalid, match=f"CDGI_MSG has no {missing}") as caught:
        legacy_gbk.to_canonical(legacy)
    assert caught.value.code == "0002"


@pytest.mark.parametrize(
    ("xml", "why"),
    [
        ("<MSG><HEAD/><BODY/></MSG>", "the root is MSG, not CDGI_MSG"),
        ('<CDGI_MSG version="2.0"/>', "version '2.0' is not 1.0"),
        ('<CDGI_MSG lang="zh"/>', "attribute 'lang'"),
        ("<CDGI_MSG>free text<HEAD/><BODY/></CDGI_MSG>", "holds text"),
        ("<CDGI_MSG><BODY/><HEAD/></CDGI_MSG>", "its head then its body"),
        ("<CDGI_MSG><HEAD/><BODY/></CDGI_MSG>", "the head has no MESSAGE_TYPE"),
    ],
)
def test_a_malformed_legacy_envelope_is_refused_with_0002(xml: str, why: str) -> None:
    with pytest.raises(mappings.MappingInvalid, match=why):
        legacy_gbk.to_canonical(etree.fromstring(xml))


def test_a_legacy_field_with_an_attribute_or_elements_inside_is_refused() -> None:
    legacy = _legacy("CDGI301")
    legacy.find("BODY/QUOTA_DECISION/QUOTA_NO").set("TYPE", "X")
    with pytest.raises(mappings.MappingInvalid, match="QUOTA_NO has an attribute 'TYPE'"):
        legacy_gbk.to_canonical(legacy)

    legacy = _legacy("CDGI301")
    etree.SubElement(legacy.find("BODY/QUOTA_DECISION/QUOTA_NO"), "PART")
    with pytest.raises(mappings.MappingInvalid, match="QUOTA_NO holds PART"):
        legacy_gbk.to_canonical(legacy)


def test_the_business_element_must_be_the_one_its_type_carries() -> None:
    legacy = _legacy("CDGI301")
    legacy.find("HEAD/MESSAGE_TYPE").text = "CDGI303"

    with pytest.raises(
        mappings.MappingInvalid, match="carries a INCREASE_DECISION, not QUOTA_DECISION"
    ):
        legacy_gbk.to_canonical(legacy)


@pytest.mark.parametrize("message_type", ["CDGI101", "CDGI105", "CDGI201", "CDGI501", "CDGI505"])
def test_a_type_no_insurer_sends_or_receives_is_refused_with_0003_both_ways(
    message_type: str,
) -> None:
    legacy = _legacy("CDGI301")
    legacy.find("HEAD/MESSAGE_TYPE").text = message_type
    with pytest.raises(
        mappings.NotInDialect, match=f"{message_type} is not carried by legacy-gbk"
    ) as caught:
        legacy_gbk.to_canonical(legacy)
    assert caught.value.code == "0003"

    root = _canonical("CDGI301")
    root.find(f"{q('Head')}/{q('MessageType')}").text = message_type
    with pytest.raises(mappings.NotInDialect):
        legacy_gbk.from_canonical(root)


def test_from_canonical_refuses_an_envelope_already_signed() -> None:
    root = sign_envelope(_canonical("CDGI301"), SoftwareSigner.generate("DC"))

    with pytest.raises(mappings.MappingInvalid, match="map the unsigned envelope"):
        legacy_gbk.from_canonical(root)


def test_from_canonical_refuses_a_tree_that_is_not_an_envelope() -> None:
    with pytest.raises(mappings.MappingInvalid, match="not a canonical envelope"):
        legacy_gbk.from_canonical(_business_of(_canonical("CDGI301")))


def test_a_document_signature_on_a_type_that_is_not_doc_signed_is_refused() -> None:
    root = _canonical("CDGI301")
    business = _business_of(root)
    business.getparent().replace(business, sign_document(business, SoftwareSigner.generate("x")))

    with pytest.raises(
        mappings.MappingInvalid, match="QuotaDecision carries no document signature"
    ):
        legacy_gbk.from_canonical(root)


def test_signed_document_is_refused_where_no_document_is_signed() -> None:
    legacy = _legacy("CDGI301")
    carried = _legacy("CDGI109").find("BODY/QUOTA_APPLY/SIGNED_DOCUMENT")
    legacy.find("BODY/QUOTA_DECISION").append(carried)

    with pytest.raises(mappings.MappingInvalid, match="QUOTA_DECISION carries no SIGNED_DOCUMENT"):
        legacy_gbk.to_canonical(legacy)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("APPLIED_AMOUNT", "600000000", "APPLIED_AMOUNT"),
        ("TERM_END", "20271231", "TERM_END"),
        ("CONTACT/NAME", "李雷", "NAME"),
    ],
)
def test_fields_that_disagree_with_the_signed_document_are_refused_with_0002(
    field: str, value: str, where: str
) -> None:
    legacy = _legacy("CDGI109")
    legacy.find(f"BODY/QUOTA_APPLY/{field}").text = value

    with pytest.raises(mappings.MappingInvalid, match=f"disagree with SIGNED_DOCUMENT at {where}"):
        legacy_gbk.to_canonical(legacy)


def test_a_signed_document_with_another_id_is_refused() -> None:
    legacy = _legacy("CDGI109")
    legacy.find("BODY/QUOTA_APPLY").set("Id", "DOTHER")

    with pytest.raises(
        mappings.MappingInvalid, match="disagree with SIGNED_DOCUMENT at QUOTA_APPLY"
    ):
        legacy_gbk.to_canonical(legacy)


def test_the_same_values_spelled_otherwise_agree_with_the_signed_document() -> None:
    legacy = _legacy("CDGI109")
    legacy.find("BODY/QUOTA_APPLY/APPLIED_AMOUNT").text = " 0500000000 "

    canonical = legacy_gbk.to_canonical(legacy)

    assert _c14n(canonical) == _c14n(_canonical("CDGI109"))


def _with_signed_document(content: bytes | str) -> etree._Element:
    legacy = _legacy("CDGI109")
    carried = legacy.find("BODY/QUOTA_APPLY/SIGNED_DOCUMENT")
    carried.text = content if isinstance(content, str) else base64.b64encode(content).decode()
    return legacy


def test_a_signed_document_that_is_not_base64_is_refused_with_0002() -> None:
    with pytest.raises(mappings.MappingInvalid, match="SIGNED_DOCUMENT is not base64"):
        legacy_gbk.to_canonical(_with_signed_document("not base64!"))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"<cdgi:QuotaApply xmlns:cdgi='urn:cdgi:1'>", "not well-formed"),
        (b"<!DOCTYPE x [<!ENTITY e 'x'>]><cdgi:QuotaApply xmlns:cdgi='urn:cdgi:1'/>", "DTD"),
        (b"<?pi x?><cdgi:QuotaApply xmlns:cdgi='urn:cdgi:1'/>", "processing instruction"),
    ],
)
def test_a_signed_document_that_is_not_harmless_xml_is_refused_with_0001(
    content: bytes, why: str
) -> None:
    with pytest.raises(mappings.MappingNotWellFormed, match=why) as caught:
        legacy_gbk.to_canonical(_with_signed_document(content))
    assert caught.value.code == "0001"


def test_a_signed_document_that_is_not_the_signed_business_element_is_refused() -> None:
    other = etree.tostring(_business_of(_canonical("CDGI107")))
    with pytest.raises(mappings.MappingInvalid, match="holds AuthorizationSign, not a QuotaApply"):
        legacy_gbk.to_canonical(_with_signed_document(other))

    unsigned = _business_of(_canonical("CDGI109"))
    unsigned.remove(unsigned[-1])
    with pytest.raises(
        mappings.MappingInvalid, match="QuotaApply in SIGNED_DOCUMENT is not signed"
    ):
        legacy_gbk.to_canonical(_with_signed_document(etree.tostring(unsigned)))


def test_no_time_zone_ambiguity_a_utc_time_is_written_in_china_time() -> None:
    root = _canonical("CDGI307")
    _business_of(root).find(q("PaidTime")).text = "2027-06-20T06:30:05Z"

    legacy = legacy_gbk.from_canonical(root)

    assert legacy.findtext("BODY/CLAIM_SETTLEMENT/PAID_TIME") == "20270620143005"
    assert datetime(2027, 6, 20, 6, 30, 5, tzinfo=UTC) == PAID
