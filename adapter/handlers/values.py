"""Reading typed values out of a verified business element (the XSD has checked the forms)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from lxml import etree

from adapter.envelope import field


def req(el: etree._Element, name: str) -> str:
    """A required field's text (the schema guarantees it is there)."""
    value = field(el, name)
    if value is None:
        raise KeyError(name)  # a defect: the XSD requires it
    return value


def opt(el: etree._Element, name: str) -> str | None:
    """An optional field's text."""
    return field(el, name)


def money(el: etree._Element, name: str) -> Decimal:
    """A required amount, exact."""
    return Decimal(req(el, name))


def money_opt(el: etree._Element, name: str) -> Decimal | None:
    """An optional amount or rate, exact."""
    value = field(el, name)
    return Decimal(value) if value is not None else None


def day(el: etree._Element, name: str) -> date:
    """A required xs:date."""
    return date.fromisoformat(req(el, name))


def day_opt(el: etree._Element, name: str) -> date | None:
    """An optional xs:date."""
    value = field(el, name)
    return date.fromisoformat(value) if value is not None else None


def moment(el: etree._Element, name: str) -> datetime:
    """A required xs:dateTime with its offset."""
    return datetime.fromisoformat(req(el, name).replace("Z", "+00:00"))


def moment_opt(el: etree._Element, name: str) -> datetime | None:
    """An optional xs:dateTime."""
    value = field(el, name)
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value is not None else None


def flag(el: etree._Element, name: str) -> bool:
    """An optional xs:boolean, false when absent."""
    return (field(el, name) or "false") in ("true", "1")
