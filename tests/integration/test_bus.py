"""The bus on a real RabbitMQ: topology, confirms, unroutable messages, batches."""

from __future__ import annotations

import time
from dataclasses import replace

import pika
import pytest

from adapter.bus import Bus, Published
from adapter.pipeline import Outbound
from adapter.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture()
def bus(prefix: str, rabbitmq: str):  # type: ignore[no-untyped-def]
    b = Bus(replace(Settings(), prefix=prefix, amqp_url=rabbitmq, prefetch=10))
    b.connect()
    b.declare_topology()
    yield b
    b.close()


def _relay(bus: Bus, rows: list[Outbound]) -> list[tuple[Outbound, Published]]:
    """Publish ``rows`` as the daemon's relay does (``send``, then ``settle`` waiting for every
    confirm) and return what the broker answered, in the order it was handed over."""
    heard: list[tuple[Outbound, Published]] = []

    def hear(row: Outbound, published: Published) -> None:
        heard.append((row, published))

    bus.send(rows, hear)
    bus.settle(hear, wait=True)
    assert bus.unsettled == 0
    return heard


def test_the_topology_is_declared_as_the_contract_says_and_again_without_error(
    bus: Bus, prefix: str, rabbitmq: str
) -> None:
    bus.declare_topology()
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    ch = conn.channel()
    # Passive declares fail if the objects are missing.
    ch.exchange_declare(f"{prefix}.in", passive=True)
    ch.exchange_declare(f"{prefix}.out", passive=True)
    ch.exchange_declare(f"{prefix}.dlx", passive=True)
    ch.queue_declare(f"{prefix}.dead", passive=True)
    ch.basic_publish(f"{prefix}.in", "BANK.BOC", b"<x/>")
    ch.basic_publish(f"{prefix}.in", "CUS.0800", b"<y/>")
    conn.close()
    batch = []
    for _ in range(20):
        batch += bus.next_batch(10, wait_s=0.2)
        if len(batch) == 2:
            break
    assert sorted(d.routing_key for d in batch) == ["BANK.BOC", "CUS.0800"]
    bus.ack_through(batch[-1].tag)
    assert bus.queue_depths([f"{prefix}.in.q"]) == {f"{prefix}.in.q": 0}


def test_a_message_no_queue_takes_is_reported_unroutable_and_a_bound_one_is_confirmed(
    bus: Bus, prefix: str, rabbitmq: str
) -> None:
    nobody = Outbound(1, "INS.NOBODY", "M", "CDGI900", None, b"<x/>")
    [(row, published)] = _relay(bus, [nobody])
    assert row is nobody and published.state == "UNROUTABLE"
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    ch = conn.channel()
    ch.queue_declare(f"{prefix}.partner.PORTAL", durable=True)
    ch.queue_bind(f"{prefix}.partner.PORTAL", f"{prefix}.out", routing_key="PORTAL")
    portal = replace(nobody, outbox_id=2, receiver_id="PORTAL")
    [(row, published)] = _relay(bus, [portal])
    assert row is portal and published.state == "SENT"
    _method, props, body = ch.basic_get(f"{prefix}.partner.PORTAL", auto_ack=True)
    assert body == b"<x/>"
    assert (props.message_id, props.type, props.app_id, props.delivery_mode) == (
        "M",
        "CDGI900",
        "cdgi-adapter",
        2,
    )
    assert props.content_type == "application/xml" and props.timestamp
    ch.queue_delete(f"{prefix}.partner.PORTAL")
    conn.close()


def test_unacked_deliveries_return_to_the_queue_when_the_connection_closes(
    bus: Bus, prefix: str, rabbitmq: str
) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    conn.channel().basic_publish(f"{prefix}.in", "PORTAL", b"<x/>")
    conn.close()
    first = []
    for _ in range(20):
        first = bus.next_batch(5, wait_s=0.2)
        if first:
            break
    assert len(first) == 1
    bus.close()  # no ack: as a crash between receipt and commit would leave it
    bus.connect()
    again = []
    for _ in range(20):
        again = bus.next_batch(5, wait_s=0.2)
        if again:
            break
    assert [d.body for d in again] == [b"<x/>"] and again[0].redelivered
    bus.ack_through(again[-1].tag)


def _partner_queue(rabbitmq: str, prefix: str, party: str):  # type: ignore[no-untyped-def]
    """A connection, a channel and a queue bound for ``party`` on the outbound exchange."""
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    ch = conn.channel()
    queue = f"{prefix}.partner.{party}"
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, f"{prefix}.out", routing_key=party)
    return conn, ch, queue


def test_many_messages_are_published_with_confirms_in_flight_each_answered_in_order(
    bus: Bus, prefix: str, rabbitmq: str
) -> None:
    conn, ch, queue = _partner_queue(rabbitmq, prefix, "PORTAL")
    bus.window = 64  # several windows in one send
    rows = [Outbound(n, "INS.NOBODY" if n % 50 == 7 else "PORTAL", f"M{n:04d}", "CDGI900",
                     None, f"<m{n}/>".encode()) for n in range(300)]
    heard = [(row.outbox_id, published.state) for row, published in _relay(bus, rows)]
    assert [n for n, _ in heard] == list(range(300)), "every row answered, in order"
    unroutable = [n for n, state in heard if state == "UNROUTABLE"]
    assert unroutable == [n for n in range(300) if n % 50 == 7]
    assert all(state == "SENT" for n, state in heard if n not in unroutable)
    got = []
    while (item := ch.basic_get(queue, auto_ack=True))[0] is not None:
        got.append(item[2])
    assert got == [row.body for row in rows if row.receiver_id == "PORTAL"]
    ch.queue_delete(queue)
    conn.close()


def test_publishing_without_waiting_reports_each_answer_once_when_it_is_collected(
    bus: Bus, prefix: str, rabbitmq: str
) -> None:
    conn, ch, queue = _partner_queue(rabbitmq, prefix, "BANK.BOC")
    heard: list[tuple[int, str]] = []

    def hear(row: Outbound, published: Published) -> None:
        heard.append((row.outbox_id, published.state))

    first = [Outbound(n, "BANK.BOC" if n % 3 else "INS.NOBODY", f"A{n:04d}", "CDGI900", None,
                      f"<a{n}/>".encode()) for n in range(40)]
    bus.send(first, hear)
    assert len(heard) + bus.unsettled == 40, "what is not yet answered is still tracked"
    second = [Outbound(100 + n, "BANK.BOC", f"B{n:04d}", "CDGI900", None, b"<b/>")
              for n in range(10)]
    bus.send(second, hear)  # the next batch goes out before the first one's confirms are read
    bus.settle(hear)
    bus.settle(hear, wait=True)
    assert bus.unsettled == 0
    assert [n for n, _ in heard] == [r.outbox_id for r in first + second], "each once, in order"
    assert {n for n, state in heard if state == "UNROUTABLE"} == {n for n in range(40) if n % 3 == 0}
    bus.settle(hear, wait=True)
    assert len(heard) == 50, "nothing is reported twice"
    ch.queue_delete(queue)
    conn.close()


def test_what_send_returns_from_is_on_its_way_without_waiting_for_the_next_call(
    bus: Bus, prefix: str, rabbitmq: str
) -> None:
    conn, ch, queue = _partner_queue(rabbitmq, prefix, "PORTAL")
    rows = [Outbound(n, "PORTAL", f"W{n:04d}", "CDGI900", None, f"<w{n}/>".encode())
            for n in range(20)]
    bus.send(rows, lambda _row, _published: None)
    # Nothing else drives the bus's connection now: the messages must have been written.
    got: list[bytes] = []
    deadline = time.monotonic() + 5
    while len(got) < len(rows) and time.monotonic() < deadline:
        item = ch.basic_get(queue, auto_ack=True)
        if item[0] is None:
            time.sleep(0.05)
        else:
            got.append(item[2])
    assert got == [row.body for row in rows]
    bus.settle(lambda _row, _published: None, wait=True)
    ch.queue_delete(queue)
    conn.close()
