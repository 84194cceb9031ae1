"""Batches through the pipeline in-process, on real SQLite and PostgreSQL with the SoftHSM2 card:
the rows a batch leaves behind, and messages that come before the one they depend on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from adapter import documents
from adapter.domain.identifiers import make_uscc
from adapter.pipeline import Delivery, Pipeline, _read_ahead
from adapter.registry import Registry
from adapter.settings import Settings
from adapter.sim import SimPartner
from card import Pkcs11Signer, SoftwareSigner
from store.db import UnitOfWork, utcnow
from store.models import (
    BoundCard,
    Credit,
    Enterprise,
    Inbox,
    Journal,
    JournalEvent,
    LedgerEntry,
    Outbox,
    Policy,
    Quota,
    Waiting,
)
from store.repo import Repo, due_waiting
from tests.support import statements
from tests.support.harness import register
from tests.support.softhsm import TokenInfo, session_token

pytestmark = pytest.mark.integration

GRN = "GR0800202600001"
USCC = "91210100MA0DEM0016"


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> TokenInfo:
    return session_token(tmp_path_factory)


@dataclass
class Bench:
    engine: Any
    pipeline: Pipeline
    customs: SimPartner

    def run(self, *bodies: bytes, **kw: Any) -> list[tuple[str | None, str, str | None]]:
        result = self.pipeline.process_batch(
            self.engine, [Delivery(body, "CUS.0800", **kw) for body in bodies])
        return result.outcomes

    def deduct(self, entry: str, amount: str) -> bytes:
        return self.customs.envelope("CDGI405", documents.guarantee_deduct(
            guarantee_record_no=GRN, entry_id=entry, declaration_type="CL",
            customs_district="0800",
            tax_items=[documents.TaxItem(tax_kind="DUTY", amount=Decimal(amount))],
            total=Decimal(amount), deduct_time=datetime.now(UTC),
            payment_due_date=date(2026, 12, 31)))

    def restore(self, entry: str, amount: str) -> bytes:
        return self.customs.envelope("CDGI407", documents.guarantee_restore(
            guarantee_record_no=GRN, entry_id=entry, amount=Decimal(amount),
            paid_time=datetime.now(UTC)))

    def retry_due(self, after_s: float = 3600) -> list[tuple[str | None, str, str | None]]:
        rows = due_waiting(self.engine, utcnow() + timedelta(seconds=after_s), limit=50)
        result = self.pipeline.process_batch(self.engine, [
            Delivery(r.body, r.routing_key, waiting_id=r.id, journal_id=r.journal_id,
                     first_seen=r.first_seen, attempts=r.attempts) for r in rows])
        return result.outcomes

    def rows(self, model: Any) -> list[Any]:
        with Session(self.engine) as s:
            return list(s.exec(select(model)).all())


def make_bench(migrated_url: str, engines: Any, token: TokenInfo, grace_s: float) -> Iterator[Bench]:
    engine = engines(migrated_url)
    key = SoftwareSigner.generate("CUS.0800 test", key_name="CUS.0800")
    register(engine, "CUS.0800", key)
    now = utcnow()
    with Session(engine) as s:  # a recorded policy, as the lifecycle leaves it
        s.add(Policy(apply_no="A1", policy_no="P1", quota_no="Q1", uscc=USCC,
                     insurer_code="PICC", insured_amount=Decimal("100000.00"),
                     term_start=date(2026, 1, 1), term_end=date(2026, 12, 31),
                     insured_customs="0800", coverage="DUTY", status="RECORDED",
                     guarantee_record_no=GRN, message_id="M", created_at=now, updated_at=now))
        s.commit()
    settings = replace(Settings(), database_url=migrated_url, order_grace_s=grace_s)
    signer = Pkcs11Signer(token.module, token.token_label, token.key_label, token.pin)
    pipeline = Pipeline(settings, Registry(engines(migrated_url, writer=False)), signer,
                        owner="test")
    yield Bench(engine, pipeline, SimPartner("CUS.0800", key, settings))
    signer.close()


@pytest.fixture()
def bench(migrated_url: str, engines: Any, token: TokenInfo) -> Iterator[Bench]:
    yield from make_bench(migrated_url, engines, token, grace_s=60)


def test_a_batch_writes_every_row_once_and_answers_a_duplicate_with_the_same_receipt(
    bench: Bench,
) -> None:
    first = bench.deduct("080020261000000001", "10.00")
    tampered = first.replace(b"10.00", b"99.00")
    outcomes = bench.run(first, tampered, first, bench.deduct("080020261000000002", "5.00"))
    assert [status for _, status, _ in outcomes] == [
        "PROCESSED", "REFUSED", "DUPLICATE", "PROCESSED"]
    inbound = [j for j in bench.rows(Journal) if j.direction == "IN"]
    assert [j.status for j in inbound] == ["PROCESSED", "REFUSED", "PROCESSED"]
    assert len(bench.rows(LedgerEntry)) == 2  # the refusal and the duplicate changed nothing
    outbox = bench.rows(Outbox)
    assert len(outbox) == 4  # three receipts and the identical re-send of the first
    by_id: dict[str, list[bytes]] = {}
    for row in outbox:
        by_id.setdefault(row.message_id, []).append(row.body)
    assert sorted(len(v) for v in by_id.values()) == [1, 1, 2]
    assert all(len(set(bodies)) == 1 for bodies in by_id.values()), "re-sends are identical"
    events = bench.rows(JournalEvent)
    assert {e.journal_id for e in events} == {j.id for j in bench.rows(Journal)}
    assert any(e.stage == "dedupe" for e in events)
    assert len(bench.rows(Inbox)) == 3  # two processed, one refused (keyed by its bytes)


def test_a_restore_before_its_deduction_waits_and_is_applied_after_it(bench: Bench) -> None:
    entry = "080020261000000007"
    restore = bench.restore(entry, "40.00")
    assert [s for _, s, _ in bench.run(restore)] == ["WAITING"]
    assert bench.rows(Outbox) == [], "no receipt while it waits"
    waiting = bench.rows(Waiting)
    assert len(waiting) == 1 and waiting[0].attempts == 1
    assert bench.retry_due(after_s=0) == [], "nothing is due before its time"
    # Delivered again while it waits (the broker redelivered it): still one waiting row.
    assert [s for _, s, _ in bench.run(restore)] == ["WAITING"]
    assert len(bench.rows(Waiting)) == 1

    assert [s for _, s, _ in bench.run(bench.deduct(entry, "40.00"))] == ["PROCESSED"]
    assert [(s, c) for _, s, c in bench.retry_due()] == [("PROCESSED", None)]
    assert bench.rows(Waiting) == []
    lines = bench.rows(LedgerEntry)
    assert [(line.kind, line.discrepancy) for line in lines] == [("DEDUCT", None),
                                                                  ("RESTORE", None)]
    assert Decimal(lines[-1].available_after) == Decimal("100000.00")
    restores = [j for j in bench.rows(Journal) if j.message_type == "CDGI407"]
    assert len(restores) == 1 and restores[0].status == "PROCESSED", "one row tells its story"
    stories = [e for e in bench.rows(JournalEvent) if e.journal_id == restores[0].id]
    assert [e.status for e in stories][:1] == ["WAITING"] and stories[-1].status == "PROCESSED"
    receipts = [o for o in bench.rows(Outbox) if o.correlation_id == waiting[0].message_id]
    assert len(receipts) == 1 and b"<cdgi:ReturnCode>0000<" in receipts[0].body
    assert bench.retry_due() == [], "handled once"


def test_a_copy_of_a_waiting_message_keeps_waiting_in_its_own_batch_and_after_its_cause(
    bench: Bench,
) -> None:
    entry = "080020261000000010"
    restore = bench.restore(entry, "2.00")
    # Two copies in one batch (a partner's re-send beside the broker's delivery): one waits.
    assert [s for _, s, _ in bench.run(restore, restore)] == ["WAITING", "WAITING"]
    assert len(bench.rows(Waiting)) == 1
    # The deduction comes in; a further copy still waits rather than being handled as new,
    # so that the waiting one, handled on its next try, is the only one journaled.
    assert [s for _, s, _ in bench.run(bench.deduct(entry, "2.00"), restore)] == [
        "PROCESSED", "WAITING"]
    assert [s for _, s, _ in bench.retry_due()] == ["PROCESSED"]
    assert [s for _, s, _ in bench.run(restore)] == ["DUPLICATE"], "answered as handled"
    restores = [j for j in bench.rows(Journal) if j.message_type == "CDGI407"]
    assert [j.status for j in restores] == ["PROCESSED"]
    dedupes = [e for e in bench.rows(JournalEvent)
               if e.journal_id == restores[0].id and e.stage == "dedupe"]
    assert len(dedupes) == 3
    assert len([line for line in bench.rows(LedgerEntry) if line.kind == "RESTORE"]) == 1


def test_a_waiting_message_is_taken_by_one_process_only(bench: Bench) -> None:
    bench.run(bench.restore("080020261000000008", "1.00"))
    (row,) = bench.rows(Waiting)
    again = Delivery(row.body, row.routing_key, waiting_id=row.id, journal_id=row.journal_id,
                     first_seen=row.first_seen - timedelta(hours=1), attempts=row.attempts)
    first = bench.pipeline.process_batch(bench.engine, [again])
    second = bench.pipeline.process_batch(bench.engine, [again])
    assert [s for _, s, _ in first.outcomes] == ["FLAGGED"]
    assert [s for _, s, _ in second.outcomes] == ["TAKEN"]
    assert [line.discrepancy for line in bench.rows(LedgerEntry)] == ["2802"]


def test_past_its_grace_a_restore_without_deduction_is_flagged(
    migrated_url: str, engines: Any, token: TokenInfo
) -> None:
    for bench in make_bench(migrated_url, engines, token, grace_s=0):
        outcomes = bench.run(bench.restore("080020261000000009", "3.00"))
        assert [s for _, s, _ in outcomes] == ["FLAGGED"]
        assert [line.discrepancy for line in bench.rows(LedgerEntry)] == ["2802"]
        assert bench.rows(Waiting) == []
        assert len(bench.rows(Outbox)) == 1
        assert [j.status for j in bench.rows(Journal) if j.direction == "IN"] == ["FLAGGED"]


def test_a_batch_reads_the_rows_its_handlers_look_up_ahead_and_sees_its_own_changes(
    bench: Bench,
) -> None:
    """One query for the credit rows of a whole batch; the second rating of an enterprise in
    the same batch is judged against the first (not yet written), not against the store."""
    selects: list[str] = []
    event.listen(bench.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: selects.append(statement)
                 if statement.startswith("SELECT") and "FROM credit" in statement else None)
    usccs = [make_uscc(f"91210100MA0RA{i:04d}") for i in range(5)]

    def rating(uscc: str, rating: str, day: int) -> bytes:
        return bench.customs.envelope("CDGI401", documents.credit_info(
            uscc=uscc, customs_code="0800000001", rating=rating, rated_date=date(2026, 3, day)))

    outcomes = bench.run(*[rating(u, "GENERAL", 1) for u in usccs],
                         rating(usccs[0], "ADVANCED", 9), rating(usccs[0], "GENERAL", 5))
    assert {status for _, status, _ in outcomes} == {"PROCESSED"}
    assert len(selects) == 1, selects
    with Session(bench.engine) as s:
        on_file = {c.uscc: (c.rating, c.rated_date.day) for c in s.exec(select(Credit))}
    assert on_file == {usccs[0]: ("ADVANCED", 9), **{u: ("GENERAL", 1) for u in usccs[1:]}}


def test_rows_named_by_rows_read_ahead_are_read_ahead_after_them(bench: Bench) -> None:
    """An insurer's decision names only its application: the policy is read ahead by its
    number, then the enterprise the policy names, before any handler asks for it."""
    with Session(bench.engine) as s:
        s.add(Enterprise(uscc=USCC, name="Demo Trading", customs_code="0800000001",
                         updated_at=utcnow()))
        s.commit()
    decision = (b"<cdgi:Envelope xmlns:cdgi='urn:cdgi:1'><cdgi:Head><cdgi:MessageType>CDGI305"
                b"</cdgi:MessageType></cdgi:Head><cdgi:Body><cdgi:PolicyDecision>"
                b"<cdgi:ApplyNo>A1</cdgi:ApplyNo></cdgi:PolicyDecision></cdgi:Body>"
                b"</cdgi:Envelope>")
    selects = statements.selects(bench.engine)
    with UnitOfWork(bench.engine) as uow:
        repo = Repo(uow.session)
        _read_ahead(repo, [Delivery(decision, "INS.PICC")])
        assert [s.split("FROM ")[1].split()[0] for s in selects] == ["policy", "enterprise"]
        selects.clear()
        policy = repo.get(Policy, "A1")
        assert policy is not None
        enterprise = repo.get(Enterprise, policy.uscc)
        assert enterprise is not None and enterprise.name == "Demo Trading"
        assert selects == [], "both answered from what was read ahead"


def test_a_list_named_by_rows_read_ahead_is_read_ahead_after_them(bench: Bench) -> None:
    """An increase names its quota only: the cards of the quota's enterprise (whose signature
    the handler checks) are read ahead after the quota."""
    now = utcnow()
    with Session(bench.engine) as s:
        s.add(Enterprise(uscc=USCC, name="Demo Trading", customs_code="0800000001",
                         updated_at=now))
        s.add(Quota(quota_no="Q1", uscc=USCC, insurer_code="PICC", status="APPROVED",
                    applied_amount=Decimal("500000.00"), term_start=date(2026, 1, 1),
                    term_end=date(2026, 12, 31), message_id="M", created_at=now,
                    updated_at=now))
        s.flush()
        s.add(BoundCard(card_no="OP1", uscc=USCC, role="OPERATOR", certificate_pem="",
                        fingerprint="OP1", valid_from=date(2026, 1, 1),
                        valid_to=date(2027, 1, 1), message_id="M", updated_at=now))
        s.commit()
    increase = (b"<cdgi:Envelope xmlns:cdgi='urn:cdgi:1'><cdgi:Head><cdgi:MessageType>CDGI111"
                b"</cdgi:MessageType></cdgi:Head><cdgi:Body><cdgi:QuotaIncrease>"
                b"<cdgi:IncreaseNo>I1</cdgi:IncreaseNo><cdgi:QuotaNo>Q1</cdgi:QuotaNo>"
                b"</cdgi:QuotaIncrease></cdgi:Body></cdgi:Envelope>")
    selects = statements.selects(bench.engine)
    with UnitOfWork(bench.engine) as uow:
        repo = Repo(uow.session)
        _read_ahead(repo, [Delivery(increase, "PORTAL")])
        assert "bound_card" in selects[-1].split("FROM ")[1]
        selects.clear()
        quota = repo.get(Quota, "Q1")
        assert quota is not None
        assert [c.card_no for c in repo.cards_of(quota.uscc)] == ["OP1"]
        assert selects == [], "both answered from what was read ahead"
