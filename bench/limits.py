"""The physical limit of the business mix, and a straightforward pipeline, measured standalone.

    python bench/limits.py [--enterprises 100] [--sample 400]

The limit is 1 / the sum of the mandatory per-message costs of the mix, each measured alone
with the same SoftHSM2 token, broker and store kinds the daemon uses:

- consume: a quorum queue, prefetch 100, one multiple-ack per 50 (as the daemon acks);
- parse: the hardened parser (``adapter.envelope.parse``);
- validate: lxml XSD (``schemas.validate``) of the inbound envelope;
- verify: ``card.verify_envelope`` (and ``card.verify_document`` for the messages that carry
  an enterprise document);
- sign: x signatures per message of the mix, through ``card.sign_envelope`` on the card and,
  beside it, raw PKCS#11 ``sign_bytes`` (the card alone);
- store: the rows a message leaves (journal in, a journal row, event and outbox row per
  outbound message, an inbox row), inserted in transactions of 50 messages;
- publish: the outbound messages of a message, persistent, in a transaction of 50 messages'
  worth (one round trip and one fsync per batch; per-message confirms are printed beside).

The straightforward pipeline does consume -> parse -> xmlschema validate -> verify -> store a
row and commit -> sign each outbound (receipt-sized) envelope -> publish each with a confirm
wait -> ack, one message at a time, nothing batched: the baseline the daemon must beat.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pika  # noqa: E402
from cryptography import x509  # noqa: E402
from sqlalchemy import insert  # noqa: E402

import schemas  # noqa: E402
from adapter.envelope import (  # noqa: E402
    build_envelope,
    build_receipt,
    business_element,
    contract_time,
    new_message_id,
    parse,
    serialize,
)
from adapter.settings import Settings  # noqa: E402
from bench.common import AMQP, command_line, create_database, drop_database  # noqa: E402
from bench.mix import Message, Mix  # noqa: E402
from card import Pkcs11Signer, sign_envelope, verify_document, verify_envelope  # noqa: E402
from store.db import UnitOfWork, make_engine, utcnow  # noqa: E402
from store.models import Journal  # noqa: E402
from store.repo import Repo  # noqa: E402

BATCH = 50


@dataclass
class Limits:
    """Per-message costs in seconds, and what they add up to."""

    stages: dict[str, float]  # per inbound message (sign and publish already x outputs)
    signatures: float
    sign_raw: float  # one raw PKCS#11 signature
    sign_xml: float  # one card.sign_envelope
    publish_confirm: float  # one publish with a confirm wait

    def total(self, store: str, *, raw_sign: bool = False) -> float:
        s = dict(self.stages)
        if raw_sign:
            s["sign"] = self.sign_raw * self.signatures
        return sum(v for k, v in s.items() if not k.startswith("store") or k == f"store {store}")

    def limit(self, store: str, *, raw_sign: bool = False) -> float:
        return 1.0 / self.total(store, raw_sign=raw_sign)

    def table(self, stores: list[str]) -> str:
        lines = ["  stage                         per message   share",
                 ]
        for store in stores:
            total = self.total(store)
            for name, cost in self.stages.items():
                if name.startswith("store") and name != f"store {store}":
                    continue
                lines.append(f"  {name + ' [' + store + ']':<30} {cost * 1e6:9.0f} us  "
                             f"{cost / total:6.1%}")
            lines.append(f"  {'sum [' + store + ']':<30} {total * 1e6:9.0f} us  -> limit "
                         f"{1 / total:6.1f} msg/s (card.sign_envelope); "
                         f"{self.limit(store, raw_sign=True):6.1f} msg/s with raw PKCS#11 sign")
        lines.append(f"  one signature: card.sign_envelope {self.sign_xml * 1e6:.0f} us, raw "
                     f"PKCS#11 {self.sign_raw * 1e6:.0f} us; {self.signatures:.2f} per message")
        lines.append(f"  one publish with a confirm wait: {self.publish_confirm * 1e6:.0f} us "
                     f"(the batched publish above is what the limit counts)")
        return "\n".join(lines)


def _each(items: list, fn: Callable, rounds: int = 3) -> float:  # type: ignore[type-arg]
    """Seconds per item of ``fn(item)``: the best of ``rounds`` rounds over the items (a stage
    alone costs what it costs when nothing else on the shared machine gets in its way; one
    round caught in a slow moment made the limit, and every ratio to it, move by a third)."""
    fn(items[0])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - start) / len(items))
    return best


def open_card(token_env: dict[str, str]) -> Pkcs11Signer:
    """The bench token, in this process (one token directory per process: SoftHSM2 reads its
    configuration once)."""
    os.environ["SOFTHSM2_CONF"] = token_env["SOFTHSM2_CONF"]
    return Pkcs11Signer(token_env["CDGI_PKCS11_MODULE"], token_env["CDGI_TOKEN_LABEL"],
                        token_env["CDGI_KEY_LABEL"], token_env["CDGI_CARD_PIN"])


def _outbound_envelope(msg: Message) -> bytes:
    """A receipt-sized envelope from the adapter (what it signs per outbound message)."""
    return serialize(build_envelope(
        message_type="CDGI900", sender_id="DC", receiver_id=msg.sender,
        business=build_receipt(ori_message_id=msg.message_id, ori_message_type=msg.message_type,
                               status=1, code="0000", info="received",
                               time=contract_time(datetime.now(UTC))),
        send_time=contract_time(datetime.now(UTC)), message_id=new_message_id()))


def measure(mix: Mix, sample: list[Message], card: Pkcs11Signer, stores: dict[str, str]) -> Limits:
    """Each mandatory stage, alone (``stores``: kind -> URL of a migrated, empty store)."""
    s = Settings()
    certs = {p: k.certificate for p, k in mix.partners.items()}
    outputs = sum(m.outputs for m in sample) / len(sample)
    stages: dict[str, float] = {}

    stages["consume"] = consume_cost([m.body for m in sample] * max(1, 3000 // len(sample)))
    roots = [parse(m.body, max_bytes=s.max_bytes, max_depth=s.max_depth) for m in sample]
    stages["parse"] = _each(sample, lambda m: parse(m.body, max_bytes=s.max_bytes,
                                                    max_depth=s.max_depth), rounds=5)
    stages["validate (lxml XSD)"] = _each(roots, schemas.validate, rounds=5)
    pairs = list(zip(sample, roots, strict=True))

    def verify(pair: tuple[Message, object]) -> None:
        msg, root = pair
        verified = verify_envelope(root, [certs[msg.sender]])  # type: ignore[arg-type]
        if msg.doc_cert is not None:
            element = business_element(verified.signed)
            verify_document(element, [x509.load_pem_x509_certificate(msg.doc_cert)])

    stages["verify"] = _each(pairs, verify)
    outs = [etree_of(_outbound_envelope(m)) for m in sample[:100]]
    sign_xml = _each(outs, lambda root: sign_envelope(root, card))
    data = b"x" * 1024
    sign_raw = _each([data] * 300, card.sign_bytes)
    stages["sign"] = sign_xml * outputs
    for kind, url in stores.items():
        stages[f"store {kind}"] = store_cost(url, sample)
    publish_batched, publish_confirm = publish_costs(
        [serialize(sign_envelope(r, card)) for r in outs], outputs)
    stages["publish"] = publish_batched * outputs
    return Limits(stages, outputs, sign_raw, sign_xml, publish_confirm)


def etree_of(body: bytes):  # type: ignore[no-untyped-def]
    from lxml import etree

    return etree.fromstring(body)


def consume_cost(bodies: list[bytes]) -> float:
    """Seconds per message consumed from a quorum queue (prefetch 100, ack every 50)."""
    queue = f"bench.limits.{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    try:
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        props = pika.BasicProperties(delivery_mode=2)
        for body in bodies:
            ch.basic_publish("", queue, body, props)
        while ch.queue_declare(queue, passive=True).method.message_count < len(bodies):
            time.sleep(0.05)
        ch.basic_qos(prefetch_count=100)
        got = 0
        start = time.perf_counter()
        for method, _p, _b in ch.consume(queue, inactivity_timeout=5):
            if method is None:
                break
            got += 1
            if got % BATCH == 0 or got == len(bodies):
                ch.basic_ack(method.delivery_tag, multiple=True)
            if got == len(bodies):
                break
        elapsed = time.perf_counter() - start
        ch.cancel()
    finally:
        ch.queue_delete(queue)
        conn.close()
    return elapsed / max(got, 1)


def store_cost(url: str, sample: list[Message]) -> float:
    """Seconds per message for the rows it leaves, 50 messages per transaction, written the
    way the daemon writes them (``store.recorder``): its inbound journal row, event and
    inbox row, and per outbound message a journal row, an event and an outbox row."""
    engine = make_engine(url)
    out_body = b"<x/>" * 700  # a signed outbound envelope is about 2.8 kB
    msgs = sample * max(1, 1000 // len(sample))
    start = time.perf_counter()
    for b in range(0, len(msgs), BATCH):
        with UnitOfWork(engine) as uow:
            repo = Repo(uow.session)
            for n, m in enumerate(msgs[b:b + BATCH]):
                jin = repo.add_journal(direction="IN", message_id=m.message_id,
                                       message_type=m.message_type, sender_id=m.sender,
                                       receiver_id="DC", digest="0" * 64, size=len(m.body),
                                       raw=m.body, status="PROCESSED")
                repo.add_event(jin, "inbound", "PROCESSED",
                               detail='{"stages": ["parsed", "schema valid"]}')
                receipt = None
                for _ in range(m.outputs):
                    out_id = new_message_id()
                    jout = repo.add_journal(direction="OUT", message_id=out_id,
                                            message_type="CDGI900", sender_id="DC",
                                            receiver_id=m.sender, correlation_id=m.message_id,
                                            size=len(out_body), raw=out_body, status="PENDING")
                    repo.add_event(jout, "outbound", "PENDING", detail="signed; queued")
                    receipt = repo.add_outbox(journal_id=jout, message_id=out_id,
                                              message_type="CDGI900", receiver_id=m.sender,
                                              body=out_body)
                repo.add_inbox(sender_key=m.sender, message_key=f"{b + n}-{m.message_id}",
                               digest="0" * 64, journal_id=jin, receipt_outbox_id=receipt)
            repo.flush()
            uow.commit()
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed / len(msgs)


def publish_costs(bodies: list[bytes], outputs: float) -> tuple[float, float]:
    """(seconds per message published in transactions of a batch's worth, per confirmed one)."""
    queue = f"bench.limits.out.{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    props = pika.BasicProperties(delivery_mode=2, content_type="application/xml")
    per_tx = max(1, round(BATCH * outputs))
    n = 0
    try:
        ch.tx_select()
        start = time.perf_counter()
        for _ in range(10):
            for i in range(per_tx):
                ch.basic_publish("", queue, bodies[i % len(bodies)], props, mandatory=True)
                n += 1
            ch.tx_commit()
        batched = (time.perf_counter() - start) / n
        confirm_ch = conn.channel()
        confirm_ch.confirm_delivery()
        m = 300
        start = time.perf_counter()
        for i in range(m):
            confirm_ch.basic_publish("", queue, bodies[i % len(bodies)], props, mandatory=True)
        confirmed = (time.perf_counter() - start) / m
    finally:
        ch.queue_delete(queue)
        conn.close()
    return batched, confirmed


# -- the straightforward pipeline ------------------------------------------------------------
def straightforward(mix: Mix, sample: list[Message], card: Pkcs11Signer, url: str) -> float:
    """Messages per second of a minimal one-at-a-time pipeline over ``sample``."""
    import xmlschema

    xsd = xmlschema.XMLSchema10(str(schemas.xsd_path()))
    s = Settings()
    certs = {p: k.certificate for p, k in mix.partners.items()}
    prefix = f"bench-plain-{uuid.uuid4().hex[:8]}"
    inq, outq = f"{prefix}.in", f"{prefix}.out"
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    ch.queue_declare(inq, durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_declare(outq, durable=True)
    for m in sample:
        ch.basic_publish("", inq, m.body, pika.BasicProperties(delivery_mode=2, type=m.step,
                                                               app_id=m.sender))
    by_id = {m.message_id: m for m in sample}
    pub = conn.channel()
    pub.confirm_delivery()
    ch.basic_qos(prefetch_count=1)
    engine = make_engine(url)
    jt = Journal.__table__
    done = 0
    try:
        start = time.perf_counter()
        for method, props, body in ch.consume(inq, inactivity_timeout=5):
            if method is None:
                break
            root = parse(body, max_bytes=s.max_bytes, max_depth=s.max_depth)
            xsd.validate(root)
            verified = verify_envelope(root, [certs[props.app_id]])
            head_id = verified.signed.findtext("{urn:cdgi:1}Head/{urn:cdgi:1}MessageId")
            msg = by_id[head_id]
            if msg.doc_cert is not None:
                verify_document(business_element(verified.signed),
                                [x509.load_pem_x509_certificate(msg.doc_cert)])
            now = utcnow()
            with engine.begin() as c:
                c.execute(insert(jt).values(
                    direction="IN", message_id=msg.message_id, message_type=msg.message_type,
                    sender_id=msg.sender, receiver_id="DC", size=len(body), raw=body,
                    status="PROCESSED", created_at=now, updated_at=now))
            for _ in range(msg.outputs):
                signed = serialize(sign_envelope(etree_of(_outbound_envelope(msg)), card))
                pub.basic_publish("", outq, signed,
                                  pika.BasicProperties(delivery_mode=2), mandatory=True)
            ch.basic_ack(method.delivery_tag)
            done += 1
            if done == len(sample):
                break
        elapsed = time.perf_counter() - start
        ch.cancel()
    finally:
        ch.queue_delete(inq)
        ch.queue_delete(outq)
        conn.close()
        engine.dispose()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=100)
    parser.add_argument("--sample", type=int, default=400)
    args = parser.parse_args()
    from bench.mix import build
    from tests.support.softhsm import make_token

    mix = build(args.enterprises)
    print(mix.composition())
    sample = mix.sample(args.sample)
    with tempfile.TemporaryDirectory(prefix="cdgi-bench-") as tmpdir:
        tmp = Path(tmpdir)
        token = make_token(tmp / "card", token_label="CDGI-BENCH", key_label="bench")
        card = open_card(token.env)
        stores = {}
        pg_name = None
        try:
            stores["sqlite"], _ = create_database("sqlite", tmp)
            stores["postgresql"], pg_name = create_database("postgresql", tmp)
            limits = measure(mix, sample, card, stores)
            plain = straightforward(mix, sample[: max(100, args.sample // 2)], card,
                                    stores["sqlite"])
        finally:
            card.close()
            drop_database(pg_name)
    print(f"\nphysical limit of the mix (stages measured alone, {len(sample)} sampled messages)")
    print(limits.table(["sqlite", "postgresql"]))
    print(f"\nstraightforward pipeline (SQLite, one at a time): {plain:.1f} msg/s "
          f"= {plain / limits.limit('sqlite'):.3f} of the SQLite limit")
    print(f"\nreproduce: {command_line()}")


if __name__ == "__main__":
    main()
