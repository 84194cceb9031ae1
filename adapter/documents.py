"""The business elements of CONTRACT §5, built from typed values and read back into them.

One builder per element (``quota_apply``, ``claim_notice`` ...), each returning a fresh
``cdgi:<Element>`` with a new ``@Id`` and its children in exactly the order of the XSD in
``schemas/``: optional fields given as None are left out, repeated fields become sibling
elements of the singular name. Groups (``Contact``, ``Invoice``, ``EPolicy``, ``Seal``,
``TaxItem``, ``Entry``, ``Record``, ``Claim``) are small frozen dataclasses that build their
own element and read themselves back with ``from_element``.

Values are typed so that the wire form is never a guess: amounts and rates are ``Decimal``
(a float is refused outright, a sub-fen amount is refused rather than rounded), dates are
``date``, times are timezone-aware ``datetime`` written in China time, flags are ``bool``,
binary content is ``bytes`` written as base64. The ``parse_*`` helpers turn the text of a
received element back into those types.

Doc-signed elements (OperatorGrant, AgreementSign, AuthorizationSign, QuotaApply,
QuotaIncrease, PolicyApply, ClaimInfoQuery) are built without their ``ds:Signature``: sign
them with ``card.sign_document(element, signer)``, which returns a signed copy with the
signature as last child, exactly where the XSD's signature slot expects it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, Self, TypeVar

from lxml import etree

from adapter.envelope import build_receipt, contract_time, element, leaf, new_element_id, q

__all__ = [
    "ClaimEntry",
    "ClaimSummary",
    "Contact",
    "CreditRecord",
    "EPolicy",
    "Invoice",
    "Seal",
    "TaxItem",
    "agreement_result",
    "agreement_sign",
    "authorization_sign",
    "card_binding",
    "claim_info_query",
    "claim_info_result",
    "claim_notice",
    "claim_settlement",
    "claim_share",
    "credit_info",
    "credit_share",
    "guarantee_deduct",
    "guarantee_restore",
    "increase_decision",
    "operator_grant",
    "parse_amount",
    "parse_base64",
    "parse_bool",
    "parse_date",
    "parse_days",
    "parse_rate",
    "parse_time",
    "policy_apply",
    "policy_decision",
    "policy_record",
    "policy_record_result",
    "quota_apply",
    "quota_decision",
    "quota_increase",
    "receipt",
    "status_notice",
    "text_of",
    "texts_of",
]

T = TypeVar("T")
_Date = date  # CreditRecord has a field named ``date``; this keeps the type nameable there.

FEN = Decimal("0.01")
# AmountType: at most 16 integer digits; RateType: at most 6 fraction digits, 0..1.
_AMOUNT_LIMIT = Decimal(10) ** 16
_RATE_FRACTION_DIGITS = 6
_AMOUNT_TEXT = re.compile(r"[0-9]{1,16}(\.[0-9]{1,2})?")
_RATE_TEXT = re.compile(r"[01](\.[0-9]{1,6})?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+\-][0-9]{2}:[0-9]{2})"
)
_DAYS_TEXT = re.compile(r"[0-9]{1,5}")


# -- values to text --------------------------------------------------------------------------
def _amount(value: Decimal | None) -> str | None:
    """An amount in yuan with exactly two fraction digits, or a refusal: never a rounding."""
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError(f"an amount must be a Decimal, never a float ({value!r})")
    if not isinstance(value, Decimal):
        # An int is refused too: the legacy dialect counts integer fen, and a stray fen count
        # taken for yuan would be off by a factor of 100 without anyone noticing.
        raise TypeError(f"an amount must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"an amount must be a finite, non-negative number of yuan, not {value}")
    if value >= _AMOUNT_LIMIT:
        raise ValueError(f"an amount has at most 16 integer digits, not {value}")
    fen = value.quantize(FEN)
    if fen != value:
        raise ValueError(f"{value} is not a whole number of fen; round it before sending")
    return format(fen.copy_abs(), "f")  # copy_abs: -0 would print as "-0.00"


def _rate(value: Decimal | None) -> str | None:
    """A rate as given (0.0080 stays 0.0080), trimmed only of zeros beyond 6 fraction digits."""
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError(f"a rate must be a Decimal, never a float ({value!r})")
    if not isinstance(value, Decimal):
        raise TypeError(f"a rate must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError(f"a rate is a fraction between 0 and 1, not {value}")
    if _fraction_digits(value) > _RATE_FRACTION_DIGITS:
        value = value.normalize()  # only trailing zeros go: the value is unchanged
        if _fraction_digits(value) > _RATE_FRACTION_DIGITS:
            raise ValueError(
                f"a rate has at most {_RATE_FRACTION_DIGITS} fraction digits, not {value}"
            )
    return format(value.copy_abs(), "f")


def _fraction_digits(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _day(value: date | None) -> str | None:
    if value is None:
        return None
    # A datetime is a date too; taking one here would silently drop its time and offset.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"expected a date, not {type(value).__name__}")
    return value.isoformat()


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        # A naive time would be read as the machine's local time: ambiguous on the wire.
        raise ValueError(f"a time must carry its timezone, not {value.isoformat()}")
    return contract_time(value)


def _flag(value: bool | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise TypeError(f"expected a bool, not {type(value).__name__}")
    return "true" if value else "false"


def _days(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a number of days is an int, not {type(value).__name__}")
    if not 0 <= value <= 99999:
        raise ValueError(f"a number of days is between 0 and 99999, not {value}")
    return str(value)


def _base64(value: bytes | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"expected bytes, not {type(value).__name__}")
    if not value:
        raise ValueError("binary content must not be empty")
    return base64.b64encode(value).decode("ascii")


def _some(what: str, values: Sequence[T]) -> list[T]:
    """A 1..n field's values; an empty list is a mistake worth naming before the schema does."""
    if isinstance(values, str):
        # A plain string would otherwise repeat the field once per character.
        raise TypeError(f"{what} is a list, not a single string")
    items = list(values)
    if not items:
        raise ValueError(f"{what} needs at least one value")
    return items


# -- text to values --------------------------------------------------------------------------
def text_of(element: etree._Element, name: str) -> str | None:
    """The stripped text of child ``name`` of ``element``, or None where it is absent."""
    node = element.find(q(name))
    if node is None or node.text is None:
        return None
    return node.text.strip()


def texts_of(element: etree._Element, name: str) -> list[str]:
    """The stripped texts of every child ``name``, in document order (repeated fields)."""
    return [(node.text or "").strip() for node in element.findall(q(name))]


def parse_amount(text: str) -> Decimal:
    """An ``AmountType`` text as a Decimal with two fraction digits."""
    text = text.strip()
    if not _AMOUNT_TEXT.fullmatch(text):
        raise ValueError(f"not an amount in yuan: {text!r}")
    return Decimal(text).quantize(FEN)


def parse_rate(text: str) -> Decimal:
    """A ``RateType`` text as a Decimal, digits as written."""
    text = text.strip()
    if not _RATE_TEXT.fullmatch(text) or Decimal(text) > 1:
        raise ValueError(f"not a rate between 0 and 1: {text!r}")
    return Decimal(text)


def parse_date(text: str) -> date:
    """A ``DateType`` text (YYYY-MM-DD)."""
    text = text.strip()
    if not _DATE_TEXT.fullmatch(text):
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}")
    return date.fromisoformat(text)


def parse_time(text: str) -> datetime:
    """A ``DateTimeType`` text as an aware datetime (the offset is required)."""
    text = text.strip()
    if not _TIME_TEXT.fullmatch(text):
        raise ValueError(f"not a date and time with an offset: {text!r}")
    # Python 3.11 reads "Z" and any number of fraction digits (beyond 6 they are dropped).
    return datetime.fromisoformat(text)


def parse_bool(text: str) -> bool:
    """An ``xs:boolean`` text: true, false, 1 or 0."""
    text = text.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_days(text: str) -> int:
    """A ``DaysType`` text (0..99999)."""
    text = text.strip()
    if not _DAYS_TEXT.fullmatch(text):
        raise ValueError(f"not a number of days: {text!r}")
    return int(text)


def parse_base64(text: str) -> bytes:
    """An ``xs:base64Binary`` text (whitespace inside is allowed, as XSD allows it)."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as e:
        raise ValueError(f"not base64: {e}") from None


def _need(node: etree._Element, name: str) -> str:
    value = text_of(node, name)
    if value is None:
        raise ValueError(f"{etree.QName(node).localname} has no {name}")
    return value


def _maybe(node: etree._Element, name: str) -> str | None:
    return text_of(node, name)


# -- building ----------------------------------------------------------------------------
class _Group:
    """What every group shares: its element name and how it becomes an element."""

    TAG: ClassVar[str]

    def _parts(self) -> list[tuple[str, str | None]]:
        raise NotImplementedError

    def to_element(self) -> etree._Element:
        """The group as its contract element, parts in the XSD's order (None left out)."""
        parts = [leaf(tag, text) for tag, text in self._parts() if text is not None]
        return element(self.TAG, *parts)

    @classmethod
    def _check(cls, node: etree._Element) -> None:
        if node.tag != q(cls.TAG):
            raise ValueError(f"expected a cdgi:{cls.TAG}, not {node.tag}")


def _append(node: etree._Element, tag: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, str):
        node.append(leaf(tag, value))
    elif isinstance(value, _Group):
        # The tag is named at the call site too, so a Seal passed where a Contact belongs
        # is caught here instead of by the schema at the far end.
        if value.TAG != tag:
            raise TypeError(f"{tag} expects a {tag} group, not {type(value).__name__}")
        node.append(value.to_element())
    elif isinstance(value, Sequence):
        for item in value:
            if item is None:
                raise TypeError(f"{tag} has a None among its repeated values")
            _append(node, tag, item)
    else:
        raise TypeError(f"{tag} takes text, not {type(value).__name__}")


def _document(name: str, *parts: tuple[str, object]) -> etree._Element:
    """A business element with a fresh Id and ``parts`` as children, in the order given."""
    node = element(name, attrs={"Id": new_element_id("D")})
    for tag, value in parts:
        _append(node, tag, value)
    return node


# -- groups ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Contact(_Group):
    """``Contact`` of a quota application: who the insurer calls."""

    TAG: ClassVar[str] = "Contact"
    name: str
    phone: str

    def _parts(self) -> list[tuple[str, str | None]]:
        return [("Name", self.name), ("Phone", self.phone)]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:Contact`` back."""
        cls._check(el)
        return cls(_need(el, "Name"), _need(el, "Phone"))


@dataclass(frozen=True)
class Invoice(_Group):
    """``Invoice`` of a policy application: where the premium invoice goes."""

    TAG: ClassVar[str] = "Invoice"
    type: str
    title: str
    taxpayer_id: str
    address: str
    phone: str
    bank_name: str
    bank_account: str
    email: str

    def _parts(self) -> list[tuple[str, str | None]]:
        return [
            ("Type", self.type),
            ("Title", self.title),
            ("TaxpayerId", self.taxpayer_id),
            ("Address", self.address),
            ("Phone", self.phone),
            ("BankName", self.bank_name),
            ("BankAccount", self.bank_account),
            ("Email", self.email),
        ]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:Invoice`` back."""
        cls._check(el)
        return cls(
            *(
                _need(el, name)
                for name in (
                    "Type",
                    "Title",
                    "TaxpayerId",
                    "Address",
                    "Phone",
                    "BankName",
                    "BankAccount",
                    "Email",
                )
            )
        )


@dataclass(frozen=True)
class EPolicy(_Group):
    """``EPolicy`` of a policy decision: the electronic policy's file, digest and bytes."""

    TAG: ClassVar[str] = "EPolicy"
    file_name: str
    media_type: str
    sha256: str
    content: bytes | None = None

    @classmethod
    def of(cls, file_name: str, media_type: str, content: bytes) -> Self:
        """An EPolicy carrying ``content``, its digest computed (lower-case hex, as the XSD says)."""
        return cls(file_name, media_type, hashlib.sha256(content).hexdigest(), content)

    def _parts(self) -> list[tuple[str, str | None]]:
        return [
            ("FileName", self.file_name),
            ("MediaType", self.media_type),
            ("Sha256", self.sha256),
            ("Content", _base64(self.content)),
        ]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:EPolicy`` back (Content decoded, None where absent)."""
        cls._check(el)
        content = _maybe(el, "Content")
        return cls(
            _need(el, "FileName"),
            _need(el, "MediaType"),
            _need(el, "Sha256"),
            parse_base64(content) if content is not None else None,
        )


@dataclass(frozen=True)
class Seal(_Group):
    """``Seal`` of a card binding: an e-seal made for the card's holder (印章制作)."""

    TAG: ClassVar[str] = "Seal"
    seal_id: str
    holder_name: str
    valid_from: date
    valid_to: date

    def _parts(self) -> list[tuple[str, str | None]]:
        return [
            ("SealId", self.seal_id),
            ("HolderName", self.holder_name),
            ("ValidFrom", _day(self.valid_from)),
            ("ValidTo", _day(self.valid_to)),
        ]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:Seal`` back."""
        cls._check(el)
        return cls(
            _need(el, "SealId"),
            _need(el, "HolderName"),
            parse_date(_need(el, "ValidFrom")),
            parse_date(_need(el, "ValidTo")),
        )


@dataclass(frozen=True)
class TaxItem(_Group):
    """``TaxItem`` of a guarantee deduction: one kind of tax and its amount."""

    TAG: ClassVar[str] = "TaxItem"
    tax_kind: str
    amount: Decimal

    def _parts(self) -> list[tuple[str, str | None]]:
        return [("TaxKind", self.tax_kind), ("Amount", _amount(self.amount))]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:TaxItem`` back."""
        cls._check(el)
        return cls(_need(el, "TaxKind"), parse_amount(_need(el, "Amount")))


@dataclass(frozen=True)
class ClaimEntry(_Group):
    """``Entry`` of a claim notice: one overdue declaration."""

    TAG: ClassVar[str] = "Entry"
    entry_id: str
    tax: Decimal
    due_date: date
    overdue_days: int
    late_fee: Decimal

    def _parts(self) -> list[tuple[str, str | None]]:
        return [
            ("EntryId", self.entry_id),
            ("Tax", _amount(self.tax)),
            ("DueDate", _day(self.due_date)),
            ("OverdueDays", _days(self.overdue_days)),
            ("LateFee", _amount(self.late_fee)),
        ]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:Entry`` back."""
        cls._check(el)
        return cls(
            _need(el, "EntryId"),
            parse_amount(_need(el, "Tax")),
            parse_date(_need(el, "DueDate")),
            parse_days(_need(el, "OverdueDays")),
            parse_amount(_need(el, "LateFee")),
        )


@dataclass(frozen=True)
class CreditRecord(_Group):
    """``Record`` of a credit info or credit share: one entry of the customs credit record."""

    TAG: ClassVar[str] = "Record"
    date: _Date
    kind: str
    description: str

    def _parts(self) -> list[tuple[str, str | None]]:
        return [("Date", _day(self.date)), ("Kind", self.kind), ("Description", self.description)]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:Record`` back."""
        cls._check(el)
        return cls(parse_date(_need(el, "Date")), _need(el, "Kind"), _need(el, "Description"))


# kw_only: the XSD puts the optional PaidAmount and PaidTime before the required Status, and
# the fields keep the XSD's order; keywords make that order irrelevant to callers.
@dataclass(frozen=True, kw_only=True)
class ClaimSummary(_Group):
    """``Claim`` of a claim-info result: one of the enterprise's own claims."""

    TAG: ClassVar[str] = "Claim"
    claim_no: str
    policy_no: str
    insurer_code: str
    insurer_name: str
    claimed_amount: Decimal
    paid_amount: Decimal | None = None
    paid_time: datetime | None = None
    status: str

    def _parts(self) -> list[tuple[str, str | None]]:
        return [
            ("ClaimNo", self.claim_no),
            ("PolicyNo", self.policy_no),
            ("InsurerCode", self.insurer_code),
            ("InsurerName", self.insurer_name),
            ("ClaimedAmount", _amount(self.claimed_amount)),
            ("PaidAmount", _amount(self.paid_amount)),
            ("PaidTime", _time(self.paid_time)),
            ("Status", self.status),
        ]

    @classmethod
    def from_element(cls, el: etree._Element) -> Self:
        """Read a ``cdgi:Claim`` back."""
        cls._check(el)
        paid_amount, paid_time = _maybe(el, "PaidAmount"), _maybe(el, "PaidTime")
        return cls(
            claim_no=_need(el, "ClaimNo"),
            policy_no=_need(el, "PolicyNo"),
            insurer_code=_need(el, "InsurerCode"),
            insurer_name=_need(el, "InsurerName"),
            claimed_amount=parse_amount(_need(el, "ClaimedAmount")),
            paid_amount=parse_amount(paid_amount) if paid_amount is not None else None,
            paid_time=parse_time(paid_time) if paid_time is not None else None,
            status=_need(el, "Status"),
        )


# -- from PORTAL (CDGI101..CDGI115) ----------------------------------------------------------
def card_binding(
    *,
    uscc: str,
    enterprise_name: str,
    customs_code: str,
    card_no: str,
    card_role: str,
    certificate: bytes,
    valid_from: date,
    valid_to: date,
    seals: Sequence[Seal] = (),
    revoked: bool | None = None,
) -> etree._Element:
    """CDGI101 ``CardBinding``: the portal vouches for it, so no document signature.

    ``certificate`` is the card's certificate as DER.
    """
    return _document(
        "CardBinding",
        ("USCC", uscc),
        ("EnterpriseName", enterprise_name),
        ("CustomsCode", customs_code),
        ("CardNo", card_no),
        ("CardRole", card_role),
        ("Certificate", _base64(certificate)),
        ("ValidFrom", _day(valid_from)),
        ("ValidTo", _day(valid_to)),
        ("Seal", list(seals)),
        ("Revoked", _flag(revoked)),
    )


def operator_grant(
    *,
    uscc: str,
    operator_card_no: str,
    permissions: Sequence[str],
    revoke: bool | None = None,
) -> etree._Element:
    """CDGI103 ``OperatorGrant``, unsigned: the LEGAL card signs it."""
    return _document(
        "OperatorGrant",
        ("USCC", uscc),
        ("OperatorCardNo", operator_card_no),
        ("Permission", _some("permissions", permissions)),
        ("Revoke", _flag(revoke)),
    )


def agreement_sign(
    *,
    agreement_no: str,
    uscc: str,
    payer_name: str,
    bank_code: str,
    bank_name: str,
    clearing_bank_code: str,
    account_no: str,
    customs_district: str,
    seal_id: str,
) -> etree._Element:
    """CDGI105 ``AgreementSign``, unsigned: the LEGAL card signs it."""
    return _document(
        "AgreementSign",
        ("AgreementNo", agreement_no),
        ("USCC", uscc),
        ("PayerName", payer_name),
        ("BankCode", bank_code),
        ("BankName", bank_name),
        ("ClearingBankCode", clearing_bank_code),
        ("AccountNo", account_no),
        ("CustomsDistrict", customs_district),
        ("SealId", seal_id),
    )


def authorization_sign(
    *,
    auth_no: str,
    uscc: str,
    insurer_code: str,
    scopes: Sequence[str],
    valid_to: date,
    seal_id: str,
) -> etree._Element:
    """CDGI107 ``AuthorizationSign``, unsigned: an OPERATOR card with AUTHORIZE signs it."""
    return _document(
        "AuthorizationSign",
        ("AuthNo", auth_no),
        ("USCC", uscc),
        ("InsurerCode", insurer_code),
        ("Scope", _some("scopes", scopes)),
        ("ValidTo", _day(valid_to)),
        ("SealId", seal_id),
    )


def quota_apply(
    *,
    quota_no: str,
    uscc: str,
    insurer_code: str,
    applied_amount: Decimal,
    term_start: date,
    term_end: date,
    prev_quota_no: str | None = None,
    contact: Contact,
) -> etree._Element:
    """CDGI109 ``QuotaApply``, unsigned: an OPERATOR card with QUOTA signs it."""
    return _document(
        "QuotaApply",
        ("QuotaNo", quota_no),
        ("USCC", uscc),
        ("InsurerCode", insurer_code),
        ("AppliedAmount", _amount(applied_amount)),
        ("TermStart", _day(term_start)),
        ("TermEnd", _day(term_end)),
        ("PrevQuotaNo", prev_quota_no),
        ("Contact", contact),
    )


def quota_increase(*, increase_no: str, quota_no: str, amount: Decimal) -> etree._Element:
    """CDGI111 ``QuotaIncrease``, unsigned: an OPERATOR card with QUOTA signs it."""
    return _document(
        "QuotaIncrease",
        ("IncreaseNo", increase_no),
        ("QuotaNo", quota_no),
        ("Amount", _amount(amount)),
    )


def policy_apply(
    *,
    apply_no: str,
    quota_no: str,
    uscc: str,
    insured_amount: Decimal,
    term_start: date,
    term_end: date,
    insured_customs: Sequence[str],
    coverage: Sequence[str],
    invoice: Invoice,
) -> etree._Element:
    """CDGI113 ``PolicyApply``, unsigned: an OPERATOR card with POLICY signs it.

    The first of ``insured_customs`` is the registration-area customs.
    """
    return _document(
        "PolicyApply",
        ("ApplyNo", apply_no),
        ("QuotaNo", quota_no),
        ("USCC", uscc),
        ("InsuredAmount", _amount(insured_amount)),
        ("TermStart", _day(term_start)),
        ("TermEnd", _day(term_end)),
        ("InsuredCustoms", _some("insured_customs", insured_customs)),
        ("Coverage", _some("coverage", coverage)),
        ("Invoice", invoice),
    )


def claim_info_query(
    *,
    query_no: str,
    uscc: str,
    insurer_code: str | None = None,
    insurer_name: str | None = None,
    policy_no: str | None = None,
) -> etree._Element:
    """CDGI115 ``ClaimInfoQuery``, unsigned: an OPERATOR card with QUERY signs it."""
    return _document(
        "ClaimInfoQuery",
        ("QueryNo", query_no),
        ("USCC", uscc),
        ("InsurerCode", insurer_code),
        ("InsurerName", insurer_name),
        ("PolicyNo", policy_no),
    )


# -- from BANK (CDGI201) ---------------------------------------------------------------------
def agreement_result(
    *,
    agreement_no: str,
    result: str,
    effective_date: date | None = None,
    reason: str | None = None,
) -> etree._Element:
    """CDGI201 ``AgreementResult``: the bank's answer to a tripartite agreement."""
    return _document(
        "AgreementResult",
        ("AgreementNo", agreement_no),
        ("Result", result),
        ("EffectiveDate", _day(effective_date)),
        ("Reason", reason),
    )


# -- from INSURER (CDGI301..CDGI307) ---------------------------------------------------------
def quota_decision(
    *,
    quota_no: str,
    result: str,
    approved_amount: Decimal | None = None,
    rate: Decimal | None = None,
    valid_from: date | None = None,
    valid_to: date | None = None,
    reason: str | None = None,
) -> etree._Element:
    """CDGI301 ``QuotaDecision`` (ApprovedAmount, Rate, ValidFrom, ValidTo with APPROVED)."""
    return _document(
        "QuotaDecision",
        ("QuotaNo", quota_no),
        ("Result", result),
        ("ApprovedAmount", _amount(approved_amount)),
        ("Rate", _rate(rate)),
        ("ValidFrom", _day(valid_from)),
        ("ValidTo", _day(valid_to)),
        ("Reason", reason),
    )


def increase_decision(
    *,
    increase_no: str,
    quota_no: str,
    result: str,
    approved_amount: Decimal | None = None,
    reason: str | None = None,
) -> etree._Element:
    """CDGI303 ``IncreaseDecision``."""
    return _document(
        "IncreaseDecision",
        ("IncreaseNo", increase_no),
        ("QuotaNo", quota_no),
        ("Result", result),
        ("ApprovedAmount", _amount(approved_amount)),
        ("Reason", reason),
    )


def policy_decision(
    *,
    apply_no: str,
    result: str,
    policy_no: str | None = None,
    premium: Decimal | None = None,
    rate: Decimal | None = None,
    term_start: date | None = None,
    term_end: date | None = None,
    e_policy: EPolicy | None = None,
    reason: str | None = None,
) -> etree._Element:
    """CDGI305 ``PolicyDecision`` (PolicyNo .. EPolicy with ISSUED)."""
    return _document(
        "PolicyDecision",
        ("ApplyNo", apply_no),
        ("Result", result),
        ("PolicyNo", policy_no),
        ("Premium", _amount(premium)),
        ("Rate", _rate(rate)),
        ("TermStart", _day(term_start)),
        ("TermEnd", _day(term_end)),
        ("EPolicy", e_policy),
        ("Reason", reason),
    )


def claim_settlement(
    *,
    claim_no: str,
    policy_no: str,
    result: str,
    paid_amount: Decimal | None = None,
    paid_time: datetime | None = None,
    reason: str | None = None,
) -> etree._Element:
    """CDGI307 ``ClaimSettlement`` (PaidAmount, PaidTime with PAID)."""
    return _document(
        "ClaimSettlement",
        ("ClaimNo", claim_no),
        ("PolicyNo", policy_no),
        ("Result", result),
        ("PaidAmount", _amount(paid_amount)),
        ("PaidTime", _time(paid_time)),
        ("Reason", reason),
    )


# -- from CUSTOMS (CDGI401..CDGI409) ---------------------------------------------------------
def credit_info(
    *,
    uscc: str,
    customs_code: str,
    rating: str,
    rated_date: date,
    records: Sequence[CreditRecord] = (),
) -> etree._Element:
    """CDGI401 ``CreditInfo``: the enterprise's customs credit rating and record."""
    return _document(
        "CreditInfo",
        ("USCC", uscc),
        ("CustomsCode", customs_code),
        ("Rating", rating),
        ("RatedDate", _day(rated_date)),
        ("Record", list(records)),
    )


def policy_record_result(
    *,
    policy_no: str,
    result: str,
    guarantee_record_no: str | None = None,
    reason: str | None = None,
) -> etree._Element:
    """CDGI403 ``PolicyRecordResult`` (GuaranteeRecordNo with RECORDED)."""
    return _document(
        "PolicyRecordResult",
        ("PolicyNo", policy_no),
        ("Result", result),
        ("GuaranteeRecordNo", guarantee_record_no),
        ("Reason", reason),
    )


def guarantee_deduct(
    *,
    guarantee_record_no: str,
    entry_id: str,
    declaration_type: str,
    customs_district: str,
    tax_items: Sequence[TaxItem],
    total: Decimal,
    deduct_time: datetime,
    payment_due_date: date,
) -> etree._Element:
    """CDGI405 ``GuaranteeDeduct``."""
    return _document(
        "GuaranteeDeduct",
        ("GuaranteeRecordNo", guarantee_record_no),
        ("EntryId", entry_id),
        ("DeclarationType", declaration_type),
        ("CustomsDistrict", customs_district),
        ("TaxItem", _some("tax_items", tax_items)),
        ("Total", _amount(total)),
        ("DeductTime", _time(deduct_time)),
        ("PaymentDueDate", _day(payment_due_date)),
    )


def guarantee_restore(
    *, guarantee_record_no: str, entry_id: str, amount: Decimal, paid_time: datetime
) -> etree._Element:
    """CDGI407 ``GuaranteeRestore``."""
    return _document(
        "GuaranteeRestore",
        ("GuaranteeRecordNo", guarantee_record_no),
        ("EntryId", entry_id),
        ("Amount", _amount(amount)),
        ("PaidTime", _time(paid_time)),
    )


def claim_notice(
    *,
    claim_no: str,
    policy_no: str,
    guarantee_record_no: str,
    cause: str,
    entries: Sequence[ClaimEntry],
    total: Decimal,
    notice_date: date,
) -> etree._Element:
    """CDGI409 ``ClaimNotice`` (customs sends it; the adapter forwards it unchanged)."""
    return _document(
        "ClaimNotice",
        ("ClaimNo", claim_no),
        ("PolicyNo", policy_no),
        ("GuaranteeRecordNo", guarantee_record_no),
        ("Cause", cause),
        ("Entry", _some("entries", entries)),
        ("Total", _amount(total)),
        ("NoticeDate", _day(notice_date)),
    )


# -- from the ADAPTER (CDGI116, CDGI501..CDGI507, CDGI900) -----------------------------------
def claim_info_result(
    *, query_no: str, uscc: str, claims: Sequence[ClaimSummary] = ()
) -> etree._Element:
    """CDGI116 ``ClaimInfoResult``: the answer to a CDGI115."""
    return _document(
        "ClaimInfoResult",
        ("QueryNo", query_no),
        ("USCC", uscc),
        ("Claim", list(claims)),
    )


def policy_record(
    *,
    policy_no: str,
    uscc: str,
    enterprise_name: str,
    customs_code: str,
    insurer_code: str,
    insured_amount: Decimal,
    term_start: date,
    term_end: date,
    insured_customs: Sequence[str],
    coverage: Sequence[str],
    e_policy_sha256: str,
) -> etree._Element:
    """CDGI501 ``PolicyRecord``: an ISSUED policy, to ``CUS.<first InsuredCustoms>``."""
    return _document(
        "PolicyRecord",
        ("PolicyNo", policy_no),
        ("USCC", uscc),
        ("EnterpriseName", enterprise_name),
        ("CustomsCode", customs_code),
        ("InsurerCode", insurer_code),
        ("InsuredAmount", _amount(insured_amount)),
        ("TermStart", _day(term_start)),
        ("TermEnd", _day(term_end)),
        ("InsuredCustoms", _some("insured_customs", insured_customs)),
        ("Coverage", _some("coverage", coverage)),
        ("EPolicySha256", e_policy_sha256),
    )


def claim_share(
    *,
    claim_no: str,
    policy_no: str,
    insurer_code: str,
    uscc: str,
    enterprise_name: str,
    claimed_amount: Decimal,
    paid_amount: Decimal,
    paid_time: datetime,
) -> etree._Element:
    """CDGI503 ``ClaimShare``: a PAID claim, to every other enabled insurer."""
    return _document(
        "ClaimShare",
        ("ClaimNo", claim_no),
        ("PolicyNo", policy_no),
        ("InsurerCode", insurer_code),
        ("USCC", uscc),
        ("EnterpriseName", enterprise_name),
        ("ClaimedAmount", _amount(claimed_amount)),
        ("PaidAmount", _amount(paid_amount)),
        ("PaidTime", _time(paid_time)),
    )


def status_notice(
    *,
    uscc: str,
    subject: str,
    subject_no: str,
    status: str,
    reason: str | None = None,
    time: datetime,
) -> etree._Element:
    """CDGI505 ``StatusNotice``: a status the enterprise sees changed, to PORTAL."""
    return _document(
        "StatusNotice",
        ("USCC", uscc),
        ("Subject", subject),
        ("SubjectNo", subject_no),
        ("Status", status),
        ("Reason", reason),
        ("Time", _time(time)),
    )


def credit_share(
    *,
    quota_no: str,
    uscc: str,
    rating: str,
    rated_date: date,
    records: Sequence[CreditRecord] = (),
) -> etree._Element:
    """CDGI507 ``CreditShare``: the credit info that follows a quota application."""
    return _document(
        "CreditShare",
        ("QuotaNo", quota_no),
        ("USCC", uscc),
        ("Rating", rating),
        ("RatedDate", _day(rated_date)),
        ("Record", list(records)),
    )


def receipt(
    *,
    ori_message_id: str | None,
    ori_message_type: str | None,
    return_status: int,
    return_code: str,
    return_info: str,
    return_time: datetime,
) -> etree._Element:
    """CDGI900 ``Receipt``, by ``envelope.build_receipt`` (its ``R`` Id prefix included)."""
    if isinstance(return_status, bool) or not isinstance(return_status, int):
        raise TypeError(f"ReturnStatus is an int, not {type(return_status).__name__}")
    time = _time(return_time)
    assert time is not None
    return build_receipt(
        ori_message_id=ori_message_id,
        ori_message_type=ori_message_type,
        status=return_status,
        code=return_code,
        info=return_info,
        time=time,
    )
