"""The contract's machine-readable form: the XSD files and a small cached loader.

Owns ``schemas/*.xsd`` (entry point ``cdgi.xsd``, namespace ``urn:cdgi:1``), the catalogue
of message types of CONTRACT §5 (element, who may send it, whether it is doc-signed, whether
the adapter accepts it from a partner), validation on the hot path with lxml, and a full
problem report with the xmlschema library for ``cdgi validate FILE``.

May import only the standard library, lxml, xmlschema and ``adapter.errors``. Nothing is
fetched from the network: every schema location resolves to a file beside this one.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import xmlschema
from lxml import etree

from adapter.errors import SchemaInvalid, UnknownMessageType

__all__ = [
    "CATALOGUE",
    "DS_NS",
    "KINDS",
    "NS",
    "MessageSpec",
    "Problem",
    "lxml_schema",
    "problems",
    "spec_for",
    "validate",
    "xsd_files",
    "xsd_path",
]

NS = "urn:cdgi:1"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

KINDS = frozenset({"PORTAL", "BANK", "INSURER", "CUSTOMS", "ADAPTER"})
"""The party kinds of CONTRACT §1."""

_HERE = Path(__file__).resolve().parent
_ENTRY = "cdgi.xsd"
_MAX_REPORTED = 5
# A SchemaInvalid message ends up in a receipt's ReturnInfo, which holds at most 1000 chars.
_MAX_MESSAGE = 1000


@dataclass(frozen=True)
class MessageSpec:
    """One message type of CONTRACT §5: its business element and who may send it."""

    type: str
    element: str
    senders: frozenset[str]
    doc_signed: bool
    inbound: bool


def _spec(
    type_: str, element: str, *senders: str, doc_signed: bool = False, inbound: bool = True
) -> MessageSpec:
    return MessageSpec(type_, element, frozenset(senders), doc_signed, inbound)


# Doc-signed documents the adapter forwards (to a bank or an insurer) travel in a new envelope
# sent by the ADAPTER, so ADAPTER is among their senders too.
CATALOGUE: Mapping[str, MessageSpec] = MappingProxyType(
    {
        spec.type: spec
        for spec in (
            _spec("CDGI101", "CardBinding", "PORTAL"),
            _spec("CDGI103", "OperatorGrant", "PORTAL", doc_signed=True),
            _spec("CDGI105", "AgreementSign", "PORTAL", "ADAPTER", doc_signed=True),
            _spec("CDGI107", "AuthorizationSign", "PORTAL", "ADAPTER", doc_signed=True),
            _spec("CDGI109", "QuotaApply", "PORTAL", "ADAPTER", doc_signed=True),
            _spec("CDGI111", "QuotaIncrease", "PORTAL", "ADAPTER", doc_signed=True),
            _spec("CDGI113", "PolicyApply", "PORTAL", "ADAPTER", doc_signed=True),
            _spec("CDGI115", "ClaimInfoQuery", "PORTAL", doc_signed=True),
            _spec("CDGI116", "ClaimInfoResult", "ADAPTER", inbound=False),
            _spec("CDGI201", "AgreementResult", "BANK"),
            _spec("CDGI301", "QuotaDecision", "INSURER"),
            _spec("CDGI303", "IncreaseDecision", "INSURER"),
            _spec("CDGI305", "PolicyDecision", "INSURER"),
            _spec("CDGI307", "ClaimSettlement", "INSURER"),
            _spec("CDGI401", "CreditInfo", "CUSTOMS"),
            _spec("CDGI403", "PolicyRecordResult", "CUSTOMS"),
            _spec("CDGI405", "GuaranteeDeduct", "CUSTOMS"),
            _spec("CDGI407", "GuaranteeRestore", "CUSTOMS"),
            _spec("CDGI409", "ClaimNotice", "CUSTOMS", "ADAPTER"),
            _spec("CDGI501", "PolicyRecord", "ADAPTER", inbound=False),
            _spec("CDGI503", "ClaimShare", "ADAPTER", inbound=False),
            _spec("CDGI505", "StatusNotice", "ADAPTER", inbound=False),
            _spec("CDGI507", "CreditShare", "ADAPTER", inbound=False),
            _spec("CDGI900", "Receipt", *sorted(KINDS)),
        )
    }
)
"""Every message type of CONTRACT §5, by type."""


def spec_for(message_type: str) -> MessageSpec:
    """The catalogue entry for ``message_type``, or UnknownMessageType (0003)."""
    try:
        return CATALOGUE[message_type]
    except (KeyError, TypeError):
        raise UnknownMessageType(
            f"message type {message_type!r} is not in the contract; "
            f"known types are {', '.join(CATALOGUE)}"
        ) from None


def xsd_path() -> Path:
    """The entry point of the contract's schema, ``schemas/cdgi.xsd``."""
    return _HERE / _ENTRY


def xsd_files() -> tuple[Path, ...]:
    """Every schema file of the package, entry point included."""
    return tuple(sorted(_HERE.glob("*.xsd")))


@dataclass(frozen=True)
class Problem:
    """One reason a document does not conform: where (line, XPath-like path) and what."""

    line: int | None
    path: str | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"line {self.line}" if self.line is not None else "",
                f"at {self.path}" if self.path else "",
            )
            if part
        )
        return f"{where}: {self.message}" if where else self.message


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@functools.cache
def lxml_schema() -> etree.XMLSchema:
    """The compiled contract for lxml, loaded once (the hot path's validator).

    It is compiled from the files as :class:`_HotPathFiles` serves them: each xs:ID typed as
    xs:NCName, which accepts exactly the same documents (see there) and keeps no memory.
    """
    parser = _safe_parser()
    parser.resolvers.add(_HotPathFiles())
    document = etree.parse(str(xsd_path()), parser)
    return etree.XMLSchema(document)


_XS = "http://www.w3.org/2001/XMLSchema"


class _HotPathFiles(etree.Resolver):
    """Serves each schema file with its xs:ID attributes declared as xs:NCName.

    libxml2 enters every xs:ID value it validates into the document's string dictionary, and
    lxml shares one dictionary per thread for the life of the process: each message's Id
    stayed in memory for good (about 55 bytes each, 5 MiB per 100,000 unique Ids).

    The contract's only xs:ID is the business element's Id (CONTRACT §3), and a document holds
    exactly one business element (``tests/unit/test_schemas.py`` checks that the schema keeps
    it so). The uniqueness that xs:ID adds to its lexical space, xs:NCName, is therefore
    vacuous: both accept the same documents. The published files keep xs:ID.
    """

    def resolve(self, url: str | None, public_id: str | None, context: object) -> object:
        path = Path(url or "")
        if path.parent != _HERE or path.suffix != ".xsd":
            return None
        document = etree.parse(str(path), _safe_parser())
        for declaration in document.iter(f"{{{_XS}}}attribute", f"{{{_XS}}}element"):
            prefix, _, name = (declaration.get("type") or "").rpartition(":")
            if name == "ID" and declaration.nsmap.get(prefix or None) == _XS:
                declaration.set("type", f"{prefix}:NCName" if prefix else "NCName")
        return self.resolve_string(etree.tostring(document), context, base_url=str(path))


# An lxml XMLSchema keeps the error log of its last run on itself; one run at a time.
_LXML_LOCK = threading.Lock()

# libxml2 repeats an invalid value's error from each xs:unique that looks at it; the first
# report says it all.
_ECHO = "No precomputed value available"
# libxml2 opens each message with the element's Clark name, which the path already gives.
_ELEMENT_PREFIX = re.compile(r"^\s*Element '[^']*'(, attribute '[^']*')?: ")


def validate(root: etree._Element) -> None:
    """Check ``root`` (an Envelope) against the contract, or raise SchemaInvalid (0002)."""
    schema = lxml_schema()
    with _LXML_LOCK:
        if schema.validate(root):
            return
        entries = list(schema.error_log)
    found = [
        Problem(entry.line or None, entry.path or None, _ELEMENT_PREFIX.sub("", _published(entry)))
        for entry in entries
        if _ECHO not in entry.message
    ]
    raise SchemaInvalid(_summary(found or [Problem(None, None, "does not match the contract")]))


def _published(entry: etree._LogEntry) -> str:
    """The message in the published schema's words: an Id's type is xs:ID (_HotPathFiles)."""
    if "attribute 'Id'" in entry.message:
        return entry.message.replace("'xs:NCName'", "'xs:ID'")
    return entry.message


def _summary(found: list[Problem]) -> str:
    """Up to five problems in one line that fits a receipt's ReturnInfo."""
    head = "schema-invalid: "
    more = len(found) - _MAX_REPORTED
    tail = f"; and {more} more" if more > 0 else ""
    shown = [str(problem).strip() for problem in found[:_MAX_REPORTED]]
    budget = (_MAX_MESSAGE - len(head) - len(tail)) // max(len(shown), 1) - 2
    shown = [text if len(text) <= budget else text[: budget - 1] + "…" for text in shown]
    return head + "; ".join(shown) + tail


@functools.cache
def _xmlschema_schema() -> xmlschema.XMLSchema10:
    # "sandbox": only files under the schemas folder; "always": no DTD or entity in them.
    return xmlschema.XMLSchema10(
        str(xsd_path()), base_url=str(_HERE), allow="sandbox", defuse="always"
    )


def problems(data: bytes) -> list[Problem]:
    """Every way ``data`` fails the contract's schema, with line and path (empty if valid).

    A document that is not well-formed gives one Problem, from the parser, with its line.
    """
    try:
        tree = etree.ElementTree(etree.fromstring(data, _safe_parser()))
    except etree.XMLSyntaxError as e:
        return [Problem(e.lineno or None, None, f"not well-formed XML: {e.msg}")]
    # The document itself may load nothing: no schema location hint, no external resource.
    resource = xmlschema.XMLResource(tree, allow="none", defuse="always")
    found: list[Problem] = []
    for error in _xmlschema_schema().iter_errors(resource, use_location_hints=False):
        found.append(Problem(_line_of(error), error.path, _message_of(error)))
    return found


def _line_of(error: xmlschema.XMLSchemaValidationError) -> int | None:
    line = getattr(error, "sourceline", None)
    if line is None and error.elem is not None:
        line = getattr(error.elem, "sourceline", None)
    return line if isinstance(line, int) else None


def _message_of(error: xmlschema.XMLSchemaValidationError) -> str:
    reason = (error.reason or error.message or "invalid").strip()
    value = error.obj
    # A simple value (not an element) is worth quoting: it is what the partner must fix.
    if value is not None and not hasattr(value, "tag"):
        text = str(value)
        quoted = repr(text if len(text) <= 60 else text[:59] + "…")
        return f"{reason} (value {quoted})"
    return reason
