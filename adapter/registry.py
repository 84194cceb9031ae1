"""The partner registry as the pipeline sees it: who a party is and which keys it signs with.

Read from the store and cached for a few seconds, so that ``cdgi partner add|disable`` takes
effect in a running daemon without a restart and without a query per message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from adapter.errors import ConfigurationError, TransientError
from store import repo

KINDS = ("PORTAL", "BANK", "INSURER", "CUSTOMS")
_PATTERNS = {
    "PORTAL": re.compile(r"^PORTAL$"),
    "BANK": re.compile(r"^BANK\.[A-Z0-9]{2,12}$"),
    "INSURER": re.compile(r"^INS\.[A-Z0-9]{2,12}$"),
    "CUSTOMS": re.compile(r"^CUS\.[0-9]{4}$"),
}


def kind_of(party_id: str) -> str | None:
    """The party kind an id belongs to by its pattern (CONTRACT §1), or None."""
    for kind, pattern in _PATTERNS.items():
        if pattern.match(party_id):
            return kind
    return None


def check_party_id(party_id: str, kind: str | None = None) -> str:
    """The kind of ``party_id``, or a ConfigurationError saying what a valid id looks like."""
    found = kind_of(party_id)
    if found is None:
        raise ConfigurationError(
            f"{party_id!r} is not a party id; use PORTAL, BANK.<code>, INS.<code> or CUS.<4 digits>"
        )
    if kind is not None and kind.upper() != found:
        raise ConfigurationError(f"{party_id} is a {found} id, not {kind.upper()}")
    return found


@dataclass(frozen=True)
class PartnerInfo:
    """A registered party with the certificates it may sign with."""

    id: str
    name: str
    kind: str
    dialect: str
    enabled: bool
    broker_user: str | None
    allow_sha1_until: date | None
    certificates: tuple[x509.Certificate, ...]

    def allows_sha1(self, on: datetime) -> bool:
        """Whether this partner may still sign with SHA-1 on ``on``."""
        return self.allow_sha1_until is not None and on.date() <= self.allow_sha1_until


class Registry:
    """Cached lookups of partners; refreshed every ``ttl`` seconds."""

    def __init__(
        self, engine: repo.Engine, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._clock = clock
        self._loaded_at = float("-inf")
        self._partners: dict[str, PartnerInfo] = {}

    def get(self, party_id: str | None) -> PartnerInfo | None:
        """The partner registered as ``party_id`` (enabled or not), or None."""
        if not party_id:
            return None
        self._refresh()
        return self._partners.get(party_id)

    def all(self) -> list[PartnerInfo]:
        """Every registered partner."""
        self._refresh()
        return sorted(self._partners.values(), key=lambda p: p.id)


    def _refresh(self) -> None:
        now = self._clock()
        if now - self._loaded_at < self._ttl:
            return
        try:
            self._partners = load_partners(self._engine)
        except TransientError:
            if self._loaded_at == float("-inf"):
                raise  # nothing known yet: the caller pauses
            # The store is away: the partners known a moment ago serve until it is back
            # (whoever needs the store itself meets the outage there), tried again after ttl.
        self._loaded_at = now


def load_partners(engine: repo.Engine) -> dict[str, PartnerInfo]:
    """Every partner with its certificates, straight from the store."""
    out = {}
    for p, pems in repo.load_partners(engine):
        out[p.id] = PartnerInfo(
            id=p.id,
            name=p.name,
            kind=p.kind,
            dialect=p.dialect,
            enabled=p.enabled,
            broker_user=p.broker_user,
            allow_sha1_until=p.allow_sha1_until,
            certificates=tuple(x509.load_pem_x509_certificate(pem.encode()) for pem in pems),
        )
    return out


def load_certificate(data: bytes) -> x509.Certificate:
    """A PEM or DER certificate, or a ConfigurationError saying how to get one."""
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError:
            raise ConfigurationError(
                "the certificate is neither PEM nor DER X.509; export it with "
                "`openssl x509 -in CERT -outform PEM`"
            ) from None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, lower-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def pem(cert: x509.Certificate) -> str:
    """The certificate as PEM text."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()
