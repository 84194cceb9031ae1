"""Dialect <-> canonical translation (CONTRACT §7): pure functions on lxml trees, no I/O.

A partner registered with a dialect other than ``canonical`` speaks its own format; the
adapter maps it at the edge. The partner registry decides the dialect per partner
(``cdgi partner add INS.XYZ --dialect legacy-gbk``); the pipeline looks it up with ``get``:

- inbound, it parses the bytes with the dialect's ``encodings``, verifies the envelope
  signature on the dialect's own tree, and hands what the signature covered (the signature
  removed) to ``to_canonical``, which returns a canonical ``cdgi:Envelope`` without
  ``ds:Signature``;
- outbound, it gives ``from_canonical`` the canonical envelope without its envelope signature,
  signs the dialect tree it gets back, and sends ``serialize`` of the signed tree.

``canonical`` is the identity. ``legacy-gbk`` (``mappings.legacy_gbk``) is an insurer
back-office format. A mapping refuses with the ``MappingError`` family (``mappings.fields``):
``NotExpressible`` / ``MappingNotWellFormed`` 0001, ``MappingInvalid`` 0002, ``NotInDialect``
0003; it never rounds or replaces a value silently.

How to add a dialect:

1. Write ``mappings/<name>.py`` with ``to_canonical(root) -> root``,
   ``from_canonical(root) -> root`` and ``serialize(root) -> bytes``: pure functions over
   lxml trees (only the standard library, lxml, ``schemas``, ``adapter.errors`` and
   ``mappings.fields``), raising the ``MappingError`` family. Use ``mappings.fields.KINDS``
   for what each canonical field holds.
2. Add one line to ``_REGISTRY`` below:
   ``Dialect("<name>", ("<ENCODING>",), mod.to_canonical, mod.from_canonical, mod.serialize)``.
3. Add golden files and round-trip tests to ``tests/unit/test_mappings.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from mappings import legacy_gbk
from mappings.fields import (
    MappingError,
    MappingInvalid,
    MappingNotWellFormed,
    NotExpressible,
    NotInDialect,
)

__all__ = [
    "CANONICAL",
    "LEGACY_GBK",
    "Dialect",
    "MappingError",
    "MappingInvalid",
    "MappingNotWellFormed",
    "NotExpressible",
    "NotInDialect",
    "get",
    "names",
]


@dataclass(frozen=True)
class Dialect:
    """How one dialect maps to and from the canonical form, and the bytes it travels as."""

    name: str
    encodings: tuple[str, ...]
    """The XML encodings the hardened parser accepts from a partner speaking this dialect."""
    to_canonical: Callable[[etree._Element], etree._Element]
    """Dialect root, its signature removed → canonical ``cdgi:Envelope`` without ds:Signature."""
    from_canonical: Callable[[etree._Element], etree._Element]
    """Canonical envelope without its envelope signature → dialect root, unsigned."""
    serialize: Callable[[etree._Element], bytes]
    """The bytes that travel, XML declaration included."""


def _identity(root: etree._Element) -> etree._Element:
    return root


def _utf8(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


CANONICAL = Dialect("canonical", ("UTF-8",), _identity, _identity, _utf8)
LEGACY_GBK = Dialect(
    legacy_gbk.NAME,
    (legacy_gbk.ENCODING,),
    legacy_gbk.to_canonical,
    legacy_gbk.from_canonical,
    legacy_gbk.serialize,
)

_REGISTRY: dict[str, Dialect] = {dialect.name: dialect for dialect in (CANONICAL, LEGACY_GBK)}


def get(name: str) -> Dialect:
    """The dialect registered under ``name``; KeyError names the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dialect {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    """Every dialect the adapter can speak."""
    return sorted(_REGISTRY)
