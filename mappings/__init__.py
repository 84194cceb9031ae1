"""Dialect <-> canonical translation (CONTRACT §7): pure functions, no I/O.

A partner's dialect is named in the partner registry. ``canonical`` is the identity; further
dialects register a module here with ``to_canonical(bytes) -> bytes`` and
``from_canonical(bytes) -> bytes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """How one dialect maps to and from the canonical form, and its wire encoding."""

    name: str
    encoding: str
    to_canonical: Callable[[bytes], bytes]
    from_canonical: Callable[[bytes], bytes]


def _identity(data: bytes) -> bytes:
    return data


CANONICAL = Dialect("canonical", "utf-8", _identity, _identity)

_REGISTRY: dict[str, Dialect] = {CANONICAL.name: CANONICAL}


def get(name: str) -> Dialect:
    """The dialect registered under ``name``; KeyError names the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dialect {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    """Every dialect the adapter can speak."""
    return sorted(_REGISTRY)
