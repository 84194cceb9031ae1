"""The store on real SQLite and PostgreSQL: migrations, unit of work, outbox claims."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event, inspect
from sqlmodel import Session, select

from adapter.errors import StoreUnavailable
from store.db import UnitOfWork, utcnow
from store.migrate import current, head, upgrade
from store.models import Journal, JournalEvent, Outbox
from store.repo import PublishResult, Repo, claim_outbox, record_publish

pytestmark = pytest.mark.integration

TABLES = {
    "partner",
    "partner_cert",
    "journal",
    "journal_event",
    "inbox",
    "outbox",
    "enterprise",
    "bound_card",
    "seal",
    "credit",
    "alembic_version",
}


def test_migrations_create_every_table_and_running_them_again_changes_nothing(
    database_url: str, engines
) -> None:
    engine = engines(database_url)
    assert upgrade(engine) == (None, head())
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert upgrade(engine) == (head(), head())
    assert current(engine) == head()


def test_a_unit_of_work_rolls_back_unless_committed(migrated_url: str, engines) -> None:
    engine = engines(migrated_url)
    with UnitOfWork(engine) as uow:
        Repo(uow.session).save_credit(
            uscc="U" * 18,
            customs_code="C" * 10,
            rating="GENERAL",
            rated_date=date(2026, 1, 1),
            records=[],
            message_id="M1",
        )
    with UnitOfWork(engine) as uow:
        assert Repo(uow.session).credit("U" * 18) is None
        Repo(uow.session).save_credit(
            uscc="U" * 18,
            customs_code="C" * 10,
            rating="GENERAL",
            rated_date=date(2026, 1, 1),
            records=[],
            message_id="M1",
        )
        uow.commit()
    with UnitOfWork(engine) as uow:
        assert Repo(uow.session).credit("U" * 18).rating == "GENERAL"  # type: ignore[union-attr]


def _outbox_rows(engine, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        row = repo.add_journal(direction="OUT", raw=b"x", status="PENDING")
        refs = [
            repo.add_outbox(
                journal_id=row,
                message_id=f"M{i}",
                message_type="CDGI900",
                receiver_id="PORTAL",
                body=b"<x/>",
            )
            for i in range(n)
        ]
        repo.flush()
        uow.commit()
    return [ref.id for ref in refs]


def test_two_relays_never_claim_the_same_outbox_row(migrated_url: str, engines) -> None:
    engine = engines(migrated_url)
    ids = _outbox_rows(engine, 20)
    first = claim_outbox(engine, "relay-a", limit=15, lease_s=60)
    second = claim_outbox(engine, "relay-b", limit=50, lease_s=60)
    assert len(first) == 15 and len(second) == 5
    assert {r.id for r in first}.isdisjoint({r.id for r in second})
    assert {r.id for r in first} | {r.id for r in second} == set(ids)
    assert claim_outbox(engine, "relay-c", limit=50, lease_s=60) == []


def test_rows_are_marked_sent_only_by_a_publish_result_and_unroutable_ones_are_kept(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    a, b, c = _outbox_rows(engine, 3)
    journal = {row.id: row.journal_id for row in claim_outbox(engine, "relay", limit=10,
                                                              lease_s=60)}
    record_publish(
        engine,
        [
            PublishResult(a, "SENT", journal_id=journal[a]),
            PublishResult(b, "UNROUTABLE", "no queue", journal_id=journal[b]),
            PublishResult(c, "PENDING", "nack", journal_id=journal[c]),
        ],
        retry_after_s=0,
    )
    again = claim_outbox(engine, "relay", limit=10, lease_s=60)
    assert [r.id for r in again] == [c], "only the nacked row is tried again"


def test_buffered_rows_are_written_with_one_insert_a_table_under_the_ids_their_refs_get(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    inserts: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: inserts.append(statement.split("(")[0])
                 if statement.startswith("INSERT") else None)
    _outbox_rows(engine, 2)  # rows before: the batch's ids follow theirs
    inserts.clear()
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        journals = [repo.add_journal(direction="OUT", message_id=f"J{i}", raw=b"x",
                                     status="PENDING") for i in range(30)]
        outbox = [repo.add_outbox(journal_id=journals[i], message_id=f"J{i}",
                                  message_type="CDGI900", receiver_id="PORTAL", body=b"<x/>")
                  for i in range(30)]
        repo.flush()
        uow.commit()
    assert sorted(inserts) == ["INSERT INTO journal ", "INSERT INTO outbox "]
    with Session(engine) as session:
        by_id = {row.id: row for row in session.exec(select(Journal))}
        boxes = {row.id: row for row in session.exec(select(Outbox))}
    assert len(by_id) == 31 and len(boxes) == 32
    assert [by_id[ref.id].message_id for ref in journals] == [f"J{i}" for i in range(30)]
    assert [(boxes[ref.id].message_id, boxes[ref.id].journal_id) for ref in outbox] == [
        (f"J{i}", journals[i].id) for i in range(30)]


def test_publish_answers_marked_in_a_unit_of_work_are_undone_with_it(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    a, b = _outbox_rows(engine, 2)
    with Session(engine) as session:
        journal_id = session.get(Outbox, a).journal_id  # type: ignore[union-attr]
    answers = [PublishResult(a, "SENT", journal_id=journal_id),
               PublishResult(b, "UNROUTABLE", "no queue", journal_id=journal_id)]
    with UnitOfWork(engine) as uow:  # not committed: the batch it rode with failed
        Repo(uow.session).mark_published(answers, retry_after_s=0)
    with Session(engine) as session:
        assert {row.state for row in session.exec(select(Outbox))} == {"PENDING"}
    with UnitOfWork(engine) as uow:
        Repo(uow.session).mark_published(answers, retry_after_s=0)
        uow.commit()
    with Session(engine) as session:
        assert {row.id: row.state for row in session.exec(select(Outbox))} == {
            a: "SENT", b: "UNROUTABLE"}
        assert session.get(Journal, journal_id).status == "UNROUTABLE"  # type: ignore[union-attr]
        events = session.exec(select(JournalEvent).where(JournalEvent.stage == "publish")).all()
        assert sorted(e.status for e in events) == ["SENT", "UNROUTABLE"]


def test_an_unreachable_database_is_a_transient_store_error(engines) -> None:
    engine = engines("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable):
        claim_outbox(engine, "relay", limit=1, lease_s=1)
    assert utcnow().tzinfo is not None
