"""The bad-input corpus through the running daemon: real RabbitMQ, real store, SoftHSM2 card.

One daemon per backend. Each case is sent alone, and before the next one the suite records
what it caused: the journal rows, the receipt that reached (or did not reach) the sender,
the business tables before and after, whether the daemon still runs, and whether it still
accepts a good message. Then each case is asserted as a test of its own, named after it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest
from cryptography import x509
from lxml import etree
from sqlalchemy import text

from adapter.envelope import serialize
from adapter.scenario import Mailboxes, ScenarioFailed
from adapter.sim import Received
from card import verify_envelope
from store.models import Journal
from tests.security.corpus import (
    BUILDERS,
    CUSTOMS,
    DISABLED,
    KNOWN_WRONG,
    NS,
    REASONS,
    Case,
    World,
    message_id_of,
)
from tests.security.suite import REPORT, stop
from tests.support.harness import ROOT, Running
from tests.support.leaks import Evidence, Secret, assert_no_leaks, key_secrets, pin_secrets
from tests.support.softhsm import TokenInfo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# The business state (CONTRACT §6 and the registry): what no refused message may touch.
BUSINESS_TABLES = (
    "partner", "partner_cert", "enterprise", "bound_card", "seal", "credit", "agreement",
    "authorization", "quota", "increase", "policy", "ledger_entry", "claim", "progress",
)
WAIT_S = 20.0


@dataclass
class Outcome:
    """What one case caused."""

    case: Case | None
    inbound: list[Journal] = field(default_factory=list)
    outbound: list[Journal] = field(default_factory=list)
    receipt: Received | None = None
    changed: dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = field(
        default_factory=dict
    )
    alive: bool = False
    followup: Received | None = None
    followup_changed: set[str] = field(default_factory=set)
    """The tables the good message after it changed: proof the snapshots see changes."""
    problem: str | None = None  # the case could not even be run: why


@dataclass
class Run:
    """The corpus sent through one daemon."""

    daemon: Running
    world: World
    outcomes: dict[str, Outcome]
    mail: Mailboxes
    seconds: float


def _snapshot(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table: sorted(
                (tuple(str(v) for v in row) for row in conn.execute(text(f'SELECT * FROM "{table}"'))),
            )
            for table in BUSINESS_TABLES
        }


def _diff(before: dict[str, list[tuple[Any, ...]]],
          after: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    return {
        table: (
            [row for row in before[table] if row not in after[table]],
            [row for row in after[table] if row not in before[table]],
        )
        for table in BUSINESS_TABLES
        if before[table] != after[table]
    }


def _journal_after(engine: Any, watermark: int) -> list[Journal]:
    from sqlmodel import Session, col, select

    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(
            select(Journal).where(col(Journal.id) > watermark).order_by(col(Journal.id))
        ))


def _watermark(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM journal")).scalar_one())


def _wait(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.02)
    raise TimeoutError(f"no {what} within {timeout} s")


class _Publisher:
    """Publishes bytes as they are under any routing key (a partner's own, or a stranger's)."""

    def __init__(self, running: Running) -> None:
        self.settings = running.settings
        self.conn = pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def publish(self, routing_key: str, body: bytes, message_id: str | None) -> None:
        self.ch.basic_publish(
            self.settings.exchange_in, routing_key, body,
            properties=pika.BasicProperties(delivery_mode=2, content_type="application/xml",
                                            message_id=message_id),
        )

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


def _good(run_daemon: Running, mail: Mailboxes, world: World) -> Received | None:
    """A good message after a bad one: a fresh credit rating from customs."""
    mid = run_daemon.customs.send("CDGI401", world.credit("ADVANCED"))
    try:
        return mail.take(CUSTOMS, "CDGI900", lambda m: m.field("OriMessageId") == mid,
                         timeout=WAIT_S)
    except ScenarioFailed:
        return None


def _run_case(daemon: Running, mail: Mailboxes, publisher: _Publisher, world: World,
              name: str) -> Outcome:
    try:
        bad = BUILDERS[name](world)
    except Exception as e:  # noqa: BLE001 - a builder's defect fails that case alone
        return Outcome(None, problem=f"building the case failed: {type(e).__name__}: {e}")
    outcome = Outcome(bad)
    engine = daemon.engine
    watermark = _watermark(engine)
    before = _snapshot(engine)
    publisher.publish(bad.routing_key, bad.body, bad.message_id or f"amqp-{name}")
    try:
        outcome.inbound = _wait(
            "journal row",
            lambda: [r for r in _journal_after(engine, watermark) if r.direction == "IN"],
        )
    except TimeoutError as e:
        outcome.problem = str(e)
    # The receipt's journal row is written in the same transaction as the inbound one.
    outcome.outbound = [r for r in _journal_after(engine, watermark) if r.direction == "OUT"]
    for row in outcome.outbound:
        if row.message_type == "CDGI900" and row.receiver_id in daemon.partners:
            try:
                outcome.receipt = mail.take(row.receiver_id, "CDGI900",
                                            lambda m, mid=row.message_id: m.message_id == mid,
                                            timeout=WAIT_S)
            except ScenarioFailed:
                pass
    after = _snapshot(engine)
    outcome.changed = _diff(before, after)
    outcome.alive = daemon.alive()
    if outcome.alive:
        outcome.followup = _good(daemon, mail, world)
        outcome.followup_changed = set(_diff(after, _snapshot(engine)))
    return outcome


@pytest.fixture(scope="module")
def run(launch: Callable[..., Running]) -> Iterator[Run]:
    """Set the state up, then send every case of the corpus, one at a time."""
    started = time.monotonic()
    world = World.make()
    daemon = launch(world.registered(), disabled=(DISABLED,))
    mail = Mailboxes(daemon.partners)
    sent = []
    for party, message_type, business in world.setup():
        sent.append((party, message_type, daemon.partners[party].send(message_type, business)))
    for party, message_type, mid in sent:
        receipt = mail.take(party, "CDGI900", lambda m, mid=mid: m.field("OriMessageId") == mid,
                            timeout=WAIT_S)
        assert int(receipt.field("ReturnStatus") or 0) > 0, (
            f"setup {message_type} from {party} refused: {receipt.field('ReturnCode')} "
            f"{receipt.field('ReturnInfo')}"
        )
        if message_type == "CDGI401":
            world.setup_ids["credit"] = mid
    publisher = _Publisher(daemon)
    try:
        outcomes = {name: _run_case(daemon, mail, publisher, world, name) for name in BUILDERS}
    finally:
        publisher.close()
    yield Run(daemon, world, outcomes, mail, time.monotonic() - started)


def _params(*, known_wrong: bool) -> list[Any]:
    """Every case by name; those the product answers wrongly as strict xfails, if asked."""
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_WRONG[name]))
        if known_wrong and name in KNOWN_WRONG else name
        for name in BUILDERS
    ]


def _ran(run: Run, name: str) -> tuple[Outcome, Case]:
    outcome = run.outcomes[name]
    assert outcome.case is not None and outcome.problem is None, outcome.problem
    return outcome, outcome.case


@pytest.mark.parametrize("name", _params(known_wrong=True))
def test_a_bad_message_gets_the_contracts_code_in_the_journal_and_the_receipt(
    run: Run, name: str
) -> None:
    outcome, bad = _ran(run, name)
    assert [(r.status, r.code) for r in outcome.inbound] == [("REFUSED", bad.code)], (
        f"{bad.name}: {[r.info for r in outcome.inbound]}")
    if name in REASONS:  # refused for the flaw this case has, not another one
        assert re.search(REASONS[name], outcome.inbound[0].info or ""), outcome.inbound[0].info
    if outcome.receipt is not None:
        receipt = outcome.receipt
        assert receipt.field("ReturnCode") == bad.code
        assert int(receipt.field("ReturnStatus") or "0") < 0
        assert receipt.field("OriMessageId") == (bad.message_id or "Unknown")
        assert receipt.field("OriMessageType") == (bad.message_type or "Unknown")
        assert receipt.correlation_id == bad.message_id


@pytest.mark.parametrize("name", _params(known_wrong=False))
def test_a_bad_message_is_journaled_answered_to_its_sender_and_changes_nothing(
    run: Run, name: str, card_certificate: x509.Certificate
) -> None:
    outcome, bad = _ran(run, name)
    # One inbound journal row, refused, keeping the bytes that travelled.
    assert [r.status for r in outcome.inbound] == ["REFUSED"]
    row = outcome.inbound[0]
    assert row.code and bytes(row.raw) == bad.body

    # The receipt goes to the sender where there is one to answer, and to no one else.
    if bad.reply_to is None:
        assert outcome.outbound == [], "an unknown sender is answered by no one"
    else:
        assert [(r.message_type, r.receiver_id) for r in outcome.outbound] == [
            ("CDGI900", bad.reply_to)], "exactly one receipt, to the sender, nothing else"
        receipt = outcome.receipt
        assert receipt is not None, f"the receipt never reached {bad.reply_to}"
        assert receipt.field("ReturnCode") == row.code
        assert receipt.field("ReturnInfo") == (row.info or "")[:1000]
        verify_envelope(etree.fromstring(receipt.body), [card_certificate])

    # No business state changed; the daemon still runs and still accepts a good message.
    assert outcome.changed == {}, f"a refused message changed the state: {outcome.changed}"
    assert outcome.alive, "the daemon died"
    assert outcome.followup is not None, "the daemon took no good message after this one"
    assert (outcome.followup.field("ReturnStatus"), outcome.followup.field("ReturnCode")) == (
        "1", "0000")
    assert outcome.followup_changed == {"credit"}, "the snapshots would not see a change"


def test_the_corpus_covers_every_kind_of_refusal(run: Run) -> None:
    codes = {o.case.code for o in run.outcomes.values() if o.case is not None}
    assert set(BUILDERS) - set(KNOWN_WRONG) <= set(REASONS), "every case says why it is refused"
    assert codes >= {"0001", "0002", "0003", "0004", "1001", "1002", "1003", "1004", "1005",
                     "1006", "1007"}
    backend = run.daemon.settings.database_url.split(":", 1)[0]
    REPORT.append(f"bad-input corpus on {backend}: {len(run.outcomes)} cases (codes "
                  f"{', '.join(sorted(codes))}) through one daemon in {run.seconds:.1f} s, "
                  f"each followed by a good message")


def test_a_comment_injected_into_signed_text_changes_nothing_of_what_is_read(run: Run) -> None:
    # Comments are outside exclusive C14N: the signature stays valid, and the value read must
    # be the signed one, not the text before the comment that a careless reader would take.
    world, daemon = run.world, run.daemon
    root = world.envelope(CUSTOMS, "CDGI401", world.credit("ADVANCED", description="记录完整"))
    rating = root.find(".//cdgi:Rating", NS)
    rating.text = "ADV"  # type: ignore[union-attr]
    comment = etree.Comment(" injected ")
    comment.tail = "ANCED"
    rating.append(comment)  # type: ignore[union-attr]
    description = root.find(".//cdgi:Description", NS)
    description.text = "记录"  # type: ignore[union-attr]
    comment = etree.Comment(" - ")
    comment.tail = "完整"
    description.append(comment)  # type: ignore[union-attr]
    mid = message_id_of(root)
    daemon.customs.send_raw(serialize(root))

    receipt = run.mail.take(CUSTOMS, "CDGI900", lambda m: m.field("OriMessageId") == mid,
                            timeout=WAIT_S)
    assert (receipt.field("ReturnStatus"), receipt.field("ReturnCode")) == ("1", "0000"), (
        receipt.field("ReturnInfo"))
    with daemon.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT rating, records, message_id FROM credit WHERE uscc = :u"),
            {"u": world.a.uscc},
        ).one()
    assert stored.message_id == mid
    assert stored.rating == "ADVANCED"
    assert "记录完整" in stored.records and "injected" not in stored.records


def _cdgi_all(daemon: Running, calls: dict[str, tuple[list[str], dict[str, str]]]
              ) -> dict[str, tuple[int, str]]:
    """Run ``cdgi`` commands side by side (each costs seconds of imports): exit code, output."""
    base = {**os.environ, "CDGI_PREFIX": daemon.settings.prefix,
            "CDGI_DATABASE_URL": daemon.settings.database_url,
            "CDGI_AMQP_URL": daemon.settings.amqp_url}
    procs = {
        what: subprocess.Popen([sys.executable, "-m", "adapter", *args], cwd=ROOT,
                               env={**base, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        for what, (args, env) in calls.items()
    }
    said = {}
    for what, proc in procs.items():
        output, _ = proc.communicate(timeout=60)
        said[what] = (proc.returncode, output)
    return said


def test_nothing_the_adapter_said_during_the_corpus_holds_a_secret(
    run: Run, token: TokenInfo, so_pin: str
) -> None:
    # Last of the module: stop the daemon so that its log is complete, then read it all.
    daemon = run.daemon
    assert stop(daemon) == 0, "the daemon did not stop cleanly after the corpus"
    evidence = Evidence()
    rows = evidence.add_daemon(daemon)
    for party, box in run.mail.kept.items():
        evidence.add_received(f"kept for {party}:", box)
    for outcome in run.outcomes.values():
        evidence.add_received("received:", [m for m in (outcome.receipt, outcome.followup) if m])
    refused = next(o.inbound[0].message_id for o in run.outcomes.values()
                   if o.inbound and o.inbound[0].message_id and o.case and o.case.message_id)
    wrong_pin = "wrong-" + os.urandom(6).hex()
    said = _cdgi_all(daemon, {
        f"cdgi why {refused}": (["why", refused or ""], {}),
        "cdgi card info (wrong PIN)": (["card", "info"], {**token.env, "CDGI_CARD_PIN": wrong_pin}),
    })
    for what, (_, output) in said.items():
        evidence.add(what, output)
    assert said["cdgi card info (wrong PIN)"][0] != 0, "a wrong PIN opened the card"
    assert said[f"cdgi why {refused}"][0] == 0 and "REFUSED" in said[f"cdgi why {refused}"][1]

    assert rows > 2 * len(run.outcomes) and len(evidence) > rows, "too little was read"
    world = run.world
    cards = [(f"card {no}", key) for ent in (world.a, world.b)
             for no, (_, key, _) in ent.cards.items()]
    secrets = (pin_secrets(token.pin, so_pin) + [Secret("the wrong PIN tried", wrong_pin)]
               + key_secrets(world.keys.items()) + key_secrets(cards))
    passwd = Path("/etc/passwd")  # what the external-entity case would have exfiltrated
    if passwd.is_file():
        first = passwd.read_text(errors="replace").splitlines()[0]
        secrets.append(Secret("/etc/passwd (external entity)", first))
    assert_no_leaks(evidence, secrets)
