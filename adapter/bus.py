"""RabbitMQ: the only module that imports pika. Its errors leave here as ours.

Topology (CONTRACT §2, names under the configured prefix)::

    <p>.in  (topic) ──#──► <p>.in.q (quorum, delivery limit) ──dead-letter──► <p>.dlx ──► <p>.dead
    <p>.out (topic) ──<receiver id>──► each partner's own queue

One ``BlockingConnection`` with two channels: one consumes with a bounded prefetch, one
publishes with confirms and ``mandatory``. pika is not thread-safe: the daemon drives both
from one thread, and sleeps through ``Bus.sleep`` so that heartbeats keep flowing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions as px

from adapter.errors import BrokerUnavailable, ConfigurationError
from adapter.pipeline import Delivery, Outbound
from adapter.settings import Settings

_BROKER_ERRORS = (px.AMQPError, OSError)


@dataclass(frozen=True)
class Published:
    """The broker's answer for one message: ``SENT`` (confirmed) or ``UNROUTABLE``."""

    state: str
    detail: str | None = None


class Bus:
    """Consume from the inbound queue and publish to the outbound exchange."""

    def __init__(self, settings: Settings, *, app_id: str = "cdgi-adapter") -> None:
        self.settings = settings
        self.app_id = app_id
        self._conn: pika.BlockingConnection | None = None
        self._consume_ch: Any = None
        self._publish_ch: Any = None
        self._consumer: Iterator[Any] | None = None
        self._relay_ch: Any = None
        self._relay: _Confirms | None = None
        # Published on the relay channel, not yet answered: sequence -> (row, when).
        self._unsettled: dict[int, tuple[Outbound, float]] = {}
        self.window = 256  # publisher confirms in flight
        self.confirm_timeout_s = 30.0

    # -- connection ----------------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection and both channels; BrokerUnavailable if the broker is down."""
        try:
            params = pika.URLParameters(self.settings.amqp_url)
        except (ValueError, px.AMQPError) as e:
            raise ConfigurationError(f"bad CDGI_AMQP_URL: {e}") from None
        params.heartbeat = 30
        params.blocked_connection_timeout = 60
        params.client_properties = {"connection_name": f"{self.app_id} {self.settings.prefix}"}
        try:
            self._conn = pika.BlockingConnection(params)
            self._publish_ch = self._conn.channel()
            self._publish_ch.confirm_delivery()
        except px.ProbableAuthenticationError as e:
            raise ConfigurationError(
                "RabbitMQ refused the credentials in CDGI_AMQP_URL; check user and password"
            ) from e
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"cannot reach RabbitMQ: {_describe(e)}") from e

    @property
    def connected(self) -> bool:
        """Whether the connection is open."""
        return self._conn is not None and self._conn.is_open

    def close(self) -> None:
        """Close quietly (unacked deliveries go back to the queue)."""
        conn, self._conn = self._conn, None
        self._consumer = None
        self._consume_ch = self._publish_ch = self._relay_ch = None
        self._relay = None
        # Unanswered messages stay PENDING in the outbox and are published again.
        self._unsettled = {}
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except _BROKER_ERRORS:
                pass

    def declare_topology(self) -> None:
        """Declare the exchanges and queues of CONTRACT §2 (idempotent)."""
        s = self.settings
        ch = self._channel()
        try:
            ch.exchange_declare(s.exchange_in, "topic", durable=True)
            ch.exchange_declare(s.exchange_out, "topic", durable=True)
            ch.exchange_declare(s.exchange_dlx, "topic", durable=True)
            ch.exchange_declare(s.exchange_alerts, "topic", durable=True)
            ch.queue_declare(s.queue_dead, durable=True, arguments={"x-queue-type": "quorum"})
            ch.queue_bind(s.queue_dead, s.exchange_dlx, routing_key="#")
            ch.queue_declare(
                s.queue_in,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-dead-letter-exchange": s.exchange_dlx,
                    "x-delivery-limit": s.delivery_limit,
                },
            )
            ch.queue_bind(s.queue_in, s.exchange_in, routing_key="#")
        except px.ChannelClosedByBroker as e:
            raise ConfigurationError(
                f"RabbitMQ refused the topology under prefix {s.prefix!r}: {e.reply_text}; "
                "a queue declared earlier with other arguments must be deleted first"
            ) from e
        except _BROKER_ERRORS as e:
            raise BrokerUnavailable(f"declaring the topology failed: {_describe(e)}") from e

    def _channel(self) -> Any:
        if self._conn is None or not self._conn.is_open:
            raise BrokerUnavailable("not connected to RabbitMQ")
        return self._publish_ch

    # -- consuming -----------------------------------------------------------------------
    def next_batch(self, limit: int, wait_s: float) -> list[Delivery]:
        """Up to ``limit`` deliveries: waits ``wait_s`` for the first, takes what is buffered."""
        try:
            if self._consumer is None:
                assert self._conn is not None
                self._consume_ch = self._conn.channel()
                self._consume_ch.basic_qos(prefetch_count=self.settings.prefetch)
                self._consumer = self._consume_ch.consume(
                    self.settings.queue_in, inactivity_timeout=wait_s
                )
            batch: list[Delivery] = []
            first = next(self._consumer)
            if first[0] is None:
                return batch
            batch.append(_delivery(*first))
            while len(batch) < limit and self._consume_ch.get_waiting_message_count() > 0:
                item = next(self._consumer)
                if item[0] is None:
                    break
                batch.append(_delivery(*item))
            return batch
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"consuming failed: {_describe(e)}") from e

    def ack_through(self, tag: int) -> None:
        """Acknowledge every delivery up to and including ``tag`` (after the commit)."""
        try:
            self._consume_ch.basic_ack(delivery_tag=tag, multiple=True)
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"ack failed: {_describe(e)}") from e

    def stop_consuming(self) -> None:
        """Cancel the consumer; unacked deliveries return to the queue."""
        if self._consume_ch is not None and self._consume_ch.is_open:
            try:
                self._consume_ch.cancel()
            except _BROKER_ERRORS:
                pass
        self._consumer = None

    # -- publishing ----------------------------------------------------------------------
    def send(self, rows: Sequence[Outbound],
             on_result: Callable[[Outbound, Published], None]) -> None:
        """Publish without waiting for the broker's answers, up to ``window`` of them in
        flight (when the window is full, answers are waited for and reported first).

        The daemon handles its next batch while the broker confirms this one; ``settle``
        reports what was answered meanwhile. ``on_result`` hears about each row once, in
        publishing order: confirmed (``SENT``), returned (``UNROUTABLE``: mandatory, no queue
        bound) or refused (nack: ``PENDING``, retried later)."""
        if not rows:
            return
        relay = self._relay_channel()
        # Into pika's buffer through the asynchronous channel, written to the socket once for
        # the rows (the blocking channel writes and polls for each message: 2.5 times the CPU).
        impl = self._relay_ch._impl
        try:
            for row in rows:
                while len(self._unsettled) >= self.window:
                    self._await(on_result, until=self.window // 2)
                self._unsettled[relay.next_seq] = (row, time.monotonic())
                relay.expect(row.message_id)
                impl.basic_publish(self.settings.exchange_out, row.receiver_id, row.body,
                                   properties=self._properties(row), mandatory=True)
            assert self._conn is not None
            self._conn.process_data_events(time_limit=0)
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"publishing failed: {_describe(e)}") from e

    @property
    def unsettled(self) -> int:
        """Messages published and not yet answered by the broker."""
        return len(self._unsettled)

    def settle(self, on_result: Callable[[Outbound, Published], None], *,
               wait: bool = False) -> None:
        """Report the answers that came for what ``send`` published; with ``wait``, wait for
        all of them. No answer within ``confirm_timeout_s`` is BrokerUnavailable (the
        connection is closed; the rows are published again later)."""
        if not self._unsettled:
            return
        try:
            assert self._conn is not None
            self._conn.process_data_events(time_limit=0)
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"publishing failed: {_describe(e)}") from e
        self._report(on_result)
        if wait:
            self._await(on_result, until=0)
        elif self._unsettled:
            oldest = next(iter(self._unsettled.values()))[1]
            if time.monotonic() - oldest > self.confirm_timeout_s:
                self.close()
                raise BrokerUnavailable(
                    f"no publisher confirm within {self.confirm_timeout_s:g} s")

    def _await(self, on_result: Callable[[Outbound, Published], None], *, until: int) -> None:
        """Wait until at most ``until`` messages are unanswered, reporting the answers."""
        deadline = time.monotonic() + self.confirm_timeout_s
        try:
            while len(self._unsettled) > until:
                if time.monotonic() > deadline:
                    self.close()
                    raise BrokerUnavailable(
                        f"no publisher confirm within {self.confirm_timeout_s:g} s")
                assert self._conn is not None
                self._conn.process_data_events(time_limit=0.05)
                self._report(on_result)
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"publishing failed: {_describe(e)}") from e

    def _report(self, on_result: Callable[[Outbound, Published], None]) -> None:
        """Hand over the answers that came, in publishing order (an answer that overtook an
        earlier message's waits for it)."""
        relay = self._relay
        if relay is None:
            return
        for seq in list(self._unsettled):
            answer = relay.answer(seq)
            if answer is None:
                return
            row, _at = self._unsettled.pop(seq)
            on_result(row, answer)

    def _properties(self, row: Outbound) -> pika.BasicProperties:
        return pika.BasicProperties(
            delivery_mode=2,
            content_type="application/xml",
            message_id=row.message_id,
            type=row.message_type,
            correlation_id=row.correlation_id,
            app_id=self.app_id,
            timestamp=int(time.time()),
        )

    def _relay_channel(self) -> _Confirms:
        """The channel the outbox relay publishes on, its confirms tracked by sequence."""
        if self._relay is None:
            if self._conn is None or not self._conn.is_open:
                raise BrokerUnavailable("not connected to RabbitMQ")
            try:
                self._relay_ch = self._conn.channel()
                relay = _Confirms()
                impl = self._relay_ch._impl  # the asynchronous channel under the blocking one
                impl.add_on_return_callback(relay.on_return)
                impl.confirm_delivery(ack_nack_callback=relay.on_confirm,
                                      callback=relay.on_select_ok)
                while not relay.selected:
                    self._conn.process_data_events(time_limit=0.05)
            except _BROKER_ERRORS as e:
                self.close()
                raise BrokerUnavailable(f"opening the relay channel failed: {_describe(e)}") from e
            self._relay = relay
        return self._relay

    def publish_alert(self, kind: str, body: bytes) -> None:
        """Publish an alert (JSON) to ``<prefix>.alerts``; nobody need be listening."""
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                     app_id=self.app_id, type=kind, timestamp=int(time.time()))
        try:
            self._channel().basic_publish(self.settings.exchange_alerts, kind, body,
                                          properties=props)
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"publishing an alert failed: {_describe(e)}") from e

    def inject(self, *, routing_key: str, body: bytes, replay_of: int) -> bool:
        """Put journaled inbound bytes back on the inbound exchange (``cdgi replay``)."""
        props = pika.BasicProperties(
            delivery_mode=2,
            content_type="application/xml",
            app_id="cdgi-replay",
            headers={"x-cdgi-replay": replay_of},
        )
        try:
            self._channel().basic_publish(
                self.settings.exchange_in, routing_key, body, properties=props, mandatory=True
            )
        except px.UnroutableError:
            return False
        except _BROKER_ERRORS as e:
            self.close()
            raise BrokerUnavailable(f"publishing failed: {_describe(e)}") from e
        return True

    # -- waiting -------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Wait while servicing heartbeats (or plainly, when not connected)."""
        if self._conn is None or not self._conn.is_open:
            time.sleep(seconds)
            return
        try:
            self._conn.process_data_events(time_limit=seconds)
        except _BROKER_ERRORS:
            self.close()

    # -- inspection ----------------------------------------------------------------------
    def queue_depths(self, names: Sequence[str]) -> dict[str, int | None]:
        """Messages ready in each queue (None where the queue does not exist)."""
        out: dict[str, int | None] = {}
        assert self._conn is not None
        for name in names:
            ch = self._conn.channel()
            try:
                out[name] = ch.queue_declare(name, passive=True).method.message_count
                ch.close()
            except px.ChannelClosedByBroker:
                out[name] = None
        return out


def _delivery(method: Any, props: Any, body: bytes) -> Delivery:
    return Delivery(
        body=body,
        routing_key=method.routing_key,
        tag=method.delivery_tag,
        amqp_message_id=props.message_id,
        user_id=props.user_id,
        redelivered=bool(method.redelivered),
        replay=bool((props.headers or {}).get("x-cdgi-replay")),
    )


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) < 200 else text[:200] + "..."


class _Confirms:
    """Publisher confirms of one channel, by sequence number (RabbitMQ numbers from 1).

    The broker sends ``basic.return`` for an unroutable mandatory message before the
    ``basic.ack`` that settles it; a return is matched to the oldest unsettled message with
    its MessageId.
    """

    def __init__(self) -> None:
        self.selected = False
        self.next_seq = 1
        self._ids: dict[int, str] = {}
        self._answers: dict[int, Published] = {}
        self._returned: dict[int, str] = {}

    def on_select_ok(self, _frame: Any) -> None:
        self.selected = True

    def expect(self, message_id: str) -> None:
        self._ids[self.next_seq] = message_id
        self.next_seq += 1

    def on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        wanted = properties.message_id
        for seq, message_id in sorted(self._ids.items()):
            if message_id == wanted and seq not in self._answers and seq not in self._returned:
                self._returned[seq] = f"no queue is bound for {method.routing_key}"
                return

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag, multiple = method.delivery_tag, method.multiple
        nack = isinstance(method, pika.spec.Basic.Nack)
        seqs = [s for s in self._ids if s <= tag] if multiple else [tag]
        for seq in seqs:
            if seq in self._answers or seq not in self._ids:
                continue
            if nack:
                answer = Published("PENDING", "the broker refused the message (nack); retrying")
            elif seq in self._returned:
                answer = Published("UNROUTABLE", self._returned.pop(seq))
            else:
                answer = Published("SENT")
            self._answers[seq] = answer

    def answer(self, seq: int) -> Published | None:
        """The broker's answer for ``seq`` (forgotten once read), or None if none came yet."""
        answer = self._answers.pop(seq, None)
        if answer is not None:
            self._ids.pop(seq, None)
            self._returned.pop(seq, None)
        return answer
