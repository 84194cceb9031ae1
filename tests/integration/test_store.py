"""The store on real SQLite and PostgreSQL: migrations, unit of work, outbox claims."""

from __future__ import annotations

import gc
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from adapter.errors import StoreUnavailable
from store.db import UnitOfWork, make_engine, utcnow
from store.migrate import current, head, upgrade
from store.models import (
    Agreement,
    Authorization,
    BoundCard,
    Credit,
    Enterprise,
    Journal,
    JournalEvent,
    Outbox,
    Policy,
    Quota,
)
from store.repo import (
    JournalFilter,
    PublishResult,
    Repo,
    alert_counts,
    claim_outbox,
    find_journal,
    record_publish,
)
from tests.support import statements

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


def _credit(uscc: str, rating: str = "GENERAL") -> Credit:
    return Credit(uscc=uscc, customs_code="0800000001", rating=rating,
                  rated_date=date(2026, 1, 5), records="[]", message_id="M", updated_at=utcnow())


def _card(card_no: str, uscc: str) -> BoundCard:
    return BoundCard(card_no=card_no, uscc=uscc, role="OPERATOR", certificate_pem="",
                     fingerprint=card_no, valid_from=date(2026, 1, 1), valid_to=date(2027, 1, 1),
                     message_id="M", updated_at=utcnow())


def test_rows_read_ahead_are_answered_by_the_unit_of_work_as_it_changed_them(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    a, b, c = "A" * 18, "B" * 18, "C" * 18
    with UnitOfWork(engine) as uow:
        uow.session.add(_credit(a))
        uow.session.add(Enterprise(uscc=a, name="A", customs_code="0800000001",
                                   updated_at=utcnow()))
        uow.session.flush()
        uow.session.add(_card("C1", a))
        uow.commit()
    selects = statements.selects(engine)
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        repo.read_ahead({(Credit, None): {a, b, c}, (Credit, "message_id"): {"M"}},
                        {(BoundCard, "uscc"): [a, b]})
        assert len(selects) == 3, "one query a table and key"
        selects.clear()
        found = repo.get(Credit, a)
        assert found is not None and found.rating == "GENERAL"
        found.rating = "ADVANCED"
        repo.add(found)
        assert repo.get(Credit, b) is None
        repo.add(_credit(b, "ADVANCED"))  # not flushed yet: still the unit of work's row
        assert repo.get(Credit, b) is not None
        assert [card.card_no for card in repo.cards_of(a)] == ["C1"] and not repo.cards_of(b)
        repo.add(_card("C2", a))
        assert [card.card_no for card in repo.cards_of(a)] == ["C1", "C2"]
        assert repo._one(Credit, "message_id", "M", lambda: None) is found  # noqa: SLF001
        assert selects == [], "every answer came from what was read ahead"
        repo.flush()
        del found
        gc.collect()  # the session's identity map holds rows weakly; the repo holds them
        assert repo.get(Credit, a).rating == "ADVANCED"  # type: ignore[union-attr]
        assert repo.get(Credit, b) is not None
        with uow.session.begin_nested() as savepoint:  # a message refused after it wrote
            repo.add(_credit(c))
            repo.flush()
            assert repo.get(Credit, c) is not None
            savepoint.rollback()
        assert repo.get(Credit, c) is None
        uow.commit()
    with Session(engine) as session:
        assert {row.uscc: row.rating for row in session.exec(select(Credit))} == {
            a: "ADVANCED", b: "ADVANCED"}
        assert len(session.exec(select(BoundCard)).all()) == 2


def test_an_enterprises_cards_read_ahead_follow_a_card_that_changes_hands_or_is_added(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    a, b = "E" * 18, "F" * 18
    with UnitOfWork(engine) as uow:
        for uscc in (a, b):
            uow.session.add(Enterprise(uscc=uscc, name=uscc, customs_code="0800000001",
                                       updated_at=utcnow()))
        uow.session.flush()
        uow.session.add(_card("K1", a))
        uow.commit()
    selects = statements.selects(engine)
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        repo.read_ahead({(BoundCard, None): {"K1", "K2"}}, {(BoundCard, "uscc"): [a, b]})
        selects.clear()
        repo.save_card(_card("K1", b), [])  # bound again, to the other enterprise
        repo.save_card(_card("K2", a), [])
        assert [c.card_no for c in repo.cards_of(a)] == ["K2"]
        assert [c.card_no for c in repo.cards_of(b)] == ["K1"]
        assert not [s for s in selects if "FROM bound_card" in s], "the lists followed"
        uow.commit()
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        assert [c.card_no for c in repo.cards_of(a)] == ["K2"]
        assert [c.card_no for c in repo.cards_of(b)] == ["K1"]


def _business(uscc: str) -> list[object]:
    now = utcnow()
    stamp = {"message_id": "M", "created_at": now, "updated_at": now}
    return [
        Agreement(agreement_no="AG1", uscc=uscc, bank_code="BOC", customs_district="0800",
                  status="SUBMITTED", **stamp),
        Authorization(auth_no="AU1", uscc=uscc, insurer_code="PICC", scopes="QUOTA",
                      valid_to=date(2026, 6, 30), status="SIGNED", **stamp),
        Authorization(auth_no="AU2", uscc=uscc, insurer_code="CPIC", scopes="QUOTA",
                      valid_to=date(2027, 6, 30), status="SIGNED", **stamp),
        Quota(quota_no="Q1", uscc=uscc, insurer_code="PICC", status="APPROVED",
              applied_amount=Decimal("500.00"), term_start=date(2026, 1, 1),
              term_end=date(2026, 12, 31), **stamp),
        _policy("P1", "100.00", "SUBMITTED", uscc),
        _policy("P2", "50.00", "DECLINED", uscc),
    ]


def _policy(apply_no: str, amount: str, status: str, uscc: str) -> Policy:
    now = utcnow()
    return Policy(apply_no=apply_no, quota_no="Q1", uscc=uscc, insurer_code="PICC",
                  insured_amount=Decimal(amount), term_start=date(2026, 1, 1),
                  term_end=date(2026, 12, 31), insured_customs="0800", coverage="DUTY",
                  status=status, message_id="M", created_at=now, updated_at=now)


def _answers(repo: Repo, uscc: str) -> tuple[object, ...]:
    return (repo.agreement_effective(uscc),
            [a.auth_no for a in repo.authorizations(uscc, "PICC")],
            sorted(q.quota_no for q in repo.quotas_of(uscc)),
            repo.live_insured("Q1", ("SUBMITTED", "ISSUED", "RECORDED")))


def test_an_enterprises_lists_read_ahead_answer_the_business_queries_as_the_batch_changed_them(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    uscc = "D" * 18
    with UnitOfWork(engine) as uow:
        uow.session.add_all(_business(uscc))
        uow.commit()
    selects = statements.selects(engine)
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        repo.read_ahead({(Agreement, None): {"AG1"}, (Policy, None): {"P1"}},
                        {(Agreement, "uscc"): [uscc], (Authorization, "uscc"): [uscc],
                         (Quota, "uscc"): [uscc], (Policy, "quota_no"): ["Q1"]})
        assert len(selects) == 6
        selects.clear()
        assert _answers(repo, uscc) == (False, ["AU1"], ["Q1"], Decimal("100.00"))
        # What earlier messages of a batch do: the bank's answer, a renewed authorization, a
        # quota re-applied for, a policy applied for and one declined.
        agreement = repo.get(Agreement, "AG1")
        assert agreement is not None
        agreement.status = "EFFECTIVE"
        repo.add(Authorization(auth_no="AU3", uscc=uscc, insurer_code="PICC", scopes="QUOTA",
                               valid_to=date(2027, 12, 31), status="SIGNED", message_id="M",
                               created_at=utcnow(), updated_at=utcnow()))
        repo.add(Quota(quota_no="Q2", uscc=uscc, insurer_code="PICC", status="SUBMITTED",
                       applied_amount=Decimal("900.00"), term_start=date(2027, 1, 1),
                       term_end=date(2027, 12, 31), prev_quota_no="Q1", message_id="M",
                       created_at=utcnow(), updated_at=utcnow()))
        repo.add(_policy("P3", "30.00", "SUBMITTED", uscc))
        declined = repo.get(Policy, "P1")
        assert declined is not None
        declined.status = "DECLINED"
        batch = _answers(repo, uscc)
        assert batch == (True, ["AU3", "AU1"], ["Q1", "Q2"], Decimal("30.00"))
        assert selects == [], "every answer came from the lists read ahead"
        uow.commit()
    with UnitOfWork(engine) as uow:  # the same questions asked of the database
        assert _answers(Repo(uow.session), uscc) == batch
        assert selects, "without a read-ahead the repo queries"


def test_rows_read_ahead_stay_locked_until_the_unit_of_work_ends(
    migrated_url: str, engines
) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite lets one writer in at a time")
    engine = engines(migrated_url)
    with UnitOfWork(engine) as uow:
        uow.session.add(_credit("A" * 18))
        uow.commit()
    other = make_engine(migrated_url)
    try:
        with UnitOfWork(engine) as uow:
            Repo(uow.session).read_ahead({(Credit, None): {"A" * 18}})
            with other.connect() as conn, pytest.raises(OperationalError):
                conn.execute(text("SELECT 1 FROM credit WHERE uscc = :u FOR UPDATE NOWAIT"),
                             {"u": "A" * 18})
    finally:
        other.dispose()


def test_an_unreachable_database_is_a_transient_store_error(engines) -> None:
    engine = engines("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable):
        claim_outbox(engine, "relay", limit=1, lease_s=1)
    assert utcnow().tzinfo is not None


def test_the_journal_lists_a_partners_newest_messages_from_both_sides_newest_first(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    start = utcnow()
    with UnitOfWork(engine) as uow:
        for n in range(12):  # in and out by turns; INS.X on one side of every third
            partner = "INS.X" if n % 3 == 0 else "INS.Y"
            inbound = n % 2 == 0
            uow.session.add(Journal(
                direction="IN" if inbound else "OUT", message_id=f"M{n:02d}",
                message_type="CDGI900", sender_id=partner if inbound else "DXP",
                receiver_id="DXP" if inbound else partner, raw=b"<x/>", status="PROCESSED",
                created_at=start + timedelta(seconds=n), updated_at=start))
        uow.commit()
    newest = find_journal(engine, JournalFilter(partner="INS.X", limit=3))
    assert [r.message_id for r in newest] == ["M09", "M06", "M03"]
    everything = find_journal(engine, JournalFilter(limit=50))
    assert [r.message_id for r in everything] == [f"M{n:02d}" for n in range(11, -1, -1)]
    after = find_journal(engine, JournalFilter(partner="INS.X", after_id=newest[-1].id))
    assert [r.message_id for r in after] == ["M06", "M09"]


def test_a_fresh_postgresql_store_is_not_planned_as_an_empty_one(
    migrated_url: str, engines
) -> None:
    """The migrations leave an empty journal unanalysed. Analysed empty, it was planned as
    empty until autovacuum came: the foreign-key check of every journal event, outbox and
    inbox row (cached per connection) walked the whole journal as it grew."""
    if not migrated_url.startswith("postgresql"):
        pytest.skip("SQLite checks a foreign key by the parent's primary key, always")
    engine = engines(migrated_url)
    with engine.connect() as c:
        # The query of PostgreSQL's foreign-key check (ri_triggers.c), for a row of journal.
        plan = "\n".join(c.exec_driver_sql(
            "EXPLAIN SELECT 1 FROM ONLY journal x WHERE id = 1 FOR KEY SHARE OF x").scalars())
    assert "Index" in plan and "Seq Scan" not in plan, plan


def test_postgresql_counts_the_journals_filters_together_so_an_absent_combination_is_seen(
    migrated_url: str, engines
) -> None:
    """A partner's refusals when it never had one: estimated as independent filters, the
    combination looked common (and the planner walked every refusal for it); with the
    migration's extended statistics, ANALYZE knows it is absent."""
    if not migrated_url.startswith("postgresql"):
        pytest.skip("extended statistics are PostgreSQL's")
    engine = engines(migrated_url)
    with engine.begin() as c:
        # 20,000 rows: INS.A sends, then only its answers are refused (they go to INS.B).
        c.execute(text("""
            INSERT INTO journal (direction, message_id, message_type, sender_id, receiver_id,
                routing_key, digest, size, raw, status, info, created_at, updated_at)
            SELECT CASE WHEN g % 2 = 0 THEN 'IN' ELSE 'OUT' END, 'M' || g, 'CDGI301',
                   CASE WHEN g % 2 = 0 THEN 'INS.A' ELSE 'DC' END,
                   CASE WHEN g % 2 = 0 THEN 'DC' ELSE 'INS.B' END,
                   'rk', 'd', 1, '\\x00',
                   CASE WHEN g % 2 = 1 AND g % 5 = 1 THEN 'REFUSED' ELSE 'PROCESSED' END,
                   '', now(), now()
            FROM generate_series(1, 20000) AS g"""))
        c.execute(text("ANALYZE journal"))
        names = set(c.execute(text(
            "SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'journal'::regclass"
        )).scalars())
        plan = c.execute(text(
            "EXPLAIN (FORMAT JSON) SELECT * FROM journal "
            "WHERE status = 'REFUSED' AND sender_id = 'INS.A'")).scalar_one()
    assert names >= {"journal_status_parties", "journal_type_parties", "journal_type_status"}
    # Independent: 2,000 refusals x half the rows from INS.A = 1,000; counted together: none.
    assert plan[0]["Plan"]["Plan Rows"] < 50
    refusals = find_journal(engine, JournalFilter(partner="INS.A", status="REFUSED"))
    assert refusals == []


def test_the_alerts_count_our_unanswered_messages_off_their_own_index(
    migrated_url: str, engines
) -> None:
    """Each receipt of ours stays SENT for good, so SENT rows grow with the journal (a third
    of it). The alerts' count of our messages still waiting for a partner's answer is read
    off the partial index of the rows that wait (migration 0005), not off every SENT row."""
    engine = engines(migrated_url)
    now = utcnow()
    old, recent = now - timedelta(hours=3), now - timedelta(minutes=5)
    rows = [  # (direction, type, status, last updated): counted?
        ("OUT", "CDGI501", "SENT", old),  # yes
        ("OUT", "CDGI503", "SENT", old),  # yes
        ("OUT", "CDGI501", "SENT", recent),  # not yet: within the receipt timeout
        ("OUT", "CDGI900", "SENT", old),  # a receipt of ours: never answered
        ("OUT", "CDGI501", "ACCEPTED", old),  # answered
        ("OUT", "CDGI501", "PENDING", old),  # not yet published
        ("IN", "CDGI109", "PROCESSED", old),
    ]
    with Session(engine) as session:
        for i, (direction, message_type, status, at) in enumerate(rows):
            session.add(Journal(direction=direction, message_id=f"U{i}",
                                message_type=message_type, sender_id="DC", receiver_id="X",
                                raw=b"<x/>", status=status, created_at=at, updated_at=at))
        session.commit()
    sent = statements.executed(engine)
    assert alert_counts(engine, unanswered_after_s=3600)["unanswered"] == 2
    with engine.begin() as c:  # a partner's receipt answers one; it leaves the index
        c.execute(text("UPDATE journal SET status = 'ACCEPTED' WHERE message_id = 'U0'"))
    assert alert_counts(engine, unanswered_after_s=3600)["unanswered"] == 1

    statement, parameters = next((st, p) for st, p in sent if "'CDGI900'" in st)
    with engine.connect() as c:
        if migrated_url.startswith("postgresql"):
            c.exec_driver_sql("SET enable_seqscan = off")  # seven rows: a scan would do
            plan = " ".join(c.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())
        else:
            plan = " ".join(str(row[-1]) for row in
                            c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "ix_journal_unanswered" in plan, plan
