"""One message's way through (DESIGN.md): bytes in, one transaction of effects out.

    size ─► hardened parse ─► sender ─► type ─► XSD ─► envelope signature ─► dedupe
         ─► handler ─► journal + state + signed outbox rows + inbox, in ONE transaction

``Pipeline.process_batch`` handles a batch of deliveries in one transaction; one refusal never
undoes its neighbours (a handler that fails sends the batch round again with a savepoint per
message). The card signs in a thread of its own while the next message is checked; the
batch's rows are written once every signature is in. Permanent errors become a journal row
and a signed negative receipt; transient errors (store, card) propagate so that the caller
keeps the deliveries unacked and retries the batch; nothing else is lost.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from cryptography import x509
from lxml import etree

import mappings
import schemas
from adapter.domain.identifiers import is_valid_uscc
from adapter.envelope import (
    Head,
    build_envelope,
    build_receipt,
    business_element,
    canonical_digest,
    contract_time,
    contract_zone,
    new_message_id,
    parse,
    q,
    raw_digest,
    read_head,
    serialize,
)
from adapter.errors import (
    CdgiError,
    ConfigurationError,
    ConflictingDuplicate,
    MustWait,
    PermanentError,
    SchemaInvalid,
    SignatureCoverage,
    SignerNotRegistered,
    StoreUnavailable,
    TransientError,
    UnknownMessageType,
)
from adapter.handlers import READS, Context, Outgoing, Result, load
from adapter.observe import Metrics
from adapter.registry import PartnerInfo, Registry, fingerprint
from adapter.settings import Settings
from card import Signer, Unsigned, prepare_envelope, verify_document, verify_envelope
from store.db import UnitOfWork, as_store_error, as_utc, is_conflict, utcnow
from store.models import Waiting
from store.recorder import Later
from store.repo import PublishResult, Ref, Repo, Seen

log = structlog.get_logger("cdgi.pipeline")

_UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
_TYPE = re.compile(r"^CDGI[0-9]{3}$")
RECEIPT = "CDGI900"
_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"


class _Redo(Exception):
    """A handler failed in a batch run without savepoints: run the batch again with them."""


class InternalError(PermanentError):
    """A defect of ours met while handling a message: refused, kept whole for replay."""

    code = "3000"


@dataclass(frozen=True)
class Delivery:
    """One message as the broker delivered it."""

    body: bytes
    routing_key: str
    tag: int = 0
    amqp_message_id: str | None = None
    user_id: str | None = None
    redelivered: bool = False
    replay: bool = False  # an operator's `cdgi replay`: look at the bytes afresh
    # A message that waited for the one it depends on (``store.models.Waiting``):
    waiting_id: int | None = None
    journal_id: int | None = None
    first_seen: datetime | None = None
    attempts: int = 0


@dataclass
class _Trace:
    """What we have learnt about a message so far (for the journal and the receipt)."""

    delivery: Delivery
    head: Head | None = None
    sender: PartnerInfo | None = None
    verified: bool = False
    digest: str | None = None
    canonical: bytes | None = None
    stages: list[str] = field(default_factory=list)
    handling: bool = False

    @property
    def message_id(self) -> str | None:
        mid = self.head.message_id if self.head else None
        return mid if mid and _UUID.match(mid) else None

    @property
    def message_type(self) -> str | None:
        mtype = self.head.message_type if self.head else None
        return mtype if mtype and _TYPE.match(mtype) else None


@dataclass(frozen=True)
class Outbound:
    """A signed message in the outbox, ready to publish (claimed by the process that made it)."""

    outbox_id: int
    receiver_id: str
    message_id: str
    message_type: str
    correlation_id: str | None
    body: bytes
    journal_id: int | None = None  # its outbound journal row


def _outbound(ref: Ref) -> Outbound:
    v = ref.values
    assert ref.id is not None
    return Outbound(ref.id, v["receiver_id"], v["message_id"], v["message_type"],
                    v["correlation_id"], v["body"], v["journal_id"])


@dataclass(frozen=True)
class BatchResult:
    """What a batch produced: outbox rows to publish now, and what happened per message."""

    outbound: list[Outbound]
    outcomes: list[tuple[str | None, str, str | None]]  # (message id, journal status, code)


class Pipeline:
    """Checks, decides and records inbound messages; signs what goes out."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        signer: Signer,
        *,
        owner: str,
        clock: Callable[[], datetime] = utcnow,
        lease_s: float = 60.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.registry = registry
        self.signer = signer
        self.owner = owner
        self.clock = clock
        self.lease_s = lease_s
        self.handlers = load()
        # The card signs in a thread of its own (python-pkcs11 lets go of the GIL while the
        # card works), so that the next message is checked and handled meanwhile; the
        # batch's rows wait for their signatures only when they are written.
        self._card = ThreadPoolExecutor(max_workers=1, thread_name_prefix="card")
        self._signing: list[Future[bytes]] = []

    # -- batches -------------------------------------------------------------------------
    def process_batch(self, engine: Any, deliveries: Sequence[Delivery],
                      published: Sequence[PublishResult] = ()) -> BatchResult:
        """Process ``deliveries`` in one transaction; raises TransientError to retry them all.

        ``published``: the broker's answers for earlier batches' messages, marked in the same
        transaction (a commit of their own would cost as much as the batch's).

        A batch first runs without savepoints: a message refused before its handler ran has
        written nothing but buffered rows, which are dropped. If a handler fails (it may have
        written part of its state), the batch is rolled back and run again with a savepoint
        around each message. Savepoints cost two round trips a message, and refusals by a
        handler are rare.
        """
        careful = False
        for attempt in range(1, 5):
            try:
                return self._batch(engine, deliveries, published, careful=careful)
            except _Redo:
                self.metrics.retries.labels("savepoints").inc()
                careful = True
            except Exception as e:
                if not is_conflict(e):
                    raise
                # Another process recorded one of these messages first (it was redelivered
                # to both), or the two deadlocked on rows: again, now that its rows are
                # visible (a duplicate is then answered as one).
                self.metrics.retries.labels("conflict").inc()
                log.info("a concurrent process got to a row of this batch first; again",
                         attempt=attempt)
                careful = True
        raise StoreUnavailable("the batch kept meeting concurrent writers; it is retried")

    def _batch(self, engine: Any, deliveries: Sequence[Delivery],
               published: Sequence[PublishResult], *, careful: bool) -> BatchResult:
        try:
            return self._batch_once(engine, deliveries, published, careful=careful)
        finally:
            # A failed batch's signatures are of no use: those not begun are not made.
            for future in self._signing:
                future.cancel()
            self._signing.clear()

    def _batch_once(self, engine: Any, deliveries: Sequence[Delivery],
                    published: Sequence[PublishResult], *, careful: bool) -> BatchResult:
        refs: list[Ref] = []
        outcomes: list[tuple[str | None, str, str | None]] = []
        with UnitOfWork(engine) as uow:
            repo = Repo(uow.session)
            # Bad bytes seen before are answered as before; one query tells which are new.
            hinted = [(d.routing_key, mid) for d in deliveries
                      if (mid := _message_id_hint(d.body)) is not None]
            repo.look_ahead([_bytes_key(d) for d in deliveries if not d.replay] + hinted,
                            messages=hinted)
            _read_ahead(repo, deliveries)
            for delivery in deliveries:
                ids, outcome = self._process(repo, delivery, careful)
                refs += ids
                outcomes.append(outcome)
            with self.metrics.stage("commit"):
                repo.mark_published(published, self.settings.relay_interval_s)
                repo.flush()  # the handlers' rows too (a savepoint had written a careful batch's)
                uow.commit()
        return BatchResult([_outbound(ref) for ref in refs], outcomes)

    def _process(
        self, repo: Repo, delivery: Delivery, careful: bool = True
    ) -> tuple[list[Ref], tuple[str | None, str, str | None]]:
        trace = _Trace(delivery)
        started = time.perf_counter()
        error: PermanentError | None = None
        # A refusal undoes everything the message had written (state: the savepoint, or the
        # whole batch again with savepoints; journal and outbox rows: the recorder), then
        # its refusal is recorded.
        if delivery.waiting_id is not None and not repo.take_waiting(delivery.waiting_id):
            return [], (None, "TAKEN", None)  # another process is handling it
        mark = repo.mark()
        code = None
        try:
            ids, status = self._guarded(repo, trace, careful)
            if status == "DUPLICATE" and delivery.journal_id is not None:
                repo.update_journal(delivery.journal_id, status="DUPLICATE",
                                    info="handled through another delivery of the message")
        except (TransientError, ConfigurationError, _Redo):
            raise
        except MustWait as e:
            repo.undo(mark)
            ids, status = self._park(repo, trace, e), "WAITING"
        except PermanentError as e:
            error = e
        except CdgiError as e:
            raise TransientError(f"{type(e).__name__}: {e.message}") from e
        except Exception as e:  # a defect of ours: refuse, keep the bytes, say so loudly
            store_error = as_store_error(e)
            if store_error is not None:
                raise store_error from e
            if is_conflict(e):
                raise
            log.exception(
                "internal error while handling a message",
                message_id=trace.message_id,
                routing_key=delivery.routing_key,
            )
            error = InternalError(f"internal error ({type(e).__name__}); the operator was alerted")
        if error is not None:
            repo.undo(mark)
            ids, status, code = self._refuse(repo, trace, error), "REFUSED", error.code
        partner = trace.sender.id if trace.sender else delivery.routing_key
        self.metrics.messages_in.labels(trace.message_type or "Unknown", partner, status).inc()
        self.metrics.stage_seconds.labels("message").observe(time.perf_counter() - started)
        log.info(
            "message handled",
            message_id=trace.message_id,
            correlation_id=trace.head.correlation_id if trace.head else None,
            type=trace.message_type,
            partner=partner,
            status=status,
            code=code,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return ids, (trace.message_id, status, code)

    def _guarded(self, repo: Repo, trace: _Trace, careful: bool) -> tuple[list[Ref], str]:
        """``_accept`` in a savepoint (careful), or bare, asking for a redo if its handler
        failed after it may have written."""
        if careful:
            with repo.session.begin_nested():
                return self._accept(repo, trace)
        try:
            return self._accept(repo, trace)
        except (TransientError, ConfigurationError):
            raise
        except Exception as e:
            if trace.handling and not is_conflict(e) and as_store_error(e) is None:
                raise _Redo from e
            raise

    # -- the accepted path ---------------------------------------------------------------
    def _accept(self, repo: Repo, trace: _Trace) -> tuple[list[Ref], str]:
        d, s = trace.delivery, self.settings
        # Until the signature is verified, answers go to whoever owns the routing key.
        trace.sender = self.registry.get(d.routing_key)
        seen = None if d.replay else repo.inbox(*_bytes_key(d))
        if seen is not None:  # the very same bad bytes again: answer as before
            return self._duplicate(
                repo, seen, trace, "redelivery of a refused message"
            ), "DUPLICATE"

        dialect = self._dialect(trace.sender)
        with self.metrics.stage("parse"):
            root = parse(d.body, max_bytes=s.max_bytes, max_depth=s.max_depth,
                         encodings=dialect.encodings)
        trace.stages.append(f"parsed {len(d.body)} bytes")
        now = self.clock()
        if dialect is not mappings.CANONICAL:
            root = self._from_dialect(root, dialect, trace, now)
        trace.head = head = read_head(root)
        if root.tag != q("Envelope") or not head.sender_id:
            # No sender to look up: the message is not of the contract's form at all.
            raise SchemaInvalid(f"the root is not a {q('Envelope')} with a Head/SenderId")
        sender = self._check_sender(head, d)
        trace.stages.append(f"sender {sender.id} registered")

        last = root[-1] if len(root) else None
        if last is None or last.tag != _SIGNATURE:
            raise SignatureCoverage("the envelope signature is missing or not its last child")

        spec = schemas.spec_for(head.message_type or "")
        if not spec.inbound or sender.kind not in spec.senders:
            raise UnknownMessageType(f"{spec.type} is not accepted from a {sender.kind}")
        with self.metrics.stage("schema"):
            schemas.validate(root)
        for node in root.iter(q("USCC")):
            if not is_valid_uscc((node.text or "").strip()):
                raise SchemaInvalid(f"USCC {node.text} has a wrong check character (GB 32100)")
        trace.stages.append("schema valid")

        signed = root
        if not trace.verified:
            with self.metrics.stage("verify"):
                verified = verify_envelope(
                    root, sender.certificates, allow_sha1=sender.allows_sha1(now), at=now
                )
            trace.sender, trace.verified = sender, True
            signed = verified.signed
            trace.stages.append(
                f"envelope signature valid ({_subject(verified.certificate)})"
            )

        trace.digest = digest = canonical_digest(signed)
        message_id = head.message_id or ""
        seen = repo.inbox(sender.id, message_id)
        if seen is not None:
            if seen.digest == digest:
                return self._duplicate(repo, seen, trace, "duplicate delivery"), "DUPLICATE"
            raise ConflictingDuplicate(
                f"MessageId {message_id} was seen before with different content"
            )
        if d.waiting_id is None:
            waiting = repo.waiting_for(sender.id, message_id)
            if waiting is not None:
                # Another copy of a message that waits: the waiting one is handled on its next
                # try (and answered then), even once its cause is in; handling this one too
                # would journal it twice.
                repo.add_event(waiting, "dedupe", "DUPLICATE", None,
                               "delivered again while it waits; it keeps waiting")
                return [], "WAITING"
        trace.stages.append("new message")

        business = business_element(signed)
        assert business is not None  # the schema guarantees it
        handler = self.handlers.get(spec.type)
        if handler is None:
            raise UnknownMessageType(f"{spec.type} is not handled by this adapter")
        ctx = Context(
            repo=repo,
            registry=self.registry,
            sender=sender,
            message_id=message_id,
            business=business,
            now=now,
            on=self._business_day(head),
            verify_document=lambda el, cards: self._verify_document(el, cards, now),
            first_seen=as_utc(d.first_seen),
            grace_s=s.order_grace_s,
        )
        # The handler's writes and what it sends are one unit (the message's savepoint): if
        # sending cannot be prepared (a receiver's dialect cannot express a value, say), the
        # state change is undone too.
        trace.handling = True  # from here on the message may have written state
        with self.metrics.stage("handle"):
            result = handler(ctx)
        if result.code.startswith("28"):
            self.metrics.discrepancies.labels(result.code).inc()
        trace.stages.append(f"handled: {result.info}")
        ids = self._record(repo, trace, result)
        return ids, _journal_status(result)

    def _dialect(self, partner: PartnerInfo | None) -> mappings.Dialect:
        return mappings.get(partner.dialect) if partner is not None else mappings.CANONICAL

    def _from_dialect(
        self, root: etree._Element, dialect: mappings.Dialect, trace: _Trace, now: datetime
    ) -> etree._Element:
        """Verify the bytes that travelled, then map what was signed to the canonical form."""
        partner = trace.sender
        if partner is None or not partner.enabled:
            raise SignerNotRegistered(f"{trace.delivery.routing_key} is not a registered partner")
        verified = verify_envelope(
            root, partner.certificates, allow_sha1=partner.allows_sha1(now), at=now
        )
        trace.verified = True
        trace.stages.append(
            f"{dialect.name} signature valid ({_subject(verified.certificate)})"
        )
        canonical = dialect.to_canonical(verified.signed)
        canonical.append(deepcopy(root[-1]))  # the travelling signature, kept as evidence
        trace.canonical = serialize(canonical)
        trace.stages.append(f"mapped from {dialect.name}")
        return canonical

    def _check_sender(self, head: Head, d: Delivery) -> PartnerInfo:
        """The claimed sender is registered, enabled, the routing key's owner and ours to hear."""
        sender = self.registry.get(head.sender_id)
        if sender is None:
            raise SignerNotRegistered(f"sender {head.sender_id or '(none)'} is not registered")
        if not sender.enabled:
            raise SignerNotRegistered(f"sender {sender.id} is disabled")
        if head.sender_id != d.routing_key:
            raise SignerNotRegistered(
                f"SenderId {head.sender_id} does not match the routing key {d.routing_key}"
            )
        if d.user_id and sender.broker_user and d.user_id != sender.broker_user:
            raise SignerNotRegistered(
                f"published by broker user {d.user_id}, not the one registered for {sender.id}"
            )
        if head.receiver_id is not None and head.receiver_id != self.settings.party_id:
            raise SignerNotRegistered(f"ReceiverId {head.receiver_id} is not this adapter")
        return sender

    def _record(self, repo: Repo, trace: _Trace, result: Result) -> list[Ref]:
        head = trace.head
        assert head is not None and trace.sender is not None
        status = _journal_status(result)
        warning = result.code if result.code != "0000" else None
        row = self._journal_in(repo, trace, status, warning, result.info, uscc=result.uscc)
        ids: list[Ref] = []
        for out in result.outgoing:
            ids.append(self._send(repo, out, correlation_id=head.message_id, uscc=result.uscc))
        receipt_id = None
        if head.message_type != RECEIPT:
            receipt_id = self._send_receipt(
                repo, trace, trace.sender.id, result.status, result.code, result.info
            )
            ids.append(receipt_id)
        repo.add_inbox(sender_key=trace.sender.id, message_key=head.message_id or "",
                       digest=trace.digest or "", journal_id=row,
                       receipt_outbox_id=receipt_id)
        return ids

    def _duplicate(self, repo: Repo, seen: Seen, trace: _Trace, why: str) -> list[Ref]:
        repo.add_event(
            seen.journal_id, "dedupe", "DUPLICATE", None, f"{why}; original receipt sent again"
        )
        if seen.receipt_outbox_id is None:
            return []
        again = repo.resend(seen.receipt_outbox_id, self.owner, self.lease_s)
        return [again] if again is not None else []

    def _business_day(self, head: Head) -> date:
        """The day the sender signed on, in the contract's time zone (rules judge by it)."""
        zone = contract_zone(self.settings.timezone_offset)
        try:
            sent = datetime.fromisoformat((head.send_time or "").replace("Z", "+00:00"))
        except ValueError:
            return self.clock().astimezone(zone).date()
        return sent.astimezone(zone).date()

    @staticmethod
    def _verify_document(
        element: etree._Element, cards: list[tuple[str, str]], now: datetime
    ) -> str:
        """Verify a document signature against the enterprise's cards; the signer's fingerprint."""
        certs = [_certificate(pem_text) for _, pem_text in cards]
        return fingerprint(verify_document(element, certs, at=now).certificate)

    # -- the waiting path ----------------------------------------------------------------
    def _park(self, repo: Repo, trace: _Trace, wait: MustWait) -> list[Ref]:
        """Keep a message that came before its cause; no receipt until it is handled."""
        d = trace.delivery
        assert trace.sender is not None and trace.message_id is not None
        now = self.clock()
        first = as_utc(d.first_seen) or now
        until = first + timedelta(seconds=self.settings.order_grace_s)
        attempts = d.attempts + 1
        retry_at = min(now + timedelta(seconds=min(2.0 ** (attempts - 1), 5.0)), until)
        journal = self._journal_in(repo, trace, "WAITING", None,
                                   f"{wait.message}; try {attempts}")
        repo.flush()  # the waiting row points at the journal row
        repo.park(Waiting(
            journal_id=journal if isinstance(journal, int) else journal.id,
            sender_id=trace.sender.id, message_id=trace.message_id, routing_key=d.routing_key,
            body=d.body, reason=wait.message, attempts=attempts, first_seen=first,
            retry_at=retry_at, until=until,
        ))
        log.info("message waits", message_id=trace.message_id, reason=wait.message,
                 attempts=attempts, until=until.isoformat())
        return []

    # -- the refused path ----------------------------------------------------------------
    def _refuse(self, repo: Repo, trace: _Trace, error: PermanentError) -> list[Ref]:
        d = trace.delivery
        info = error.message
        row = self._journal_in(repo, trace, "REFUSED", error.code, info)
        ids: list[Ref] = []
        reply_to = trace.sender
        if trace.message_type != RECEIPT and reply_to is not None:
            receipt = self._send_receipt(repo, trace, reply_to.id, -1, error.code, info)
            ids.append(receipt)
        else:
            receipt = None
        # A verified message refused by a rule is answered the same way forever; anything else
        # is keyed by its bytes, so that `cdgi replay` can look at it afresh after a fix.
        if trace.verified and not isinstance(error, ConflictingDuplicate | InternalError):
            sender_key, message_key = trace.sender.id, trace.message_id or ""  # type: ignore[union-attr]
        else:
            sender_key, message_key = _bytes_key(d)
        if repo.inbox(sender_key, message_key) is not None:
            return ids  # a replay of bytes refused before: journaled again, not keyed twice
        repo.add_inbox(sender_key=sender_key, message_key=message_key,
                       digest=trace.digest or raw_digest(d.body), journal_id=row,
                       receipt_outbox_id=receipt)
        return ids

    # -- journal and outbox --------------------------------------------------------------
    def _journal_in(
        self,
        repo: Repo,
        trace: _Trace,
        status: str,
        code: str | None,
        info: str,
        *,
        uscc: str | None = None,
    ) -> Ref | int:
        d, head = trace.delivery, trace.head
        detail = {"stages": trace.stages, "verified": trace.verified, "redelivered": d.redelivered}
        if code:
            detail["refused"] = f"{code} {info}"
        if d.journal_id is not None:  # a message that waited: its own row tells the end
            repo.update_journal(d.journal_id, status=status, code=code, info=info, uscc=uscc,
                                digest=trace.digest, canonical=trace.canonical)
            detail["tries"] = d.attempts + 1
            repo.add_event(d.journal_id, "inbound", status, code,
                           json.dumps(detail, ensure_ascii=False))
            return d.journal_id
        row = repo.add_journal(
            direction="IN",
            message_id=(head.message_id[:64] if head and head.message_id else d.amqp_message_id),
            message_type=trace.message_type,
            sender_id=(head.sender_id[:32] if head and head.sender_id else None),
            receiver_id=(head.receiver_id[:32] if head and head.receiver_id else None),
            correlation_id=(head.correlation_id[:64] if head and head.correlation_id else None),
            uscc=uscc,
            routing_key=d.routing_key[:255],
            digest=trace.digest,
            size=len(d.body),
            raw=d.body,
            canonical=trace.canonical,
            status=status,
            code=code,
            info=info,
        )
        repo.add_event(row, "inbound", status, code, json.dumps(detail, ensure_ascii=False))
        return row

    def _send_receipt(
        self, repo: Repo, trace: _Trace, receiver: str, status: int, code: str, info: str
    ) -> Ref:
        dialect = self._dialect(self.registry.get(receiver))
        if dialect is not mappings.CANONICAL:
            # Our own words must fit the partner's encoding; business data never is replaced.
            encoding = dialect.encodings[0]
            info = info.encode(encoding, "replace").decode(encoding)
        self.metrics.receipts.labels(code).inc()
        receipt = build_receipt(
            ori_message_id=trace.message_id,
            ori_message_type=trace.message_type,
            status=status,
            code=code,
            info=info,
            time=contract_time(self.clock(), self.settings.timezone_offset),
        )
        return self._send(
            repo,
            Outgoing(receiver, RECEIPT, receipt),
            correlation_id=trace.message_id,
            uscc=None,
        )

    def _sign_later(self, root: etree._Element,
                    serializer: Callable[[etree._Element], bytes]) -> Later:
        """The signed bytes of ``root`` (taken: the caller has no other use for it), once the
        card's thread has signed them."""
        unsigned = prepare_envelope(root, self.signer, take=True)
        future = self._card.submit(self._card_sign, unsigned)
        self._signing.append(future)
        return Later(lambda: serializer(unsigned.complete(future.result())))

    def _card_sign(self, unsigned: Unsigned) -> bytes:
        """The card's signature (in the card's thread), timed; failures counted and raised
        where the signature is needed."""
        started = time.perf_counter()
        try:
            return self.signer.sign_bytes(unsigned.to_sign)
        except Exception:
            self.metrics.sign_failures.inc()
            raise
        finally:
            self.metrics.sign_seconds.observe(time.perf_counter() - started)

    def send(self, repo: Repo, out: Outgoing, *, correlation_id: str | None = None) -> Ref:
        """Sign ``out`` into a new envelope and queue it in this unit of work; its outbox row
        (its id is known once the unit of work's ``repo.flush()`` ran)."""
        return self._send(repo, out, correlation_id=correlation_id, uscc=out.uscc)

    def _send(
        self, repo: Repo, out: Outgoing, *, correlation_id: str | None, uscc: str | None
    ) -> Ref:
        message_id = new_message_id()
        root = build_envelope(
            message_type=out.message_type,
            sender_id=self.settings.party_id,
            receiver_id=out.receiver_id,
            business=out.business,
            send_time=contract_time(self.clock(), self.settings.timezone_offset),
            message_id=message_id,
            correlation_id=correlation_id,
        )
        dialect = self._dialect(self.registry.get(out.receiver_id))
        # What we sign must be what we promise: the envelope is checked against the schema
        # with a stand-in for the signature, which is the card's part.
        probe = etree.SubElement(root, _SIGNATURE)
        try:
            schemas.validate(root)
        finally:
            root.remove(probe)
        canonical = None
        if dialect is mappings.CANONICAL:
            body = self._sign_later(root, serialize)
        else:
            # The partner's own form is signed, so that it verifies exactly the bytes it
            # receives; the canonical form is kept beside it.
            canonical = serialize(root)
            body = self._sign_later(dialect.from_canonical(root), dialect.serialize)
        row = repo.add_journal(
            direction="OUT",
            message_id=message_id,
            message_type=out.message_type,
            sender_id=self.settings.party_id,
            receiver_id=out.receiver_id,
            correlation_id=correlation_id,
            uscc=out.uscc or uscc,
            size=Later(lambda: len(body.get())),
            raw=body,
            canonical=canonical,
            status="PENDING",
        )
        repo.add_event(
            row,
            "outbound",
            "PENDING",
            None,
            f"signed with {self.signer.key_name}"
            + (f" in {dialect.name}" if canonical is not None else "")
            + f"; queued for {out.receiver_id}",
        )
        return repo.add_outbox(
            journal_id=row,
            message_id=message_id,
            message_type=out.message_type,
            receiver_id=out.receiver_id,
            correlation_id=correlation_id,
            body=body,
            claimed_by=self.owner,
            lease_until=utcnow_plus(self.lease_s),
        )


_MESSAGE_ID_HINT = re.compile(rb"(?:MessageId|MESSAGE_ID)>\s*([0-9A-F-]{36})\s*<")


def _message_id_hint(body: bytes) -> str | None:
    """The MessageId a message seems to carry: only a hint for ``Repo.look_ahead``, which
    then skips the query of a key it knows is absent; the message itself is read properly."""
    found = _MESSAGE_ID_HINT.search(body, 0, 4096)
    return found.group(1).decode() if found else None


_MESSAGE_TYPE_HINT = re.compile(rb"MessageType>\s*(CDGI\d{3})\s*<")


@functools.lru_cache(maxsize=64)
def _element_hint(name: str) -> re.Pattern[bytes]:
    return re.compile(rb"<(?:[\w.-]+:)?" + name.encode() + rb">\s*([^<\s]{1,64})\s*</")


def _read_ahead(repo: Repo, deliveries: Sequence[Delivery]) -> None:
    """Have ``repo`` load what the batch's handlers will look up (``handlers.Reads``), by the
    keys the bytes seem to carry: hints, as the MessageId's are (a wrong one costs a row
    read, a missed one the handler's own query)."""
    rows: dict[Any, set[str]] = {}
    lists: dict[Any, set[str]] = {}
    follow: set[Any] = set()
    for d in deliveries:
        found = _MESSAGE_TYPE_HINT.search(d.body, 0, 4096)
        reads = READS.get(found.group(1).decode()) if found else None
        if reads is None:
            continue
        for wanted, declared in ((rows, reads.rows), (lists, reads.lists)):
            for name, key in declared:
                wanted.setdefault(key, set()).update(
                    k.decode(errors="replace") for k in _element_hint(name).findall(d.body))
        follow.update(reads.follow)
    repo.read_ahead(rows, lists)
    for (model, column), target in sorted(follow, key=repr):
        values = repo.held_values(model, column)
        if target[1] is None:
            repo.read_ahead({target: values})
        else:
            repo.read_ahead({}, {target: values})


@functools.lru_cache(maxsize=256)
def _subject(certificate: x509.Certificate) -> str:
    """A partner certificate's subject as text (for each message's trace; partners are few)."""
    return certificate.subject.rfc4514_string()


@functools.lru_cache(maxsize=4096)
def _certificate(pem_text: str) -> x509.Certificate:
    """A bound card's certificate, parsed once (cards sign many documents)."""
    return x509.load_pem_x509_certificate(pem_text.encode())


def _bytes_key(d: Delivery) -> tuple[str, str]:
    """The inbox key of a message by its bytes (for what could not be trusted)."""
    return "~" + d.routing_key, "sha256:" + raw_digest(d.body)


def _journal_status(result: Result) -> str:
    """How an accepted message is shown in the journal."""
    return result.journal_status or ("FORWARDED" if result.status == 2 else "PROCESSED")


def utcnow_plus(seconds: float) -> datetime:
    """A lease end ``seconds`` from now."""
    return utcnow() + timedelta(seconds=seconds)

