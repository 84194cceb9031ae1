"""Handlers: one verb per inbound message type, in an explicit registry.

A handler reads the verified business element, asks ``adapter.domain`` what the message
means, writes the state through the repository and returns what to answer and what to send
on. It raises a ``PermanentError`` to refuse; everything it wrote is then rolled back.

Modules by business area: ``enterprise`` (cards, grants, credit, partner receipts),
``contracts`` (agreements, authorizations), ``quotas``, ``policies``, ``ledger``, ``claims``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lxml import etree
from sqlmodel import SQLModel

from adapter.domain.enterprise import Card, SealView, check_seal, check_signing_card
from adapter.errors import MustWait, SignerNotRegistered
from adapter.registry import PartnerInfo, Registry
from store.repo import Repo


@dataclass(frozen=True)
class Outgoing:
    """A message to send: its business element and where it goes."""

    receiver_id: str
    message_type: str
    business: etree._Element
    uscc: str | None = None


@dataclass
class Result:
    """What a handler decided: the receipt's status, code and text, and messages to send on."""

    status: int = 1
    info: str = "accepted and processed"
    uscc: str | None = None
    outgoing: list[Outgoing] = field(default_factory=list)
    journal_status: str | None = None
    code: str = "0000"  # a positive receipt may still carry a warning code (ledger)


@dataclass(frozen=True)
class Context:
    """Everything a handler may use for one message."""

    repo: Repo
    registry: Registry
    sender: PartnerInfo
    message_id: str
    business: etree._Element
    now: datetime
    on: date  # the business day the sender signed on (SendTime in China time)
    verify_document: Callable[[etree._Element, list[tuple[str, str]]], str] = field(repr=False)
    first_seen: datetime | None = None  # when the message first arrived (it may have waited)
    grace_s: float = 0.0  # how long a message may wait for the one it depends on

    def wait_for(self, what: str) -> None:
        """Keep the message to handle it again later, unless it has waited long enough.

        For messages that can overtake their cause on the bus (a restore its deduction):
        DESIGN retries them for a bounded time before flagging them.
        """
        waited = (self.now - (self.first_seen or self.now)).total_seconds()
        if waited < self.grace_s:
            raise MustWait(f"waiting for {what} (for up to {self.grace_s:g} s)")

    def signing_card(self, uscc: str, role: str, permission: str | None = None) -> Card:
        """Verify the document signature with the enterprise's bound cards; return the signer.

        The certificate is taken from the cards bound to ``uscc`` (CDGI101), never from the
        signature's KeyInfo; the card must have ``role`` and, for operators, ``permission``.
        """
        from store.models import BoundCard

        rows: list[BoundCard] = list(self.repo.cards_of(uscc))
        if not rows:
            raise SignerNotRegistered(f"no card is bound to enterprise {uscc}; bind one (CDGI101)")
        try:
            fingerprint = self.verify_document(
                self.business, [(row.card_no, row.certificate_pem) for row in rows]
            )
        except SignerNotRegistered as e:
            raise SignerNotRegistered(
                f"the document is not signed by a card bound to enterprise {uscc} ({e.message})"
            ) from e
        row = next(r for r in rows if r.fingerprint == fingerprint)
        card = Card(
            card_no=row.card_no, uscc=row.uscc, role=row.role, valid_from=row.valid_from,
            valid_to=row.valid_to, revoked=row.revoked,
            permissions=frozenset(p for p in row.permissions.split(",") if p),
        )
        check_signing_card(card, uscc=uscc, role=role, permission=permission, on=self.on)
        return card

    def check_seal(self, seal_id: str, card: Card) -> None:
        """The named seal is bound to the signing card's holder and valid on the signing day."""
        from store.models import Seal

        row = self.repo.get(Seal, seal_id)
        view = (SealView(row.seal_id, row.card_no, row.valid_from, row.valid_to)
                if row is not None else None)
        check_seal(view, seal_id, card, self.on)

    def partner(self, party_id: str) -> PartnerInfo | None:
        """A registered, enabled partner, or None."""
        found = self.registry.get(party_id)
        return found if found is not None and found.enabled else None


def notify(ctx: Context, *, uscc: str, subject: str, subject_no: str, status: str,
           reason: str | None = None) -> Outgoing:
    """Record a status the enterprise should see and the CDGI505 that tells the portal."""
    from adapter import documents

    ctx.repo.progress(uscc, subject, subject_no, status, reason, ctx.message_id, ctx.now)
    notice = documents.status_notice(uscc=uscc, subject=subject, subject_no=subject_no,
                                     status=status, reason=reason, time=ctx.now)
    return Outgoing("PORTAL", "CDGI505", notice, uscc=uscc)


Handler = Callable[[Context], Result]
HANDLERS: dict[str, Handler] = {}


Key = tuple[type[SQLModel], str | None]  # a model and its key column (None: primary key)


@dataclass(frozen=True)
class Reads:
    """What a handler will look up, named by the business elements that carry the keys:
    ``rows`` by a unique key (``{"QuotaNo": Quota}`` by primary key, ``{"PolicyNo":
    Policy.policy_no}``), ``lists`` whole (``{"USCC": BoundCard.uscc}``: an enterprise's
    cards; ``{"USCC": (BoundCard.uscc, Authorization.uscc)}``: two lists by one key), and
    ``follow`` by a key that rows read ahead carry: a row by primary key (``{Policy.uscc:
    Enterprise}``: the enterprise of each policy) or a list (``{Quota.uscc: BoundCard.uscc}``:
    the cards of each quota's enterprise). The pipeline reads a batch's keys ahead, one query
    per table and column (``Repo.read_ahead``); a lookup not declared still works, with a
    query of its own."""

    rows: tuple[tuple[str, Key], ...] = ()
    lists: tuple[tuple[str, Key], ...] = ()
    follow: tuple[tuple[Key, Key], ...] = ()


READS: dict[str, Reads] = {}


def _key(target: Any) -> Key:
    """``Quota`` → ``(Quota, None)``; ``Policy.policy_no`` → ``(Policy, "policy_no")``."""
    return (target, None) if isinstance(target, type) else (target.class_, target.key)


def _keys(declared: dict[str, Any] | None) -> tuple[tuple[str, Key], ...]:
    """Each element name with each key it carries (a target or a tuple of targets)."""
    return tuple((name, _key(target)) for name, targets in (declared or {}).items()
                 for target in (targets if isinstance(targets, tuple) else (targets,)))


def handles(message_type: str, *, rows: dict[str, Any] | None = None,
            lists: dict[str, Any] | None = None,
            follow: dict[Any, Any] | None = None) -> Callable[[Handler], Handler]:
    """Register a handler for ``message_type``, with the lookups it makes (``Reads``)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[message_type] = fn
        READS[message_type] = Reads(
            _keys(rows), _keys(lists),
            tuple((_key(by), _key(target)) for by, target in (follow or {}).items()))
        return fn

    return register


def load() -> dict[str, Handler]:
    """Import every handler module (they register themselves) and return the registry."""
    from adapter.handlers import (  # noqa: F401
        claims,
        contracts,
        enterprise,
        ledger,
        policies,
        quotas,
    )

    return HANDLERS
