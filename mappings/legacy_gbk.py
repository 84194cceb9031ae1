"""The ``legacy-gbk`` dialect (CONTRACT §7): an insurer back-office format, mapped both ways.

It carries every message an insurer sends or receives (``MESSAGE_TYPES``): the doc-signed
documents forwarded to the insurer (CDGI107, 109, 111, 113), the claim notice forwarded
(CDGI409), the claim and credit shares (CDGI503, 507), the insurer's decisions (CDGI301, 303,
305, 307) and receipts both ways (CDGI900). Any other type raises ``NotInDialect`` (0003).

The form, element by element::

    <?xml version='1.0' encoding='GBK'?>
    <CDGI_MSG version="1.0">                      cdgi:Envelope (no namespace anywhere)
      <HEAD><MESSAGE_ID>…</MESSAGE_ID>…</HEAD>    cdgi:Head
      <BODY>
        <QUOTA_DECISION Id="D…">…</QUOTA_DECISION>  the business element keeps its @Id
      </BODY>
    </CDGI_MSG>

- Names: ``CDGI_MSG`` for ``Envelope``; every other name is the upper snake case of the
  canonical name, by one rule (``upper_snake``): an underscore goes before an upper-case
  letter that follows a lower-case letter or a digit, and before an upper-case letter that
  follows another and is followed by a lower-case one; then all is upper-cased. So
  ``MessageId`` → ``MESSAGE_ID``, ``EPolicy`` → ``E_POLICY``, ``EPolicySha256`` →
  ``E_POLICY_SHA256``, ``Sha256`` → ``SHA256``, ``USCC`` → ``USCC``. The way back is not a
  rule but a table built from the contract's names (``mappings.fields.NAMES``), checked to be
  one-to-one when this module loads, so it is exact; a name not in it is refused (0002).
- Amounts (every field of ``AmountType``) are whole fen: ``5000000.00`` ↔ ``500000000``.
  ``Decimal`` only; exact up to 16 integer digits of yuan (18 digits of fen); never negative;
  an amount that is not a whole number of fen, or fen text that is not digits, is refused
  (0002), never rounded. The canonical amounts this module writes have two fraction digits.
- ``Rate`` and every other text travel unchanged.
- Dates are ``YYYYMMDD``; a day the calendar does not have (``20260230``) is refused (0002).
- Times are ``YYYYMMDDhhmmss`` in China time (+08:00). A canonical time with any offset is
  first converted to China time. **The dialect has whole seconds**: from the canonical form
  the fraction of a second is dropped (truncated, so a time never moves into the next second,
  day or year), on purpose and without an error, because the adapter's own times carry
  milliseconds (``ReturnTime`` 2026-11-24T10:15:01.204+08:00 becomes ``20261124101501``).
  Into the canonical form a legacy time is written the adapter's way, with milliseconds:
  ``20261124101501`` → ``2026-11-24T10:15:01.000+08:00``. A time that does not exist (hour
  24, 30 February) is refused (0002).
- Text is GBK: a character GBK cannot encode is refused with ``NotExpressible`` (0001), naming
  the character and the field ("cannot be expressed in GBK: '𠀀' (U+20000) in
  EnterpriseName"), never replaced by ``?`` or a character reference.
- Doc-signed documents (CDGI107, 109, 111, 113): the enterprise's ``ds:Signature`` cannot
  survive a change of format, so the legacy business element gets, as its last child,
  ``SIGNED_DOCUMENT``: the base64 of the canonical business element exactly as received,
  signature included (``etree.tostring``; its exclusive C14N signature still verifies), beside
  the mapped fields the back office reads. On the way back the canonical element is restored
  from ``SIGNED_DOCUMENT``, after checking that the mapped fields say the same as it (else
  0002). A doc-signed element without a signature is mapped field by field, and one without
  ``SIGNED_DOCUMENT`` comes back unsigned, for the schema and signature checks to refuse.
- The envelope signature (CONTRACT §4, ``Reference URI=""``) is not this module's concern: it
  maps unsigned trees. The pipeline verifies the dialect's bytes, hands the verified tree to
  ``to_canonical``, and signs what ``from_canonical`` returns before ``serialize``. A
  ``ds:Signature`` on the envelope given to ``from_canonical`` is refused as a wiring mistake.
- Whitespace between elements is ignored both ways; ``from_canonical`` indents its output.

Round trip: canonical → legacy → canonical is the identity (compared as exclusive C14N) for an
envelope written the adapter's way (no whitespace between elements, amounts with two fraction
digits, times in China time with zero milliseconds), and always for the doc-signed business
elements, which come back byte for byte with the enterprise's signature. Otherwise the values
come back equal and only their spelling changes: ``5000000.5`` → ``5000000.50``,
``2026-11-24T02:15:00Z`` → ``2026-11-24T10:15:00.000+08:00``, a fraction of a second → none.

Pure: imports the standard library, lxml, ``schemas`` (the message catalogue) and the field
table of ``mappings.fields``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from types import MappingProxyType

from lxml import etree

from mappings.fields import (
    KINDS,
    NAMES,
    Kind,
    MappingInvalid,
    MappingNotWellFormed,
    NotExpressible,
    NotInDialect,
)
from schemas import CATALOGUE

__all__ = [
    "CANONICAL_NAMES",
    "CHINA",
    "ENCODING",
    "LEGACY_NAMES",
    "MESSAGE_TYPES",
    "NAME",
    "SIGNED_DOCUMENT",
    "date_from_legacy",
    "date_to_legacy",
    "fen_to_yuan",
    "from_canonical",
    "serialize",
    "time_from_legacy",
    "time_to_legacy",
    "to_canonical",
    "upper_snake",
    "yuan_to_fen",
]

NAME = "legacy-gbk"
ENCODING = "GBK"
CHINA = timezone(timedelta(hours=8))
"""China time: the dialect's times are local times at +08:00."""

ROOT = "CDGI_MSG"
SIGNED_DOCUMENT = "SIGNED_DOCUMENT"
"""The legacy-only last child of a doc-signed business element: base64 of the canonical one."""

MESSAGE_TYPES: frozenset[str] = frozenset(
    {
        "CDGI107",
        "CDGI109",
        "CDGI111",
        "CDGI113",
        "CDGI301",
        "CDGI303",
        "CDGI305",
        "CDGI307",
        "CDGI409",
        "CDGI503",
        "CDGI507",
        "CDGI900",
    }
)
"""Every message an insurer sends or receives: the types this dialect carries."""

_NS = "urn:cdgi:1"
_DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_SIGNATURE = f"{{{_DS_NS}}}Signature"
_XINCLUDE_NS = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
_XML_SPACE = " \t\r\n"  # XML's whitespace; str.strip() alone would also eat U+3000 and such

# -- names -----------------------------------------------------------------------------------
_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def upper_snake(name: str) -> str:
    """The dialect's name for a canonical name: ``EPolicySha256`` → ``E_POLICY_SHA256``."""
    return _BOUNDARY.sub("_", name).upper()


def _name_tables() -> tuple[Mapping[str, str], Mapping[str, str]]:
    to_legacy = {name: upper_snake(name) for name in NAMES} | {"Envelope": ROOT}
    to_canonical: dict[str, str] = {}
    for canonical, legacy in to_legacy.items():
        if legacy in to_canonical or legacy == SIGNED_DOCUMENT:
            raise RuntimeError(f"{canonical} and {to_canonical.get(legacy)} share {legacy}")
        to_canonical[legacy] = canonical
    return MappingProxyType(to_legacy), MappingProxyType(to_canonical)


LEGACY_NAMES, CANONICAL_NAMES = _name_tables()
"""Canonical name → legacy name, and its exact inverse."""


def _q(local: str) -> str:
    return f"{{{_NS}}}{local}"


# -- amounts ---------------------------------------------------------------------------------
# Every operation below is exact: any rounding at all raises instead of passing unnoticed.
_EXACT = Context(prec=40, traps=[Inexact, Rounded, InvalidOperation])
_ONE = Decimal(1)
_YUAN_TEXT = re.compile(r"\+?([0-9]*)(?:\.([0-9]*))?")
_FEN_TEXT = re.compile(r"[0-9]+")
_INTEGER_DIGITS = 16


def yuan_to_fen(text: str, field: str = "amount") -> str:
    """A canonical amount in yuan (``5000000.00``) as whole fen (``500000000``), or 0002."""
    raw = text.strip(_XML_SPACE)
    if raw.startswith("-"):
        raise MappingInvalid(f"{field} {raw!r} is negative; amounts never are")
    match = _YUAN_TEXT.fullmatch(raw)
    if match is None or not (match.group(1) or match.group(2)):
        raise MappingInvalid(f"{field} {raw!r} is not an amount in yuan")
    whole = match.group(1).lstrip("0")
    fraction = (match.group(2) or "").rstrip("0")
    if len(whole) > _INTEGER_DIGITS:
        raise MappingInvalid(f"{field} {raw} has more than {_INTEGER_DIGITS} integer digits")
    if len(fraction) > 2:
        raise MappingInvalid(f"{field} {raw} is not a whole number of fen")
    yuan = Decimal(f"{whole or '0'}.{fraction or '0'}")
    fen = _EXACT.quantize(_EXACT.scaleb(yuan, 2), _ONE)
    return format(fen, "f")


def fen_to_yuan(text: str, field: str = "amount") -> str:
    """Whole fen (``500000000``) as a canonical amount in yuan (``5000000.00``), or 0002."""
    raw = text.strip(_XML_SPACE)
    if not _FEN_TEXT.fullmatch(raw):
        raise MappingInvalid(f"{field} {raw!r} is not a whole number of fen")
    digits = raw.lstrip("0") or "0"
    if len(digits) > _INTEGER_DIGITS + 2:
        raise MappingInvalid(
            f"{field} {raw} fen has more than {_INTEGER_DIGITS} integer digits of yuan"
        )
    return format(_EXACT.scaleb(Decimal(digits), -2), "f")


# -- dates and times -------------------------------------------------------------------------
_CANONICAL_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_LEGACY_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_CANONICAL_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(Z|[+\-][0-9]{2}:[0-9]{2})"
)
_LEGACY_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})")


def _day(parts: tuple[str, ...], raw: str, field: str) -> date:
    try:
        return date(*(int(part) for part in parts))
    except ValueError:
        raise MappingInvalid(f"{field} {raw!r} is not a day of the calendar") from None


def date_to_legacy(text: str, field: str = "date") -> str:
    """``2026-12-01`` → ``20261201``; a malformed or non-existent day is 0002."""
    raw = text.strip(_XML_SPACE)
    match = _CANONICAL_DATE.fullmatch(raw)
    if match is None:
        raise MappingInvalid(f"{field} {raw!r} is not a date (YYYY-MM-DD)")
    _day(match.groups(), raw, field)
    return "".join(match.groups())


def date_from_legacy(text: str, field: str = "date") -> str:
    """``20261201`` → ``2026-12-01``; a malformed or non-existent day (20260230) is 0002."""
    raw = text.strip(_XML_SPACE)
    match = _LEGACY_DATE.fullmatch(raw)
    if match is None:
        raise MappingInvalid(f"{field} {raw!r} is not a date (YYYYMMDD)")
    return _day(match.groups(), raw, field).isoformat()


def _offset(text: str, raw: str, field: str) -> timezone:
    if text == "Z":
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if minutes > 59 or hours * 60 + minutes > 14 * 60:  # xs:dateTime offsets: ±14:00 at most
        raise MappingInvalid(f"{field} {raw!r} has an offset that does not exist")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def time_to_legacy(text: str, field: str = "time") -> str:
    """An xs:dateTime with any offset → ``YYYYMMDDhhmmss`` in China time.

    The fraction of a second is dropped: the dialect counts whole seconds (module docstring).
    """
    raw = text.strip(_XML_SPACE)
    match = _CANONICAL_TIME.fullmatch(raw)
    if match is None:
        raise MappingInvalid(f"{field} {raw!r} is not a date and time with an offset")
    *parts, _fraction, offset = match.groups()
    year, month, day, hour, minute, second = (int(part) for part in parts)
    zone = _offset(offset, raw, field)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone)
        china = moment.astimezone(CHINA)
    except (ValueError, OverflowError):
        raise MappingInvalid(f"{field} {raw!r} is not a time of the calendar") from None
    return (
        f"{china.year:04d}{china.month:02d}{china.day:02d}"
        f"{china.hour:02d}{china.minute:02d}{china.second:02d}"
    )


def time_from_legacy(text: str, field: str = "time") -> str:
    """``YYYYMMDDhhmmss`` in China time → ``YYYY-MM-DDThh:mm:ss.000+08:00``, or 0002."""
    raw = text.strip(_XML_SPACE)
    match = _LEGACY_TIME.fullmatch(raw)
    if match is None:
        raise MappingInvalid(f"{field} {raw!r} is not a time (YYYYMMDDhhmmss)")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=CHINA)
    except ValueError:
        raise MappingInvalid(f"{field} {raw!r} is not a time of the calendar") from None
    return moment.isoformat(timespec="milliseconds")


_TO_LEGACY_TEXT = {
    Kind.AMOUNT: yuan_to_fen,
    Kind.DATE: date_to_legacy,
    Kind.TIME: time_to_legacy,
}
_TO_CANONICAL_TEXT = {
    Kind.AMOUNT: fen_to_yuan,
    Kind.DATE: date_from_legacy,
    Kind.TIME: time_from_legacy,
}


# -- GBK -------------------------------------------------------------------------------------
def _gbk(value: str, where: str) -> str:
    """``value`` unchanged if GBK can carry it, else NotExpressible (0001) naming the field."""
    try:
        value.encode("gbk")
    except UnicodeEncodeError as e:
        bad = value[e.start]
        raise NotExpressible(
            f"cannot be expressed in GBK: {bad!r} (U+{ord(bad):04X}) in {where}"
        ) from None
    return value


# -- tree helpers ----------------------------------------------------------------------------
def _tag_label(tag: str) -> str:
    qname = etree.QName(tag)
    if qname.namespace == _NS:
        return qname.localname
    return tag if qname.namespace is None else f"{{{qname.namespace}}}{qname.localname}"


def _label(node: etree._Element) -> str:
    if isinstance(node, etree._Comment):
        return "a comment"
    if not isinstance(node.tag, str):
        return "a processing instruction or an entity"
    return _tag_label(node.tag)


def _elements(node: etree._Element) -> list[etree._Element]:
    """The element children of a group; text between them, or anything odd, is refused."""
    if (node.text or "").strip(_XML_SPACE):
        raise MappingInvalid(f"{_label(node)} holds text besides its elements")
    children: list[etree._Element] = []
    for child in node:
        if isinstance(child, etree._Comment):
            pass  # a comment carries nothing; the verified tree has them excised anyway
        elif isinstance(child.tag, str):
            children.append(child)
        else:
            raise MappingInvalid(f"{_label(node)} holds {_label(child)}")
        if (child.tail or "").strip(_XML_SPACE):
            raise MappingInvalid(f"{_label(node)} holds text besides its elements")
    return children


def _leaf_text(node: etree._Element, label: str) -> str | None:
    for child in node:
        # A comment would split the value in two: refused rather than guessed at.
        raise MappingInvalid(f"{label} holds {_label(child)} where its value belongs")
    return node.text


def _attributes(node: etree._Element, allowed: tuple[str, ...], label: str) -> None:
    for name in node.attrib:
        if name not in allowed:
            raise MappingInvalid(f"{label} has an attribute {name!r} the contract does not know")


def _message_type(head: etree._Element, name: str) -> str:
    for child in head:
        if child.tag == name:
            message_type = (child.text or "").strip(_XML_SPACE)
            break
    else:
        raise MappingInvalid(f"the head has no {name}")
    if message_type not in MESSAGE_TYPES:
        raise NotInDialect(
            f"{message_type or '(empty)'} is not carried by {NAME}; "
            f"it carries {', '.join(sorted(MESSAGE_TYPES))}"
        )
    return message_type


def _head_and_body(
    root: etree._Element, head: str, body: str, label: str
) -> tuple[etree._Element, etree._Element]:
    children = _elements(root)
    tags = [child.tag for child in children]
    if _SIGNATURE in tags:
        raise MappingInvalid(
            f"{label} carries an envelope signature: map the unsigned envelope, "
            "then sign what the mapping returns"
        )
    for wanted in (head, body):
        if wanted not in tags:
            raise MappingInvalid(f"{label} has no {_tag_label(wanted)}")
    if tags != [head, body]:
        found = ", ".join(_label(child) for child in children)
        raise MappingInvalid(f"{label} must hold its head then its body, not {found}")
    return children[0], children[1]


def _one_business_element(body: etree._Element, label: str) -> etree._Element:
    children = _elements(body)
    if len(children) != 1:
        raise MappingInvalid(f"{label} must hold exactly one business element, not {len(children)}")
    return children[0]


# -- canonical → legacy ----------------------------------------------------------------------
def _canonical_name(node: etree._Element) -> str:
    if not isinstance(node.tag, str):
        raise MappingInvalid(f"unexpected {_label(node)}")
    qname = etree.QName(node.tag)
    if qname.namespace != _NS or qname.localname not in KINDS:
        raise MappingInvalid(f"{_label(node)} is not an element of the contract")
    return qname.localname


def _to_legacy(node: etree._Element, parent: etree._Element) -> etree._Element:
    name = _canonical_name(node)
    _attributes(node, (), name)
    out = etree.SubElement(parent, LEGACY_NAMES[name])
    if KINDS[name] is Kind.GROUP:
        for child in _elements(node):
            _to_legacy(child, out)
        return out
    text = _leaf_text(node, name)
    convert = _TO_LEGACY_TEXT.get(KINDS[name])
    if text is not None:
        out.text = _gbk(convert(text, name) if convert else text, name)
    elif convert is not None:
        raise MappingInvalid(f"{name} is empty")
    return out


def _fields_to_legacy(
    business: etree._Element, parent: etree._Element
) -> tuple[etree._Element, etree._Element | None]:
    """The business element's fields in the dialect, and its document signature if any."""
    name = _canonical_name(business)
    _attributes(business, ("Id",), name)
    out = etree.SubElement(parent, LEGACY_NAMES[name])
    if business.get("Id") is not None:
        out.set("Id", _gbk(business.get("Id", ""), f"the Id of {name}"))
    children = _elements(business)
    signature = children.pop() if children and children[-1].tag == _SIGNATURE else None
    for child in children:
        if child.tag == _SIGNATURE:
            raise MappingInvalid(f"the ds:Signature of {name} is not its last child")
        _to_legacy(child, out)
    return out, signature


def from_canonical(root: etree._Element) -> etree._Element:
    """A canonical envelope without its envelope signature → the legacy ``CDGI_MSG`` (unsigned).

    Raises NotInDialect (0003) for a type the dialect does not carry, NotExpressible (0001)
    for text GBK cannot carry, MappingInvalid (0002) for anything it cannot convert exactly.
    """
    if root.tag != _q("Envelope"):
        raise MappingInvalid(f"not a canonical envelope: the root is {_label(root)}")
    _attributes(root, ("version",), "Envelope")
    if root.get("version") != "1.0":
        raise MappingInvalid(f"Envelope version {root.get('version')!r} is not 1.0")
    head, body = _head_and_body(root, _q("Head"), _q("Body"), "Envelope")
    message_type = _message_type(head, _q("MessageType"))
    spec = CATALOGUE[message_type]
    business = _one_business_element(body, "Body")
    if business.tag != _q(spec.element):
        raise MappingInvalid(f"a {message_type} carries a {spec.element}, not {_label(business)}")

    legacy = etree.Element(ROOT, {"version": "1.0"})
    _to_legacy(head, legacy)
    legacy_body = etree.SubElement(legacy, LEGACY_NAMES["Body"])
    out, signature = _fields_to_legacy(business, legacy_body)
    if signature is not None:
        if not spec.doc_signed:
            raise MappingInvalid(f"a {spec.element} carries no document signature")
        signed = etree.tostring(business, with_tail=False)
        etree.SubElement(out, SIGNED_DOCUMENT).text = base64.b64encode(signed).decode("ascii")
    etree.indent(legacy, space="  ")
    return legacy


# -- legacy → canonical ----------------------------------------------------------------------
def _legacy_name(node: etree._Element, where: str) -> str:
    if not isinstance(node.tag, str):
        raise MappingInvalid(f"unexpected {_label(node)} in {where}")
    name = CANONICAL_NAMES.get(node.tag)
    if name is None or name == "Envelope":
        raise MappingInvalid(f"unknown element {_label(node)} in {where}")
    return name


def _to_canonical(node: etree._Element, parent: etree._Element, where: str) -> None:
    name = _legacy_name(node, where)
    label = LEGACY_NAMES[name]
    _attributes(node, (), label)
    out = etree.SubElement(parent, _q(name))
    if KINDS[name] is Kind.GROUP:
        for child in _elements(node):
            _to_canonical(child, out, label)
        return
    text = _leaf_text(node, label)
    convert = _TO_CANONICAL_TEXT.get(KINDS[name])
    if text is not None:
        out.text = convert(text, label) if convert else text
    elif convert is not None:
        raise MappingInvalid(f"{label} is empty")


def _fields_to_canonical(
    business: etree._Element, parent: etree._Element, element: str, doc_signed: bool
) -> tuple[etree._Element, etree._Element | None]:
    """The business element's fields in canonical form, and its SIGNED_DOCUMENT if any."""
    label = LEGACY_NAMES[element]
    if business.tag != label:
        raise MappingInvalid(f"this message type carries a {label}, not {_label(business)}")
    _attributes(business, ("Id",), label)
    out = etree.SubElement(parent, _q(element))
    if business.get("Id") is not None:
        out.set("Id", business.get("Id", ""))
    children = _elements(business)
    signed = children.pop() if children and children[-1].tag == SIGNED_DOCUMENT else None
    if signed is not None and not doc_signed:
        raise MappingInvalid(f"a {label} carries no {SIGNED_DOCUMENT}")
    for child in children:
        if child.tag == SIGNED_DOCUMENT:
            raise MappingInvalid(f"{SIGNED_DOCUMENT} must be the last child of {label}")
        _to_canonical(child, out, label)
    return out, signed


def to_canonical(root: etree._Element) -> etree._Element:
    """A legacy ``CDGI_MSG`` (its signature already removed) → a canonical envelope, unsigned.

    Raises NotInDialect (0003) for a type the dialect does not carry and MappingInvalid
    (0002) for a structure or a value that does not map exactly.
    """
    if root.tag != ROOT:
        raise MappingInvalid(f"not a {NAME} message: the root is {_label(root)}, not {ROOT}")
    _attributes(root, ("version",), ROOT)
    if root.get("version", "1.0") != "1.0":
        raise MappingInvalid(f"{ROOT} version {root.get('version')!r} is not 1.0")
    head, body = _head_and_body(root, "HEAD", "BODY", ROOT)
    message_type = _message_type(head, "MESSAGE_TYPE")
    spec = CATALOGUE[message_type]
    business = _one_business_element(body, "BODY")

    envelope = etree.Element(_q("Envelope"), {"version": "1.0"}, nsmap={"cdgi": _NS})
    _to_canonical(head, envelope, ROOT)
    canonical_body = etree.SubElement(envelope, _q("Body"))
    mapped, signed = _fields_to_canonical(business, canonical_body, spec.element, spec.doc_signed)
    if signed is not None:
        document = _signed_document(signed, spec.element)
        _same_fields(mapped, document, spec.element)
        canonical_body.replace(mapped, document)
    return envelope


# -- the signed document ---------------------------------------------------------------------
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_blank_text=False,
    collect_ids=False,
)


def _signed_document(node: etree._Element, element: str) -> etree._Element:
    """The canonical business element carried in SIGNED_DOCUMENT, parsed as harmless XML."""
    text = _leaf_text(node, SIGNED_DOCUMENT) or ""
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MappingInvalid(f"{SIGNED_DOCUMENT} is not base64") from None
    if not data:
        raise MappingInvalid(f"{SIGNED_DOCUMENT} is empty")
    try:
        document = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise MappingNotWellFormed(f"{SIGNED_DOCUMENT} is not well-formed XML: {e.msg}") from e
    info = document.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise MappingNotWellFormed(f"{SIGNED_DOCUMENT} holds a DTD")
    outside = (*document.itersiblings(preceding=True), *document.itersiblings())
    for found in (*outside, *document.iter()):
        if isinstance(found, etree._ProcessingInstruction | etree._Entity):
            raise MappingNotWellFormed(
                f"{SIGNED_DOCUMENT} holds a processing instruction or an entity reference"
            )
        tag = found.tag
        if isinstance(tag, str) and etree.QName(tag).namespace in _XINCLUDE_NS:
            raise MappingNotWellFormed(f"{SIGNED_DOCUMENT} holds an XInclude")
    if document.tag != _q(element):
        raise MappingInvalid(f"{SIGNED_DOCUMENT} holds {_label(document)}, not a {element}")
    last = [child for child in document if isinstance(child.tag, str)][-1:]
    if not last or last[0].tag != _SIGNATURE:
        raise MappingInvalid(f"the {element} in {SIGNED_DOCUMENT} is not signed")
    return document


def _same_fields(mapped: etree._Element, document: etree._Element, element: str) -> None:
    """The fields the back office read say what the signed document says, or 0002."""
    # Both sides go through the same legacy → canonical conversion, so the comparison is of
    # values, not of spellings (500000000 fen and 5000000.00 yuan, 0500000000 and 500000000).
    scratch = etree.Element("scratch")
    legacy, _signature = _fields_to_legacy(document, scratch)
    expected, _ = _fields_to_canonical(legacy, scratch, element, doc_signed=True)
    difference = _difference(mapped, expected)
    if difference is not None:
        raise MappingInvalid(f"the fields disagree with {SIGNED_DOCUMENT} at {difference}")


def _difference(a: etree._Element, b: etree._Element) -> str | None:
    """Where two trees this module built first differ (a legacy name), or None."""
    label = LEGACY_NAMES.get(etree.QName(b.tag).localname, _label(b))
    if a.tag != b.tag or dict(a.attrib) != dict(b.attrib):
        return label
    kids_a, kids_b = list(a), list(b)
    if len(kids_a) != len(kids_b):
        return label
    if not kids_a:
        return None if (a.text or "") == (b.text or "") else label
    for x, y in zip(kids_a, kids_b, strict=True):
        found = _difference(x, y)
        if found is not None:
            return found
    return None


# -- bytes -----------------------------------------------------------------------------------
def serialize(root: etree._Element) -> bytes:
    """The bytes that travel: GBK with an XML declaration, or NotExpressible (0001)."""
    for node in root.iter():
        where = _label(node)
        for value in (node.text, node.tail):
            if value:
                _gbk(value, where)
        for name, value in node.attrib.items():
            _gbk(value, f"the {name} of {where}")
    # lxml writes GBK through libxml2's iconv, which agrees with Python's codec on every
    # character GBK has (checked above): nothing is left for it to escape as &#...;.
    return etree.tostring(root, xml_declaration=True, encoding=ENCODING)
