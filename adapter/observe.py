"""Observability: the daemon's Prometheus metrics and its small HTTP endpoint.

Owns every metric the daemon exports (one ``CollectorRegistry`` per ``Metrics``, never the
process-global one, so tests and several daemons in one process never share values) and the
HTTP server that serves ``/metrics``, ``/healthz`` and ``/readyz``.

May import the standard library, ``prometheus_client`` and ``structlog`` only. The server
never touches the broker, the database or the card: the daemon owns those on its own thread
and hands the server a cheap callable that returns its latest ``Health`` snapshot.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["METRICS_CONTENT_TYPE", "Health", "HttpServer", "Metrics"]

log = structlog.get_logger(__name__)

# What generate_latest writes. prometheus_client's CONTENT_TYPE_LATEST names version 1.0.0
# in newer releases, which would misdescribe this body, so the type is spelled out.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Pipeline stages run from a tenth of a millisecond (parse a small envelope) to seconds
# (a whole batch committed on a busy PostgreSQL).
STAGE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
# An RSA signature on an IC card takes tens to hundreds of milliseconds; SoftHSM2 far less.
SIGN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """All the daemon's metrics in one CollectorRegistry of its own (never the global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            "cdgi_messages_in",
            "Inbound messages by type, sending partner and journal status "
            "(PROCESSED, FORWARDED, FLAGGED, REFUSED, DUPLICATE, ...).",
            ["type", "partner", "outcome"],
            registry=r,
        )
        self.receipts = Counter(
            "cdgi_receipts", "Receipts sent, by receipt code.", ["code"], registry=r
        )
        self.messages_out = Counter(
            "cdgi_messages_out",
            "Outbound messages by type, receiving partner and outcome "
            "(SENT, UNROUTABLE, PENDING when the broker nacked).",
            ["type", "partner", "outcome"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "cdgi_stage_seconds",
            "Time spent in each pipeline stage "
            "(parse, schema, verify, handle, sign, commit, publish, batch).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "cdgi_retries",
            "Transient failures retried, by what failed (store, card, broker).",
            ["reason"],
            registry=r,
        )
        self.sign_seconds = Histogram(
            "cdgi_card_sign_seconds",
            "Time for one signature on the data center's card.",
            buckets=SIGN_BUCKETS,
            registry=r,
        )
        self.sign_failures = Counter(
            "cdgi_card_sign_failures", "Signatures the card failed to make.", registry=r
        )
        self.discrepancies = Counter(
            "cdgi_ledger_discrepancies",
            "Ledger discrepancies found, by discrepancy code.",
            ["code"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "cdgi_outbox_backlog", "Outbox rows by state.", ["state"], registry=r
        )
        self.outbox_oldest_age = Gauge(
            "cdgi_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row still waiting to be published (0 when none).",
            registry=r,
        )
        self.cert_days = Gauge(
            "cdgi_certificate_days_to_expiry",
            'Days until a certificate expires; owner is "DC" (our card) or the partner id.',
            ["owner", "fingerprint"],
            registry=r,
        )
        self.state = Gauge(
            "cdgi_daemon_state",
            "1 for the daemon's current state (running, paused, stopped, ...), 0 for the others.",
            ["state"],
            registry=r,
        )
        self.alerts = Counter(
            "cdgi_alerts", "Alerts raised for operators, by kind.", ["kind"], registry=r
        )
        self._lock = threading.Lock()
        self._states: set[str] = set()
        self._fingerprints: dict[str, set[str]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block into ``cdgi_stage_seconds{stage=name}``, whether it returns or raises."""
        child = self.stage_seconds.labels(stage=name)
        start = time.perf_counter()
        try:
            yield
        finally:
            child.observe(time.perf_counter() - start)

    def set_state(self, state: str) -> None:
        """Make ``state`` the only daemon state at 1; every other state seen drops to 0."""
        with self._lock:
            self._states.add(state)
            for seen in self._states:
                self.state.labels(state=seen).set(1 if seen == state else 0)

    def set_certificate(self, owner: str, fingerprint: str, days: float) -> None:
        """Record days to expiry of ``owner``'s certificate, forgetting its replaced ones.

        A rotated certificate must stop reporting, or its old expiry would alert forever.
        """
        with self._lock:
            for old in self._fingerprints.get(owner, set()) - {fingerprint}:
                self.cert_days.remove(owner, old)
            self._fingerprints[owner] = {fingerprint}
            self.cert_days.labels(owner=owner, fingerprint=fingerprint).set(days)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (``METRICS_CONTENT_TYPE``)."""
        return generate_latest(self.registry)


@dataclass(frozen=True)
class Health:
    """A snapshot of the daemon's health, kept by the daemon and read by the HTTP server."""

    live: bool
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def judge(cls, *, live: bool, checks: Mapping[str, str]) -> Health:
        """Ready only when broker and store are up, the card present and the daemon running."""
        ready = (
            live
            and checks.get("broker") == "up"
            and checks.get("store") == "up"
            and checks.get("card") == "present"
            and checks.get("state") == "running"
        )
        return cls(live=live, ready=ready, checks=dict(checks))


class HttpServer:
    """A small threaded HTTP server for scrapers and orchestrators.

    ``GET /metrics``: the Prometheus text format. ``GET /healthz``: 200 while the daemon's loop
    is alive, else 503. ``GET /readyz``: 200 only when the daemon reports itself ready (broker,
    store and card up, state running), else 503. Both health answers carry a JSON body
    ``{"live"|"ready": bool, "checks": {...}}``. Any other path is 404. Request lines go to
    structlog at debug, never to stderr.
    """

    def __init__(
        self, host: str, port: int, metrics: Metrics, health: Callable[[], Health]
    ) -> None:
        self.host = host
        self.port = port
        self.metrics = metrics
        self.health = health
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Bind and serve in a daemon thread; return the bound port (port 0 picks a free one).

        Raises ``OSError`` when the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the observability server is already running")
        server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="cdgi-observe-http",
            daemon=True,
        )
        self._thread.start()
        port = int(server.server_address[1])
        log.info("observe.listening", host=self.host, port=port)
        return port

    def stop(self) -> None:
        """Stop serving and close the socket, freeing the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        log.info("observe.stopped")


def _handler_for(owner: HttpServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one server's metrics and health callable."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "cdgi-observe"
        sys_version = ""

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                self._send(HTTPStatus.OK, METRICS_CONTENT_TYPE, owner.metrics.exposition())
            elif path == "/healthz":
                health = self._health()
                self._json(health.live, {"live": health.live, "checks": dict(health.checks)})
            elif path == "/readyz":
                health = self._health()
                self._json(health.ready, {"ready": health.ready, "checks": dict(health.checks)})
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

        def _health(self) -> Health:
            try:
                return owner.health()
            except Exception:
                # A broken snapshot must read as unhealthy, not as a dropped connection.
                log.exception("observe.health_failed")
                return Health(live=False, ready=False, checks={"health": "error"})

        def _json(self, ok: bool, body: dict[str, Any]) -> None:
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            payload = json.dumps(body, sort_keys=True).encode() + b"\n"
            self._send(status, "application/json", payload)

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("observe.request", client=self.client_address[0], line=format % args)

    return Handler
