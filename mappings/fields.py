"""The canonical vocabulary every dialect maps, and the errors a mapping raises.

Owns two things that do not depend on any one dialect:

- ``KINDS``: every element name of the contract (``schemas/*.xsd``) with what its text is: an
  amount in yuan (every field of the XSD's ``AmountType``), a date (``DateType``), a time
  (``DateTimeType``), other text carried as is (``Rate`` included), or a group that holds
  elements. A name has one kind wherever it appears in the contract, so the table is keyed by
  name alone. ``tests/unit/test_mappings.py`` checks it against the XSD, so a field added to
  the contract without a line here fails the tests rather than travelling unconverted.
- The ``MappingError`` family: a value a dialect cannot express, or a dialect message that does
  not map. Each is a ``FormatError`` with its receipt code, so the pipeline treats it like any
  other format refusal.

Pure: imports only the standard library and ``adapter.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from adapter.errors import FormatError, NotWellFormed, SchemaInvalid, UnknownMessageType

__all__ = [
    "KINDS",
    "NAMES",
    "Kind",
    "MappingError",
    "MappingInvalid",
    "MappingNotWellFormed",
    "NotExpressible",
    "NotInDialect",
]


# -- errors ----------------------------------------------------------------------------------
class MappingError(FormatError):
    """A message cannot be mapped between a dialect and the canonical form."""

    code = "0002"


class NotExpressible(MappingError, NotWellFormed):
    """0001: the text holds a character the dialect's encoding cannot carry (GBK, say)."""

    code = "0001"


class MappingNotWellFormed(MappingError, NotWellFormed):
    """0001: XML the dialect carries inside a field is not well-formed or holds a forbidden
    construct (a DTD, an entity, a processing instruction, an XInclude)."""

    code = "0001"


class MappingInvalid(MappingError, SchemaInvalid):
    """0002: a value or a structure the mapping cannot convert without losing or guessing."""

    code = "0002"


class NotInDialect(MappingError, UnknownMessageType):
    """0003: a message type this dialect does not carry."""

    code = "0003"


# -- the field table -------------------------------------------------------------------------
class Kind(Enum):
    """What the text of a canonical element is, as far as a mapping cares."""

    AMOUNT = "amount"
    """CNY yuan, ``AmountType``: at most 16 integer and 2 fraction digits, never negative."""
    DATE = "date"
    """``DateType``: YYYY-MM-DD."""
    TIME = "time"
    """``DateTimeType``: xs:dateTime with a required offset."""
    TEXT = "text"
    """Anything else with text, carried unchanged (codes, names, rates, base64, integers)."""
    GROUP = "group"
    """An element of elements: the envelope, its head and body, a business element, a group."""


_AMOUNTS = (
    "Amount",
    "AppliedAmount",
    "ApprovedAmount",
    "ClaimedAmount",
    "InsuredAmount",
    "LateFee",
    "PaidAmount",
    "Premium",
    "Tax",
    "Total",
)
_DATES = (
    "Date",
    "DueDate",
    "EffectiveDate",
    "NoticeDate",
    "PaymentDueDate",
    "RatedDate",
    "TermEnd",
    "TermStart",
    "ValidFrom",
    "ValidTo",
)
_TIMES = ("DeductTime", "PaidTime", "ReturnTime", "SendTime", "Time")
_GROUPS = (
    # the envelope (CONTRACT §3)
    "Envelope",
    "Head",
    "Body",
    # business elements (CONTRACT §5)
    "AgreementResult",
    "AgreementSign",
    "AuthorizationSign",
    "CardBinding",
    "ClaimInfoQuery",
    "ClaimInfoResult",
    "ClaimNotice",
    "ClaimSettlement",
    "ClaimShare",
    "CreditInfo",
    "CreditShare",
    "GuaranteeDeduct",
    "GuaranteeRestore",
    "IncreaseDecision",
    "OperatorGrant",
    "PolicyApply",
    "PolicyDecision",
    "PolicyRecord",
    "PolicyRecordResult",
    "QuotaApply",
    "QuotaDecision",
    "QuotaIncrease",
    "Receipt",
    "StatusNotice",
    # groups inside them
    "Claim",
    "Contact",
    "EPolicy",
    "Entry",
    "Invoice",
    "Record",
    "Seal",
    "TaxItem",
)
_TEXTS = (
    "AccountNo",
    "Address",
    "AgreementNo",
    "ApplyNo",
    "AuthNo",
    "BankAccount",
    "BankCode",
    "BankName",
    "CardNo",
    "CardRole",
    "Cause",
    "Certificate",
    "ClaimNo",
    "ClearingBankCode",
    "Content",
    "CorrelationId",
    "Coverage",
    "CustomsCode",
    "CustomsDistrict",
    "DeclarationType",
    "Description",
    "EPolicySha256",
    "Email",
    "EnterpriseName",
    "EntryId",
    "FileName",
    "GuaranteeRecordNo",
    "HolderName",
    "IncreaseNo",
    "InsuredCustoms",
    "InsurerCode",
    "InsurerName",
    "Kind",
    "MediaType",
    "MessageId",
    "MessageType",
    "Name",
    "OperatorCardNo",
    "OriMessageId",
    "OriMessageType",
    "OverdueDays",
    "PayerName",
    "Permission",
    "Phone",
    "PolicyNo",
    "PrevQuotaNo",
    "QueryNo",
    "QuotaNo",
    "Rate",
    "Rating",
    "Reason",
    "ReceiverId",
    "Result",
    "ReturnCode",
    "ReturnInfo",
    "ReturnStatus",
    "Revoke",
    "Revoked",
    "Scope",
    "SealId",
    "SenderId",
    "Sha256",
    "Status",
    "Subject",
    "SubjectNo",
    "TaxKind",
    "TaxpayerId",
    "Title",
    "Type",
    "USCC",
)


def _table() -> Mapping[str, Kind]:
    table: dict[str, Kind] = {}
    for kind, names in (
        (Kind.AMOUNT, _AMOUNTS),
        (Kind.DATE, _DATES),
        (Kind.TIME, _TIMES),
        (Kind.GROUP, _GROUPS),
        (Kind.TEXT, _TEXTS),
    ):
        for name in names:
            if name in table:
                raise RuntimeError(f"{name} is listed twice in the field table")
            table[name] = kind
    return MappingProxyType(table)


KINDS: Mapping[str, Kind] = _table()
"""Every element name of the contract and the kind of its text."""

NAMES: tuple[str, ...] = tuple(sorted(KINDS))
"""Every element name of the contract, sorted."""
