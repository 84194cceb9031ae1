"""Business traffic for the reliability suite: many enterprises through the whole lifecycle,
a fleet of daemons to kill and restart, partners that collect everything sent to them, and the
exactly-once checks, counted from the partners' side and from the store.

The traffic is played in waves: every message of a wave depends only on messages of earlier
waves (a card before the grant it signs, a quota before its decision, a deduction before its
restore), and a wave is published once the store holds the previous one. So the expected
answer of every message is known in advance, whatever daemon handles it and however often
daemons die, and each message's effect can be checked one by one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pika
from lxml import etree
from sqlalchemy import bindparam, text

from adapter import documents as doc
from adapter.domain.identifiers import make_uscc
from adapter.envelope import business_element, field as field_of, new_message_id, read_head
from adapter.settings import Settings
from adapter.sim import SimPartner, der
from card import SoftwareSigner, sign_document
from adapter.scenario import PARTNERS as SCENARIO_PARTNERS
from tests.support.harness import ROOT, register

PARTNERS = SCENARIO_PARTNERS  # the lifecycle's six simulated partners
INSURED = Decimal("5000000.00")


# -- the daemons ---------------------------------------------------------------------------
@dataclass
class Fleet:
    """``cdgi run`` processes on one prefix, store and card: start, SIGKILL, restart, stop."""

    env: dict[str, str]
    state_dir: Path
    log_dir: Path
    pin: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0
    kills: int = 0

    def start(self, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """One more daemon; waits until it reports ``running`` (unless ``wait`` is false)."""
        self.started += 1
        log = (self.log_dir / f"daemon-{self.started:03d}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "adapter", "run"], env=self.env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        if wait:
            self.wait_state(proc, "running")
        return proc

    def status_file(self, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
        """What the daemon last wrote to its status file ({} if nothing yet)."""
        path = self.state_dir / f"{self.env['CDGI_PREFIX']}-{proc.pid}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def wait_state(self, proc: subprocess.Popen[bytes], state: str, timeout: float = 60.0,
                   detail: str = "") -> dict[str, Any]:
        """Wait until ``proc`` reports ``state`` (and ``detail`` within its detail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"daemon {proc.pid} exited with {proc.returncode}:\n"
                                     f"{self.logs()[-3000:]}")
            status = self.status_file(proc)
            if status.get("state") == state and detail in (status.get("detail") or ""):
                return status
            time.sleep(0.05)
        raise AssertionError(f"daemon {proc.pid} never reported {state} {detail!r} within "
                             f"{timeout}s (last: {self.status_file(proc)})")

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no chance to finish anything."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.kills += 1
        self.procs.remove(proc)

    def stop_all(self) -> list[int]:
        """SIGTERM every daemon; their exit codes."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=60) for proc in self.procs]
        self.procs.clear()
        return codes

    def logs(self) -> str:
        """Every daemon's log, concatenated."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines whose ``event`` is ``event``."""
        found = []
        for line in self.logs().splitlines():
            if f'"{event}"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event:
                found.append(entry)
        return found

    def cdgi_status(self) -> dict[str, Any]:
        """``cdgi status --json`` with the daemons' environment."""
        out = subprocess.run([sys.executable, "-m", "adapter", "status", "--json"], env=self.env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert self.pin not in out.stdout + out.stderr, "the PIN reached cdgi status"
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def check_logs(self) -> None:
        """No PIN and no defect in any daemon's log.

        pika logs its own connection failures with a traceback during a broker outage; a
        defect is a traceback through our code, or the pipeline's internal error."""
        logs = self.logs()
        assert self.pin not in logs, "the PIN reached a daemon log"
        ours = ("/adapter/", "/card/", "/store/", "/mappings/", "/schemas/")
        defects = [line for line in logs.splitlines()
                   if ("Traceback" in line and any(path in line for path in ours))
                   or "internal error while handling a message" in line]
        assert defects == [], f"a daemon met a defect:\n{defects[0][:4000]}"


def daemon_env(base: dict[str, str], *, prefix: str, database_url: str, amqp_url: str,
               state_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a daemon under test (the card's variables come in ``base``)."""
    return {**os.environ, **base, "CDGI_PREFIX": prefix, "CDGI_DATABASE_URL": database_url,
            "CDGI_AMQP_URL": amqp_url, "CDGI_STATE_DIR": str(state_dir),
            "CDGI_LOG_FORMAT": "json", "CDGI_RELAY_INTERVAL_S": "0.2", "CDGI_HTTP_PORT": "0",
            "CDGI_RETRY_MAX_S": "2", "CDGI_ORDER_GRACE_S": "3", **extra}


# -- the partners' side --------------------------------------------------------------------
@dataclass
class Got:
    """One message a partner received."""

    party: str
    message_id: str | None
    message_type: str | None
    correlation_id: str | None
    body: bytes


class Partners:
    """The simulated partners: their keys, a publisher, and a collector of everything sent to
    them. Both connections reconnect by themselves, so they ride through a broker restart."""

    def __init__(self, settings: Settings, engine: Any) -> None:
        self.settings = settings
        self.sims: dict[str, SimPartner] = {}
        for party_id, name in PARTNERS.items():
            key = SoftwareSigner.generate(f"{party_id} test", key_name=party_id)
            register(engine, party_id, key, name)
            self.sims[party_id] = SimPartner(party_id, key, settings)
        self.got: list[Got] = []
        self.published = 0  # publishes that the broker confirmed
        self.republished = 0  # of which after a broker failure
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pub: Any = None
        self._declare()
        self._thread = threading.Thread(target=self._collect, name="collector", daemon=True)
        self._thread.start()

    def _connect(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url))

    def _declare(self) -> None:
        conn = self._connect()
        ch = conn.channel()
        s = self.settings
        ch.exchange_declare(s.exchange_in, "topic", durable=True)
        ch.exchange_declare(s.exchange_out, "topic", durable=True)
        for sim in self.sims.values():
            ch.queue_declare(sim.queue, durable=True)
            ch.queue_bind(sim.queue, s.exchange_out, routing_key=sim.party_id)
        conn.close()

    # publishing ----------------------------------------------------------------------------
    def publish(self, party: str, body: bytes, deadline_s: float = 120.0) -> None:
        """Publish with confirms; after a broker failure, reconnect and publish the same bytes
        again (the adapter sees an identical duplicate if the first copy got through)."""
        deadline = time.monotonic() + deadline_s
        props = pika.BasicProperties(delivery_mode=2, content_type="application/xml")
        failed = False
        while True:
            try:
                if self._pub is None or not self._pub[0].is_open:
                    conn = self._connect()
                    ch = conn.channel()
                    ch.confirm_delivery()
                    self._pub = (conn, ch)
                self._pub[1].basic_publish(self.settings.exchange_in, party, body,
                                           properties=props, mandatory=True)
                self.published += 1
                if failed:
                    self.republished += 1
                return
            except (pika.exceptions.AMQPError, OSError):
                failed = True
                self._close_pub()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _close_pub(self) -> None:
        if self._pub is not None:
            try:
                self._pub[0].close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._pub = None

    # collecting ----------------------------------------------------------------------------
    def _collect(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._connect()
                ch = conn.channel()
                ch.basic_qos(prefetch_count=500)
                for party, sim in self.sims.items():
                    ch.basic_consume(sim.queue, self._on_message(party), auto_ack=False)
                while not self._stop.is_set():
                    conn.process_data_events(time_limit=0.2)
                conn.close()
            except (pika.exceptions.AMQPError, OSError):
                time.sleep(0.5)

    def _on_message(self, party: str) -> Callable[..., None]:
        def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
            with self._lock:
                self.got.append(Got(party, props.message_id, props.type, props.correlation_id,
                                    body))
            # Acked after it is kept: a broker restart before the ack redelivers it (a copy).
            ch.basic_ack(method.delivery_tag)
        return on_message

    def received(self) -> list[Got]:
        """A snapshot of what the partners got so far."""
        with self._lock:
            return list(self.got)

    def close(self) -> None:
        """Stop collecting; delete the partners' queues."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._close_pub()
        try:
            conn = self._connect()
            ch = conn.channel()
            for sim in self.sims.values():
                ch.queue_delete(sim.queue)
            ch.exchange_delete(self.settings.exchange_alerts)
            conn.close()
        except (pika.exceptions.AMQPError, OSError):
            pass


# -- the business mix ----------------------------------------------------------------------
@dataclass
class Msg:
    """One inbound message and what it must come to."""

    sender: str
    message_type: str
    message_id: str
    body: bytes
    status: int  # the receipt's ReturnStatus: 1, 2, or -1 for any refusal
    code: str = "0000"
    forwards: tuple[tuple[str, str], ...] = ()  # (receiver, type) sent on because of it
    ledger: bool = False  # writes exactly one ledger line
    progress: int = 0  # progress rows (statuses the enterprise sees) it records


@dataclass
class _Enterprise:
    n: int
    uscc: str
    name: str
    legal: SoftwareSigner
    operator: SoftwareSigner

    def no(self, kind: str) -> str:
        return f"{kind}{self.n:06d}"


Step = Callable[[_Enterprise], list[tuple[str, str, etree._Element, dict[str, Any]]]]


class BusinessMix:
    """Enterprises going through credit rating, cards, agreement, authorization, quota,
    policy, guarantee ledger (with a flagged restore), claim and query: 23 inbound messages
    each, of 16 message types, in 14 waves."""

    PER_ENTERPRISE = 23

    def __init__(self, partners: Partners, enterprises: int, *, first: int = 1,
                 today: date | None = None) -> None:
        self.partners = partners
        self.today = today or datetime.now(UTC).date()
        # A few card keys shared by many enterprises: each binding is its own card (CardNo),
        # and generating an RSA key per card would cost more than the whole run.
        legal = [SoftwareSigner.generate(f"legal card {i}") for i in range(4)]
        ops = [SoftwareSigner.generate(f"operator card {i}") for i in range(4)]
        self.enterprises = [
            _Enterprise(n, make_uscc(f"91210100MA{n:07d}"), f"可靠性测试企业{n}号",
                        legal[n % 4], ops[n % 4])
            for n in range(first, first + enterprises)
        ]
        self.waves: list[Step] = [self._w1, self._w2, self._w3, self._w4, self._w5, self._w6,
                                  self._w7, self._w8, self._w9, self._w10, self._w11,
                                  self._w12, self._w13, self._w14]

    def build(self, wave: int, *, group_by_step: bool = False) -> list[Msg]:
        """The signed messages of one wave for every enterprise.

        ``group_by_step`` puts the first step of every enterprise first, then the second...
        (so that several daemons handle an enterprise's messages of one wave at once)."""
        per_enterprise = [self._sign(e, self.waves[wave](e)) for e in self.enterprises]
        if not group_by_step:
            return [m for msgs in per_enterprise for m in msgs]
        width = max(len(msgs) for msgs in per_enterprise)
        return [msgs[i] for i in range(width) for msgs in per_enterprise if i < len(msgs)]

    def _sign(self, e: _Enterprise, steps: list[tuple[str, str, etree._Element, dict[str, Any]]]
              ) -> list[Msg]:
        out = []
        for sender, mtype, business, expect in steps:
            card = expect.pop("card", None)
            if card is not None:
                business = sign_document(business, e.legal if card == "LEGAL" else e.operator)
            mid = new_message_id()
            body = self.partners.sims[sender].envelope(mtype, business, message_id=mid)
            out.append(Msg(sender, mtype, mid, body, **expect))
        return out

    # the waves ------------------------------------------------------------------------------
    def _w1(self, e: _Enterprise) -> list[Any]:
        t = self.today
        steps = []
        for role, key, card_no in (("LEGAL", e.legal, e.no("LP")), ("OPERATOR", e.operator,
                                                                    e.no("OP"))):
            steps.append(("PORTAL", "CDGI101", doc.card_binding(
                uscc=e.uscc, enterprise_name=e.name, customs_code=f"21019{e.n:05d}",
                card_no=card_no, card_role=role, certificate=der(key),
                valid_from=t - timedelta(days=30), valid_to=t + timedelta(days=730),
                seals=[doc.Seal(seal_id=f"SEAL-{card_no}", holder_name="张伟",
                                valid_from=t - timedelta(days=30),
                                valid_to=t + timedelta(days=730))]), {"status": 1}))
        steps.append(("CUS.0800", "CDGI401", doc.credit_info(
            uscc=e.uscc, customs_code=f"21019{e.n:05d}", rating="ADVANCED", rated_date=t,
            records=[doc.CreditRecord(date=t, kind="AEO", description="高级认证企业")]),
            {"status": 1}))
        return steps

    def _w2(self, e: _Enterprise) -> list[Any]:
        return [
            ("PORTAL", "CDGI103", doc.operator_grant(
                uscc=e.uscc, operator_card_no=e.no("OP"),
                permissions=["AUTHORIZE", "QUOTA", "POLICY", "QUERY"]),
             {"status": 1, "card": "LEGAL"}),
            ("PORTAL", "CDGI105", doc.agreement_sign(
                agreement_no=e.no("AG"), uscc=e.uscc, payer_name=e.name, bank_code="BOC",
                bank_name="中国银行沈阳分行", clearing_bank_code="104221000011",
                account_no="6217000012345678", customs_district="0800",
                seal_id=f"SEAL-{e.no('LP')}"),
             {"status": 2, "card": "LEGAL", "forwards": (("BANK.BOC", "CDGI105"),),
              "progress": 1}),
        ]

    def _w3(self, e: _Enterprise) -> list[Any]:
        return [
            ("BANK.BOC", "CDGI201", doc.agreement_result(
                agreement_no=e.no("AG"), result="EFFECTIVE", effective_date=self.today),
             {"status": 1, "forwards": (("PORTAL", "CDGI505"),), "progress": 1}),
            ("PORTAL", "CDGI107", doc.authorization_sign(
                auth_no=e.no("AU"), uscc=e.uscc, insurer_code="PICC", scopes=["CREDIT_QUERY"],
                valid_to=self.today + timedelta(days=365), seal_id=f"SEAL-{e.no('OP')}"),
             {"status": 2, "card": "OPERATOR", "forwards": (("INS.PICC", "CDGI107"),),
              "progress": 1}),
        ]

    def _quota(self, e: _Enterprise, no: str) -> etree._Element:
        return doc.quota_apply(
            quota_no=no, uscc=e.uscc, insurer_code="PICC", applied_amount=INSURED,
            term_start=self.today, term_end=self.today + timedelta(days=364),
            contact=doc.Contact(name="王芳", phone="024-88886666"))

    def _w4(self, e: _Enterprise) -> list[Any]:
        return [("PORTAL", "CDGI109", self._quota(e, e.no("Q")),
                 {"status": 2, "card": "OPERATOR", "progress": 1,
                  "forwards": (("INS.PICC", "CDGI109"), ("INS.PICC", "CDGI507"))})]

    def _w5(self, e: _Enterprise) -> list[Any]:
        return [
            ("INS.PICC", "CDGI301", doc.quota_decision(quota_no=e.no("Q"), result="UNDERWRITING"),
             {"status": 1, "forwards": (("PORTAL", "CDGI505"),), "progress": 1}),
            # A second application while one is effective: refused, changes nothing.
            ("PORTAL", "CDGI109", self._quota(e, e.no("QX")),
             {"status": -1, "code": "2404", "card": "OPERATOR"}),
        ]

    def _w6(self, e: _Enterprise) -> list[Any]:
        t = self.today
        return [("INS.PICC", "CDGI301", doc.quota_decision(
            quota_no=e.no("Q"), result="APPROVED", approved_amount=INSURED,
            rate=Decimal("0.0080"), valid_from=t, valid_to=t + timedelta(days=364)),
            {"status": 1, "forwards": (("PORTAL", "CDGI505"),), "progress": 1})]

    def _w7(self, e: _Enterprise) -> list[Any]:
        invoice = doc.Invoice(type="SPECIAL", title=e.name, taxpayer_id=e.uscc,
                              address="沈阳市和平区中华路1号", phone="024-88886666",
                              bank_name="中国银行沈阳分行", bank_account="6217000012345678",
                              email="finance@example.cn")
        return [("PORTAL", "CDGI113", doc.policy_apply(
            apply_no=e.no("A"), quota_no=e.no("Q"), uscc=e.uscc, insured_amount=INSURED,
            term_start=self.today, term_end=self.today + timedelta(days=180),
            insured_customs=["0800"], coverage=["DUTY", "VAT"], invoice=invoice),
            {"status": 2, "card": "OPERATOR", "forwards": (("INS.PICC", "CDGI113"),),
             "progress": 1})]

    def _w8(self, e: _Enterprise) -> list[Any]:
        pdf = b"%PDF-1.7 electronic policy " + e.no("P").encode()
        return [("INS.PICC", "CDGI305", doc.policy_decision(
            apply_no=e.no("A"), result="ISSUED", policy_no=e.no("P"), premium=Decimal("40000.00"),
            rate=Decimal("0.0080"), term_start=self.today,
            term_end=self.today + timedelta(days=180),
            e_policy=doc.EPolicy.of(f"{e.no('P')}.pdf", "application/pdf", pdf)),
            {"status": 1, "forwards": (("CUS.0800", "CDGI501"), ("PORTAL", "CDGI505")),
             "progress": 1})]

    def _w9(self, e: _Enterprise) -> list[Any]:
        return [("CUS.0800", "CDGI403", doc.policy_record_result(
            policy_no=e.no("P"), result="RECORDED", guarantee_record_no=e.no("G")),
            {"status": 1, "forwards": (("PORTAL", "CDGI505"),), "progress": 1})]

    def entry(self, e: _Enterprise, k: int) -> str:
        """The 18-digit EntryId of the enterprise's ``k``-th declaration."""
        return f"08002026{e.n:08d}{k:02d}"

    def _deduct(self, e: _Enterprise, k: int, amount: Decimal) -> Any:
        return ("CUS.0800", "CDGI405", doc.guarantee_deduct(
            guarantee_record_no=e.no("G"), entry_id=self.entry(e, k), declaration_type="CL",
            customs_district="0800",
            tax_items=[doc.TaxItem(tax_kind="DUTY", amount=amount * Decimal("0.4")),
                       doc.TaxItem(tax_kind="VAT", amount=amount * Decimal("0.6"))],
            total=amount, deduct_time=datetime.now(UTC),
            payment_due_date=self.today - timedelta(days=120)),
            {"status": 1, "ledger": True})

    def _w10(self, e: _Enterprise) -> list[Any]:
        return [self._deduct(e, 1, Decimal("100000.00")), self._deduct(e, 2, Decimal("57600.00")),
                self._deduct(e, 3, Decimal("20000.00"))]

    def _w11(self, e: _Enterprise) -> list[Any]:
        now = datetime.now(UTC)
        return [
            ("CUS.0800", "CDGI407", doc.guarantee_restore(
                guarantee_record_no=e.no("G"), entry_id=self.entry(e, 1),
                amount=Decimal("100000.00"), paid_time=now), {"status": 1, "ledger": True}),
            # A restore of a declaration never deducted: recorded and flagged.
            ("CUS.0800", "CDGI407", doc.guarantee_restore(
                guarantee_record_no=e.no("G"), entry_id=self.entry(e, 9),
                amount=Decimal("10.00"), paid_time=now),
             {"status": 1, "code": "2802", "ledger": True}),
            self._deduct(e, 4, Decimal("1000.00")),
        ]

    def _w12(self, e: _Enterprise) -> list[Any]:
        return [("CUS.0800", "CDGI409", doc.claim_notice(
            claim_no=e.no("C"), policy_no=e.no("P"), guarantee_record_no=e.no("G"),
            cause="OVERDUE", entries=[doc.ClaimEntry(
                entry_id=self.entry(e, 2), tax=Decimal("57600.00"),
                due_date=self.today - timedelta(days=120), overdue_days=120,
                late_fee=Decimal("3456.00"))],
            total=Decimal("61056.00"), notice_date=self.today),
            {"status": 2, "forwards": (("INS.PICC", "CDGI409"), ("PORTAL", "CDGI505")),
             "progress": 1})]

    def _w13(self, e: _Enterprise) -> list[Any]:
        return [("INS.PICC", "CDGI307", doc.claim_settlement(
            claim_no=e.no("C"), policy_no=e.no("P"), result="PAID",
            paid_amount=Decimal("61056.00"), paid_time=datetime.now(UTC)),
            {"status": 1, "progress": 1, "forwards": (
                ("INS.CPIC", "CDGI503"), ("INS.PAIC", "CDGI503"), ("PORTAL", "CDGI505"))})]

    def _w14(self, e: _Enterprise) -> list[Any]:
        return [("PORTAL", "CDGI115", doc.claim_info_query(query_no=e.no("QQ"), uscc=e.uscc),
                 {"status": 1, "card": "OPERATOR", "forwards": (("PORTAL", "CDGI116"),)})]

    def final_state_problems(self, engine: Any) -> list[str]:
        """Every enterprise ends where its story ends; each ledger adds up line by line."""
        problems = []
        with engine.connect() as c:
            def one(sql: str, **kw: Any) -> dict[str, Any]:
                return {row[0]: row[1] for row in c.execute(text(sql), kw)}
            quotas = one("SELECT quota_no, status FROM quota")
            policies = one("SELECT apply_no, status FROM policy")
            claims = one("SELECT claim_no, status FROM claim")
            agreements = one("SELECT agreement_no, status FROM agreement")
            ledgers: dict[str, list[Any]] = defaultdict(list)
            for row in c.execute(text(
                    "SELECT guarantee_record_no, kind, amount, available_after, discrepancy "
                    "FROM ledger_entry ORDER BY id")):
                ledgers[row[0]].append(row[1:])
        for e in self.enterprises:
            for what, got, key, want in (("quota", quotas, e.no("Q"), "APPROVED"),
                                         ("policy", policies, e.no("A"), "RECORDED"),
                                         ("claim", claims, e.no("C"), "PAID"),
                                         ("agreement", agreements, e.no("AG"), "EFFECTIVE")):
                if got.get(key) != want:
                    problems.append(f"{what} {key} is {got.get(key)}, not {want}")
            if e.no("QX") in quotas:
                problems.append(f"refused quota {e.no('QX')} was stored")
            lines = ledgers.get(e.no("G"), [])
            if len(lines) != 6:
                problems.append(f"ledger {e.no('G')} has {len(lines)} lines, not 6")
            available = INSURED
            for kind, amount, after, flag in lines:
                available += -amount if kind == "DEDUCT" else amount
                if Decimal(after) != available:
                    problems.append(f"ledger {e.no('G')}: {kind} {amount} shows available "
                                    f"{after}, the lines before it make {available}")
        return problems


# -- playing it ----------------------------------------------------------------------------
def committed(engine: Any, ids: Sequence[str]) -> int:
    """How many of ``ids`` the store has an inbound journal row for (0 when it cannot say)."""
    if not ids:
        return 0
    try:
        with engine.connect() as c:
            query = text("SELECT count(DISTINCT message_id) FROM journal "
                         "WHERE direction = 'IN' AND message_id IN :ids")
            query = query.bindparams(bindparam("ids", expanding=True))
            return int(c.execute(query, {"ids": list(ids)}).scalar() or 0)
    except Exception:  # noqa: BLE001 - the store may be down on purpose
        engine.dispose()
        return 0


def wait_committed(engine: Any, ids: Sequence[str], timeout: float,
                   tick: Callable[[], None] = lambda: None) -> None:
    """Wait until the store holds every message of ``ids``."""
    deadline = time.monotonic() + timeout
    while True:
        done = committed(engine, ids)
        if done == len(set(ids)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"only {done} of {len(set(ids))} messages were committed "
                                 f"within {timeout}s")
        tick()
        time.sleep(0.1)


def play(mix: BusinessMix, partners: Partners, engine: Any, *, wave_timeout: float = 180.0,
         group_by_step: bool = False, duplicate_every: int = 0,
         on_wave: Callable[[int], None] = lambda _: None,
         tick: Callable[[], None] = lambda: None) -> list[Msg]:
    """Publish every wave once the store holds the one before; returns what was sent.

    ``duplicate_every`` n: every n-th message is published twice, byte for byte (a partner
    that re-sends), so that identical duplicates travel beside the originals."""
    sent: list[Msg] = []
    previous: list[str] = []
    nxt = mix.build(0, group_by_step=group_by_step)
    for wave in range(len(mix.waves)):
        msgs = nxt
        wait_committed(engine, previous, wave_timeout, tick)
        on_wave(wave)
        for i, m in enumerate(msgs):
            partners.publish(m.sender, m.body)
            if duplicate_every and i % duplicate_every == duplicate_every - 1:
                partners.publish(m.sender, m.body)
        sent += msgs
        previous = [m.message_id for m in msgs]
        # Sign the next wave while the daemons work on this one.
        nxt = mix.build(wave + 1, group_by_step=group_by_step) if wave + 1 < len(
            mix.waves) else []
    wait_committed(engine, previous, wave_timeout, tick)
    return sent


# -- checking ------------------------------------------------------------------------------
@dataclass
class Verdict:
    """What the checks found, as figures and as a list of problems."""

    figures: dict[str, int]
    problems: list[str]

    @property
    def lost(self) -> int:
        return self.figures["lost"]

    @property
    def doubled(self) -> int:
        return self.figures["doubled"]


def _parsed(body: bytes) -> tuple[str | None, etree._Element | None]:
    root = etree.fromstring(body)
    el = business_element(root)
    return read_head(root).correlation_id, el


def settle(partners: Partners, engine: Any, sent: Sequence[Msg], timeout: float,
           tick: Callable[[], None] = lambda: None) -> None:
    """Wait until every outbound row is sent and every partner has received it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        try:
            with engine.connect() as c:
                pending = c.execute(text(
                    "SELECT count(*) FROM outbox WHERE state <> 'SENT'")).scalar()
                pending += c.execute(text("SELECT count(*) FROM waiting")).scalar()
                out_ids = {r[0] for r in c.execute(text(
                    "SELECT DISTINCT message_id FROM journal WHERE direction = 'OUT'"))}
        except Exception:  # noqa: BLE001
            engine.dispose()
            time.sleep(0.5)
            continue
        got = {g.message_id for g in partners.received()}
        if not pending and out_ids <= got and len(got) >= len(sent):
            return
        time.sleep(0.5)


def verify(sent: Sequence[Msg], partners: Partners, engine: Any, settings: Settings,
           mix: BusinessMix | None = None) -> Verdict:
    """Exactly one effect and exactly one receipt per inbound message; every outbound message
    at its receiver; identical re-sends the only duplicates."""
    problems: list[str] = []
    lost = doubled = 0
    received = partners.received()
    sender_of = {m.message_id: m.sender for m in sent}
    with engine.connect() as c:
        journal_in = Counter(r[0] for r in c.execute(text(
            "SELECT message_id FROM journal WHERE direction = 'IN'")))
        inbox = Counter(r[0] for r in c.execute(text("SELECT message_key FROM inbox")))
        ledger = Counter(r[0] for r in c.execute(text("SELECT message_id FROM ledger_entry")))
        progress = Counter(r[0] for r in c.execute(text("SELECT message_id FROM progress")))
        transitions = Counter(tuple(r) for r in c.execute(text(
            "SELECT subject, subject_no, status FROM progress")))
        out_rows = list(c.execute(text(
            "SELECT message_id, message_type, receiver_id, correlation_id, raw, status "
            "FROM journal WHERE direction = 'OUT'")))
        outbox_states = Counter(r[0] for r in c.execute(text("SELECT state FROM outbox")))

    # What the partners received, by MessageId: copies must be byte-identical.
    by_id: dict[str, list[Got]] = defaultdict(list)
    for g in received:
        by_id[g.message_id or ""].append(g)
    copies = 0
    for mid, gots in by_id.items():
        copies += len(gots) - 1
        if len({g.body for g in gots}) != 1:
            problems.append(f"{mid} arrived twice with different bytes")
            doubled += 1
    # Receipts for each inbound message, by its MessageId.
    receipts: dict[str, set[str]] = defaultdict(set)
    answer: dict[str, etree._Element] = {}
    for mid, gots in by_id.items():
        if gots[0].message_type != "CDGI900":
            continue
        _, el = _parsed(gots[0].body)
        assert el is not None
        ori = field_of(el, "OriMessageId") or ""
        receipts[ori].add(mid)
        answer[ori] = el
        if gots[0].party != sender_of.get(ori, gots[0].party):
            problems.append(f"the receipt of {ori} went to {gots[0].party}")

    out_by_corr: dict[tuple[str | None, str, str], set[str]] = defaultdict(set)
    for mid, mtype, receiver, corr, raw, status in out_rows:
        if mtype != "CDGI900":
            out_by_corr[(corr, receiver, mtype)].add(mid)
        gots = by_id.get(mid)
        if status != "SENT":
            problems.append(f"outbound {mtype} {mid} to {receiver} is {status}")
        if not gots:
            problems.append(f"outbound {mtype} {mid} to {receiver} never reached it")
            lost += 1
        elif gots[0].party != receiver or gots[0].body != bytes(raw):
            problems.append(f"outbound {mid} reached {gots[0].party} with other bytes")
    known_out = {r[0] for r in out_rows}
    strays = [mid for mid in by_id if mid not in known_out]
    if strays:
        problems.append(f"{len(strays)} message(s) reached partners without a journal row")

    for m in {m.message_id: m for m in sent}.values():
        mid = m.message_id
        if journal_in[mid] != 1:
            problems.append(f"{m.message_type} {mid} has {journal_in[mid]} journal rows")
            lost += journal_in[mid] == 0
            doubled += max(0, journal_in[mid] - 1)
        if inbox[mid] != 1:
            problems.append(f"{m.message_type} {mid} has {inbox[mid]} inbox rows")
        n = len(receipts.get(mid, ()))
        if n != 1:
            problems.append(f"{m.message_type} {mid} got {n} distinct receipts")
            lost += n == 0
            doubled += max(0, n - 1)
        else:
            el = answer[mid]
            status, code = int(field_of(el, "ReturnStatus") or 0), field_of(el, "ReturnCode")
            if not ((status == m.status or (m.status < 0 and status < 0)) and code == m.code):
                problems.append(f"{m.message_type} {mid}: receipt {status}/{code}, expected "
                                f"{m.status}/{m.code} ({field_of(el, 'ReturnInfo')})")
        if ledger[mid] != int(m.ledger):
            problems.append(f"{m.message_type} {mid} wrote {ledger[mid]} ledger lines")
            doubled += ledger[mid] > int(m.ledger)
            lost += ledger[mid] < int(m.ledger)
        if progress[mid] != m.progress:
            problems.append(f"{m.message_type} {mid} recorded {progress[mid]} statuses, "
                            f"expected {m.progress}")
            doubled += progress[mid] > m.progress
            lost += progress[mid] < m.progress
        want = Counter(m.forwards)
        for (receiver, mtype), count in want.items():
            have = len(out_by_corr.get((mid, receiver, mtype), ()))
            if have != count:
                problems.append(f"{m.message_type} {mid} sent {have} {mtype} to {receiver}, "
                                f"expected {count}")
                doubled += max(0, have - count)
                lost += max(0, count - have)
    for key, count in transitions.items():
        if count != 1:
            problems.append(f"transition {key} was applied {count} times")
            doubled += count - 1
    if mix is not None:
        problems += mix.final_state_problems(engine)
    depths = _queue_depths(settings, [settings.queue_in, settings.queue_dead])
    for name, depth in depths.items():
        if depth:
            problems.append(f"{depth} message(s) left in {name}")
            lost += depth if name == settings.queue_dead else 0
    figures = {
        "inbound_messages": len({m.message_id for m in sent}),
        "inbound_types": len({m.message_type for m in sent}),
        "receipts": sum(len(v) for v in receipts.values()),
        "outbound_messages": len(known_out),
        "outbound_by_partners_received": len(by_id),
        "identical_copies_received": copies,
        "outbox_rows": sum(outbox_states.values()),
        "outbox_not_sent": sum(v for k, v in outbox_states.items() if k != "SENT"),
        "ledger_lines": sum(ledger.values()),
        "state_transitions": sum(transitions.values()),
        "lost": lost,
        "doubled": doubled,
    }
    return Verdict(figures, problems)


def _queue_depths(settings: Settings, names: Iterable[str]) -> dict[str, int]:
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    out = {}
    for name in names:
        ch = conn.channel()
        out[name] = ch.queue_declare(name, passive=True).method.message_count
        ch.close()
    conn.close()
    return out


def digest(body: bytes) -> str:
    """A short digest for reports."""
    return hashlib.sha256(body).hexdigest()[:12]
