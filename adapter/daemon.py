"""The daemon's loop: consume a batch, process it in one transaction, ack, publish, repeat.

Guarantees, in order: a delivery is acked only after its transaction committed; an outbox row
is marked sent only on the broker's confirm; a transient failure (store, card, broker) pauses
and retries with backoff while the deliveries stay unacked, so nothing is lost; SIGTERM or
SIGINT finishes the batch in hand and exits with ``ExitCode.OK``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from adapter.alerts import evaluate
from adapter.bootstrap import App
from adapter.bus import Published
from adapter.errors import (
    BrokerUnavailable,
    CardUnavailable,
    CdgiError,
    ConfigurationError,
    TransientError,
)
from adapter.observe import Health, HttpServer
from adapter.pipeline import Delivery, Outbound
from adapter.registry import fingerprint
from store import repo
from store.db import as_utc, utcnow

log = structlog.get_logger("cdgi.daemon")


class ExitCode(IntEnum):
    """How ``cdgi run`` ends; init systems and orchestrators read these."""

    OK = 0  # stopped on request (SIGTERM/SIGINT) after finishing the batch in hand
    ERROR = 1  # an unexpected defect; the log has the traceback
    USAGE = 2  # bad command line
    UNAVAILABLE = 69  # a dependency stayed down past --give-up-after (EX_UNAVAILABLE)
    CONFIG = 78  # configuration only an operator can fix: PIN, token, URL, migration (EX_CONFIG)


class Daemon:
    """Runs one adapter process until asked to stop."""

    def __init__(self, app: App, *, give_up_after_s: float | None = None) -> None:
        self.app = app
        self.stopping = False
        self.give_up_after_s = give_up_after_s
        self.state = "starting"
        self.detail = ""
        self.counts = {"batches": 0, "messages": 0, "published": 0, "unroutable": 0}
        self._last_sweep = 0.0
        # The broker's answers not yet marked in the store: the next batch's transaction marks
        # them (or ``_mark_published``, when no batch comes).
        self._heard: list[repo.PublishResult] = []
        self._paused_idle = False  # paused by a store failure met outside a batch
        self._last_waiting = 0.0
        self._per_message_s = 0.0  # moving average of the time a message takes in a batch
        self._last_expiry = float("-inf")
        self._last_alerts = float("-inf")
        self._alerts: set[tuple[str, str]] = set()
        self.checks = {"broker": "unknown", "store": "unknown", "card": "unknown"}
        self._status_path = (
            Path(app.settings.state_dir) / f"{app.settings.prefix}-{os.getpid()}.json"
        )
        self._status_written = 0.0

    # -- lifecycle -----------------------------------------------------------------------
    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Finish the batch in hand, then stop."""
        if not self.stopping:
            log.info(
                "stop requested; finishing the batch in hand",
                signal=signal.Signals(signum).name if signum else None,
            )
        self.stopping = True

    def run(self) -> ExitCode:
        """The main loop."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        s = self.app.settings
        log.info(
            "adapter starting",
            party=s.party_id,
            prefix=s.prefix,
            owner=self.app.owner,
            store=self.app.engine.url.render_as_string(hide_password=True),
        )
        http = None
        try:
            http = self._start_http()
            self._check_card()
            self._loop()
            self._drain_confirms()
        except ConfigurationError as e:
            log.error("stopping: configuration must be fixed", error=e.message)
            self._set_state("stopped", e.message)
            return ExitCode.CONFIG
        except _GiveUp as e:
            log.error("stopping: a dependency stayed unavailable", error=str(e))
            self._set_state("stopped", str(e))
            return ExitCode.UNAVAILABLE
        finally:
            if http is not None:
                http.stop()
            self.app.bus.stop_consuming()
            self.app.bus.close()
            self.app.signer.close()
        self._set_state("stopped", "on request")
        log.info("adapter stopped", **self.counts)
        self._status_path.unlink(missing_ok=True)
        return ExitCode.OK

    def _start_http(self) -> HttpServer | None:
        """Metrics and health over HTTP (CDGI_HTTP_PORT; 0 turns it off)."""
        s = self.app.settings
        if not s.http_port:
            return None
        server = HttpServer(s.http_host, s.http_port, self.app.metrics, self.health)
        try:
            port = server.start()
        except OSError as e:
            raise ConfigurationError(
                f"cannot serve metrics on {s.http_host}:{s.http_port} ({e.strerror}); set "
                "CDGI_HTTP_PORT to a free port, or 0 to turn the endpoint off"
            ) from None
        log.info("serving /metrics, /healthz and /readyz", host=s.http_host, port=port)
        return server

    def health(self) -> Health:
        """A snapshot for /healthz and /readyz (never touches the card or the store)."""
        return Health.judge(live=self.state != "stopped", checks={**self.checks,
                                                                  "state": self.state})

    def _check_card(self) -> None:
        """Open the card before consuming: a wrong PIN stops us now, not on the first message."""
        delay, since = self.app.settings.retry_initial_s, time.monotonic()
        while not self.stopping:
            try:
                cert = self.app.signer.certificate
            except TransientError as e:
                self.checks["card"] = "unavailable"
                self._pause(e.message, delay, since)
                delay = min(delay * 2, self.app.settings.retry_max_s)
                continue
            self.checks["card"] = "present"
            log.info(
                "card ready",
                key=self.app.signer.key_name,
                subject=cert.subject.rfc4514_string(),
                not_after=cert.not_valid_after_utc.isoformat(),
            )
            return

    def _loop(self) -> None:
        bus, s = self.app.bus, self.app.settings
        down_since: float | None = None
        delay = s.retry_initial_s
        while not self.stopping:
            try:
                if not bus.connected:
                    bus.connect()
                    bus.declare_topology()
                    log.info("connected to RabbitMQ", queue=s.queue_in)
                    self.checks["broker"] = "up"
                    self._set_state("running")
                    self._take_over_dead_peers()
                    self._sweep(force=True)
                batch = bus.next_batch(self._batch_limit(), wait_s=0.5)
                self._relay([])  # the confirms that came meanwhile
                if batch:
                    self._handle(batch)
                else:
                    self._mark_published()
                self._retry_waiting()
                self._sweep()
                self._expire()
                self._check_alerts()
                self._write_status()
                down_since, delay = None, s.retry_initial_s
            except BrokerUnavailable as e:
                self.checks["broker"] = "down"
                down_since = down_since or time.monotonic()
                self._pause(f"broker unavailable: {e.message}", delay, down_since)
                delay = min(delay * 2, s.retry_max_s)

    def _pause(self, why: str, delay: float, down_since: float) -> None:
        self._set_state("paused", why)
        log.warning("paused", reason=why, retry_in_s=round(delay, 2))
        if (
            self.give_up_after_s is not None
            and time.monotonic() - down_since > self.give_up_after_s
        ):
            raise _GiveUp(why)
        end = time.monotonic() + delay
        while not self.stopping and time.monotonic() < end:
            self.app.bus.sleep(min(0.2, end - time.monotonic()))

    # -- one batch -----------------------------------------------------------------------
    def _batch_limit(self) -> int:
        """How many deliveries to take: ``batch_size``, fewer when messages are slow.

        A batch holds the connection's only thread, so heartbeats and confirms wait for it;
        with a slow card (250 ms a signature, say) batches shrink to about
        ``batch_budget_s``, and consumption slows down smoothly instead of stalling.
        """
        s = self.app.settings
        if self._per_message_s <= 0:
            return s.batch_size
        return max(1, min(s.batch_size, int(s.batch_budget_s / self._per_message_s)))

    def _learn(self, seconds: float, messages: int) -> None:
        per_message = seconds / max(1, messages)
        self._per_message_s = (per_message if self._per_message_s <= 0
                               else 0.7 * self._per_message_s + 0.3 * per_message)

    def _handle(self, batch: list[Delivery], *, from_bus: bool = True) -> None:
        app, s = self.app, self.app.settings
        delay, down_since = s.retry_initial_s, time.monotonic()
        while True:
            try:
                started = time.monotonic()
                heard = len(self._heard)
                with app.metrics.stage("batch"):
                    result = app.pipeline.process_batch(app.engine, batch, self._heard)
                del self._heard[:heard]
                self._learn(time.monotonic() - started, len(batch))
                self.checks["store"], self.checks["card"] = "up", "present"
                break
            except TransientError as e:
                if isinstance(e, BrokerUnavailable):
                    raise
                reason = "card" if isinstance(e, CardUnavailable) else "store"
                self.checks[reason] = "unavailable" if reason == "card" else "down"
                app.metrics.retries.labels(reason).inc()
                self._pause(e.message, delay, down_since)
                delay = min(delay * 2, s.retry_max_s)
                if self.stopping or not app.bus.connected:
                    # Unacked: the broker hands these to us (or a peer) again.
                    return
        if from_bus:
            app.bus.ack_through(batch[-1].tag)
        self.counts["batches"] += 1
        self.counts["messages"] += len(batch)
        if self.state != "running":
            self._set_state("running")
        self._relay(result.outbound)

    # -- outbox relay --------------------------------------------------------------------
    def _publish(self, ids: list[int] | None) -> None:
        """Claim outbox rows (these ids, or any due) and publish them."""
        app = self.app
        if ids is not None and not ids:
            return
        try:
            rows = repo.claim_outbox(
                app.engine, app.owner, limit=max(len(ids or ()), 500),
                lease_s=app.settings.outbox_lease_s, ids=ids
            )
        except TransientError as e:
            log.warning("outbox relay paused", reason=e.message)
            return
        self._relay([Outbound(row.id, row.receiver_id, row.message_id, row.message_type,
                              row.correlation_id, row.body, row.journal_id)
                     for row in rows if row.id])

    def _relay(self, rows: list[Outbound], *, wait: bool = False) -> None:
        """Publish rows this process holds the lease of, and hear what the broker answered.

        Publishing does not wait for the broker's confirms: they are collected here on the
        next call (the loop calls with no rows after each batch it takes), while the next
        batch is handled; ``wait`` waits for all of them. A row is marked SENT only on its
        confirm, in the next batch's transaction (``_mark_published`` when none comes); one
        whose answer never comes stays PENDING and is published again."""
        app = self.app
        if not rows and not app.bus.unsettled:
            return

        def heard(row: Outbound, published: Published) -> None:
            self._heard.append(repo.PublishResult(row.outbox_id, published.state,
                                                  published.detail, row.journal_id))
            app.metrics.messages_out.labels(row.message_type, row.receiver_id,
                                            published.state).inc()
            if published.state == "UNROUTABLE":
                self.counts["unroutable"] += 1
                log.warning(
                    "unroutable: kept in the outbox",
                    message_id=row.message_id,
                    type=row.message_type,
                    partner=row.receiver_id,
                )
            elif published.state == "SENT":
                self.counts["published"] += 1

        app.bus.send(rows, heard)
        app.bus.settle(heard, wait=wait)

    def _mark_published(self) -> None:
        """Mark what the broker answered in a transaction of its own (no batch to do it)."""
        if not self._heard:
            return
        try:
            repo.record_publish(self.app.engine, self._heard,
                                retry_after_s=self.app.settings.relay_interval_s)
        except TransientError as e:
            # Kept, and marked once the store is back. Should the process end first, a later
            # sweep re-sends the same bytes, which receivers drop as an identical duplicate.
            log.warning("could not mark published rows yet", reason=e.message)
            self._store_down(e)
            return
        self._heard.clear()
        self._store_up()

    def _store_down(self, e: TransientError) -> None:
        """The store failed outside a batch (no message waits on it): said as a batch would
        say it, so that `cdgi status` and the health check do not report an idle daemon as
        running while its store is away."""
        self.checks["store"] = "down"
        if self.state != "paused":
            log.warning("paused", reason=e.message, retry_in_s=None)
            self._set_state("paused", e.message)
            self._paused_idle = True

    def _store_up(self) -> None:
        """The store answered outside a batch: an outage seen there is over."""
        self.checks["store"] = "up"
        if self._paused_idle:
            self._paused_idle = False
            if self.state == "paused":
                self._set_state("running")

    def _drain_confirms(self) -> None:
        """Before stopping: the broker's answers for what was published (a row left without
        one is published again by whoever runs next; receivers drop the identical copy)."""
        try:
            self._relay([], wait=True)
        except TransientError as e:
            log.warning("stopping without every publisher confirm", reason=e.message)
        self._mark_published()

    def _retry_waiting(self) -> None:
        """Handle again the messages that came before their cause, once their time is due."""
        now = time.monotonic()
        if now - self._last_waiting < 1.0:
            return
        self._last_waiting = now
        try:
            rows = repo.due_waiting(self.app.engine, utcnow(), limit=self.app.settings.batch_size)
        except TransientError as e:
            log.warning("waiting messages postponed", reason=e.message)
            self._store_down(e)
            return
        self._store_up()
        if rows:
            self._handle([Delivery(body=r.body, routing_key=r.routing_key, waiting_id=r.id,
                                   journal_id=r.journal_id, first_seen=r.first_seen,
                                   attempts=r.attempts) for r in rows], from_bus=False)

    def _take_over_dead_peers(self) -> None:
        """Outbox rows leased by a process of this host that is gone (killed, crashed) are
        published now, not when their lease runs out."""
        host = self.app.owner.rsplit(":", 1)[0]
        try:
            released = repo.release_leases_of_dead(self.app.engine, host, _pid_alive)
        except TransientError:
            return
        if released:
            log.info("took over the outbox rows of stopped processes", rows=released)

    def _sweep(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_sweep < self.app.settings.relay_interval_s:
            return
        self._last_sweep = now
        # Rows published and not yet confirmed (or not yet marked) are still PENDING and ours:
        # answered and marked first, so that the sweep does not publish them a second time.
        self._relay([], wait=True)
        self._mark_published()
        if self._heard:
            return  # the store is away: nothing can be claimed either
        self._publish(None)
        try:
            backlog = repo.outbox_backlog(self.app.engine)
        except TransientError as e:
            self._store_down(e)
            return
        self._store_up()
        for state in ("PENDING", "SENT", "UNROUTABLE"):
            self.app.metrics.outbox_backlog.labels(state).set(backlog["counts"].get(state, 0))
        oldest = as_utc(backlog["oldest_pending"])
        self.app.metrics.outbox_oldest_age.set(
            (utcnow() - oldest).total_seconds() if oldest else 0)

    def _expire(self) -> None:
        now = time.monotonic()
        expiry = self.app.expiry
        if expiry is None or now - self._last_expiry < self.app.settings.expiry_interval_s:
            return
        self._last_expiry = now
        try:
            ids = expiry.sweep(self.app.engine)
        except TransientError as e:
            log.warning("expiry check postponed", reason=e.message)
            self._last_expiry = float("-inf")
            return
        self._publish(ids)

    def _check_alerts(self) -> None:
        """Raise (log, count, publish) new alerts and log the ones that cleared."""
        now, s = time.monotonic(), self.app.settings
        if now - self._last_alerts < s.alert_interval_s:
            return
        self._last_alerts = now
        try:
            counts = repo.alert_counts(self.app.engine, unanswered_after_s=s.receipt_timeout_s)
        except TransientError:
            counts = None
        today = utcnow()
        try:
            partners = self.app.registry.all()
        except TransientError:  # the store is away (and the partners not yet read): next time
            partners = []
        certs = [(p.id, fingerprint(c), (c.not_valid_after_utc - today).days)
                 for p in partners if p.enabled for c in p.certificates]
        try:
            card: Any = self.app.signer.certificate
        except TransientError:  # the card is away: that is the alert, not a reason to stop
            card, self.checks["card"] = None, "unavailable"
        card_days = (card.not_valid_after_utc - today).days if card is not None else None
        dead = self.app.bus.queue_depths([s.queue_dead]).get(s.queue_dead)
        current = evaluate(counts=counts, card_days=card_days,
                           card_error="see the log" if self.checks["card"] != "present" else None,
                           partner_certs=certs, dead_letters=dead,
                           window_days=s.alert_cert_days)
        keys = {(a.kind, a.message) for a in current}
        if card is not None and card_days is not None:
            self.app.metrics.set_certificate(s.party_id, fingerprint(card), card_days)
        for party, fp, days in certs:
            self.app.metrics.set_certificate(party, fp, days)
        for alert in current:
            if (alert.kind, alert.message) in self._alerts:
                continue
            log.warning("alert", kind=alert.kind, severity=alert.severity, detail=alert.message)
            self.app.metrics.alerts.labels(alert.kind).inc()
            self.app.bus.publish_alert(alert.kind, json.dumps(
                {**alert.as_dict(), "owner": self.app.owner, "at": today.isoformat()},
                ensure_ascii=False).encode())
        for kind, message in self._alerts - keys:
            log.info("alert cleared", kind=kind, detail=message)
        self._alerts = keys

    # -- what operators see --------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "") -> None:
        changed = (state, detail) != (self.state, self.detail)
        self.state, self.detail = state, detail
        self._paused_idle = False
        self.app.metrics.set_state(state)
        if changed:
            self._write_status(force=True)

    def _write_status(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._status_written < 2.0:
            return
        self._status_written = now
        payload: dict[str, Any] = {
            "pid": os.getpid(),
            "owner": self.app.owner,
            "prefix": self.app.settings.prefix,
            "state": self.state,
            "detail": self.detail,
            "updated_at": utcnow().isoformat(),
            **self.counts,
        }
        try:
            self._status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(payload), encoding="utf-8")
            tmp.replace(self._status_path)
        except OSError as e:
            log.warning(
                "cannot write the status file", path=str(self._status_path), error=e.strerror
            )


class _GiveUp(Exception):
    pass


def _pid_alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` runs (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(app: App, *, give_up_after_s: float | None = None) -> ExitCode:
    """Run the daemon; returns its exit code."""
    try:
        return Daemon(app, give_up_after_s=give_up_after_s).run()
    except CdgiError as e:  # pragma: no cover - defensive: every path above maps its errors
        log.error("stopping", error=e.message)
        return ExitCode.ERROR
