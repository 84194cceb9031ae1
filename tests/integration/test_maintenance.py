"""``cdgi export`` and ``cdgi purge`` on real SQLite and PostgreSQL stores.

The store functions are tested directly, the commands through ``CliRunner`` on a small app
of their own (``adapter.cli`` registers the same functions as ``cdgi export`` / ``purge``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from adapter.cli import maintenance as cli_maintenance
from adapter.cli.maintenance import export_cmd, purge_cmd
from store import maintenance
from store.db import UnitOfWork, as_utc, utcnow
from store.models import Inbox, Journal, JournalEvent, Outbox
from store.repo import Repo

pytestmark = pytest.mark.integration

NOW = utcnow()
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=10)


@dataclass
class Seeded:
    """The ids of the seeded journal rows, by what purge must do with them."""

    deletable: list[int] = field(default_factory=list)
    pinned: list[int] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)
    recent: list[int] = field(default_factory=list)

    @property
    def all(self) -> list[int]:
        return sorted(self.deletable + self.pinned + self.unsent + self.unfinished + self.recent)


def _journal(repo: Repo, direction: str, status: str, at: Any, n: int, **extra: Any) -> int:
    row = repo.add_journal(
        direction=direction,
        message_id=f"MSG-{n:04d}",
        message_type=extra.pop("message_type", "CDGI101" if direction == "IN" else "CDGI102"),
        sender_id="PORTAL" if direction == "IN" else "DC",
        receiver_id="DC" if direction == "IN" else extra.pop("receiver_id", "BANK.BOC"),
        routing_key="PORTAL" if direction == "IN" else None,
        digest=f"{n:064x}",
        size=len(f"<m{n}/>"),
        raw=f"<m{n}>\u5173\u7a0e</m{n}>".encode(),
        canonical=extra.pop("canonical", None),
        status=status,
        info=f"note {n} \u4fdd\u9669",
        at=at,
        **extra,
    )
    repo.flush()
    assert row.id is not None
    repo.add_event(row.id, "inbound" if direction == "IN" else "outbound", status, at=at,
                   detail=json.dumps({"stages": [f"stage of {n}"]}))
    repo.add_event(row.id, "publish" if direction == "OUT" else "handled", status, at=at,
                   code="2801" if n % 3 == 0 else None)
    return row.id


def _outbox(repo: Repo, journal_id: int, state: str, n: int) -> int:
    row = repo.add_outbox(
        journal_id=journal_id,
        message_id=f"MSG-{n:04d}",
        message_type="CDGI102",
        receiver_id="BANK.BOC",
        body=f"<m{n}/>".encode(),
        state=state,
    )
    repo.flush()
    assert row.id is not None
    return row.id


def seed(engine: Any) -> Seeded:
    """A journal with one row of every case purge must tell apart."""
    s = Seeded()
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        # An old inbound message recorded in the inbox, and the receipt the inbox re-sends.
        inbound = _journal(repo, "IN", "PROCESSED", OLD, 1)
        receipt = _journal(repo, "OUT", "SENT", OLD, 2, message_type="CDGI900",
                           receiver_id="PORTAL")
        receipt_outbox = _outbox(repo, receipt, "SENT", 2)
        repo.add_inbox(sender_key="PORTAL", message_key="MSG-0001", digest="d" * 64,
                       journal_id=inbound, receipt_outbox_id=receipt_outbox, received_at=OLD)
        # A refused message keyed by its bytes, without a receipt.
        bad = _journal(repo, "IN", "REFUSED", OLD, 3)
        repo.add_inbox(sender_key="~PORTAL", message_key="sha256:" + "e" * 64,
                       digest="e" * 64, journal_id=bad, received_at=OLD)
        s.pinned += [inbound, receipt, bad]
        # Old, finished, not needed by the dedupe: these go.
        forward = _journal(repo, "OUT", "SENT", OLD, 4, canonical=b"<canonical/>")
        _outbox(repo, forward, "SENT", 4)
        answered = _journal(repo, "OUT", "ACCEPTED", OLD, 5)
        _outbox(repo, answered, "SENT", 5)
        _outbox(repo, answered, "SENT", 50)  # re-sent once, both confirmed
        refused = _journal(repo, "OUT", "REFUSED_BY_PARTNER", OLD, 6)
        _outbox(repo, refused, "SENT", 6)
        replayed = _journal(repo, "IN", "REFUSED", OLD, 7)  # a replay, journaled again
        s.deletable += [forward, answered, refused, replayed]
        # Old and finished, but an outbox row still waits: kept.
        requeued = _journal(repo, "OUT", "SENT", OLD, 8)
        _outbox(repo, requeued, "SENT", 8)
        _outbox(repo, requeued, "PENDING", 80)
        resent = _journal(repo, "OUT", "SENT", OLD, 9)
        _outbox(repo, resent, "UNROUTABLE", 9)
        _outbox(repo, resent, "SENT", 90)
        s.unsent += [requeued, resent]
        # Old but not finished: kept.
        unroutable = _journal(repo, "OUT", "UNROUTABLE", OLD, 10)
        _outbox(repo, unroutable, "UNROUTABLE", 10)
        pending = _journal(repo, "OUT", "PENDING", OLD, 11)
        _outbox(repo, pending, "PENDING", 11)
        s.unfinished += [unroutable, pending]
        # Finished but recent: kept.
        s.recent.append(_journal(repo, "IN", "FORWARDED", RECENT, 12))
        fresh = _journal(repo, "OUT", "SENT", RECENT, 13)
        _outbox(repo, fresh, "SENT", 13)
        s.recent.append(fresh)
        uow.commit()
    return s


def snapshot(engine: Any) -> dict[str, Any]:
    """Every id of the tables purge may touch."""
    with Session(engine) as session:
        return {
            "journal": list(session.exec(select(Journal.id).order_by(col(Journal.id))).all()),
            "events": list(session.exec(select(JournalEvent.id).order_by(col(JournalEvent.id)))),
            "outbox": list(session.exec(select(Outbox.id).order_by(col(Outbox.id))).all()),
            "inbox": list(
                session.exec(select(Inbox.sender_key, Inbox.message_key, Inbox.journal_id)).all()
            ),
        }


def orphans(engine: Any) -> int:
    """Events and outbox rows whose journal row is gone (must stay 0)."""
    with Session(engine) as session:
        ids = select(Journal.id)
        return int(
            session.exec(
                select(func.count()).select_from(JournalEvent)
                .where(col(JournalEvent.journal_id).not_in(ids))
            ).one()
        ) + int(
            session.exec(
                select(func.count()).select_from(Outbox).where(col(Outbox.journal_id).not_in(ids))
            ).one()
        )


@pytest.fixture()
def cli(migrated_url: str, tmp_path: Path) -> Iterator[Any]:
    """``cli(*args, input=None)``: the two commands on an app of their own, on this store."""
    app = typer.Typer()
    app.command("export")(export_cmd)
    app.command("purge")(purge_cmd)
    runner = CliRunner()
    env = {
        "CDGI_DATABASE_URL": migrated_url,
        "CDGI_STATE_DIR": str(tmp_path / "run"),
        "CDGI_SOFTHSM_DIR": str(tmp_path / "softhsm"),
    }

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), env=env, input=input, catch_exceptions=False)

    yield invoke


# -- purge --------------------------------------------------------------------------------
def test_the_plan_counts_what_purge_deletes_and_what_it_keeps(migrated_url: str, engines) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    plan = maintenance.purge_plan(engine, NOW - timedelta(days=365))
    assert (plan.eligible, plan.kept_for_dedupe, plan.kept_unsent, plan.unfinished) == (
        len(s.deletable), len(s.pinned), len(s.unsent), len(s.unfinished)
    )
    assert plan.old == len(s.all) - len(s.recent)


@pytest.mark.parametrize("batch_size", [1, 500])
def test_purge_deletes_only_finished_old_rows_keeps_dedupe_and_unsent_and_is_idempotent(
    migrated_url: str, engines, batch_size: int
) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    before = snapshot(engine)
    batches: list[int] = []
    deleted = maintenance.purge(
        engine, NOW - timedelta(days=365), batch_size=batch_size, on_batch=batches.append
    )
    assert deleted == len(s.deletable) == sum(batches)
    after = snapshot(engine)
    assert after["journal"] == sorted(set(s.all) - set(s.deletable))
    assert after["inbox"] == before["inbox"]  # the dedupe is never purged
    assert orphans(engine) == 0
    with Session(engine) as session:
        states = dict(
            session.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all()
        )
        kept_events = session.exec(
            select(func.count()).select_from(JournalEvent)
            .where(col(JournalEvent.journal_id).in_(s.deletable))
        ).one()
    assert kept_events == 0
    assert states == {"SENT": 4, "PENDING": 2, "UNROUTABLE": 2}  # pinned receipt, unsent, recent
    # Running it again deletes nothing more.
    assert maintenance.purge(engine, NOW - timedelta(days=365), batch_size=batch_size) == 0
    assert snapshot(engine) == after
    assert maintenance.purge_plan(engine, NOW - timedelta(days=365)).eligible == 0


def test_an_interrupted_purge_leaves_a_consistent_store_and_a_rerun_continues(
    migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    seen: list[int] = []

    def stop_after_two(n: int) -> None:
        seen.append(n)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        maintenance.purge(engine, NOW - timedelta(days=365), batch_size=1, on_batch=stop_after_two)
    assert len(snapshot(engine)["journal"]) == len(s.all) - 2
    assert orphans(engine) == 0
    assert maintenance.purge(engine, NOW - timedelta(days=365)) == len(s.deletable) - 2
    assert snapshot(engine)["journal"] == sorted(set(s.all) - set(s.deletable))


def test_the_dedupe_still_answers_after_a_purge(migrated_url: str, engines) -> None:
    engine = engines(migrated_url)
    seed(engine)
    maintenance.purge(engine, NOW - timedelta(days=365))
    with UnitOfWork(engine) as uow:
        repo = Repo(uow.session)
        seen = repo.inbox("PORTAL", "MSG-0001")
        assert seen is not None and seen.receipt_outbox_id is not None
        # What the pipeline does with a duplicate: an event on the original, the receipt again.
        repo.add_event(seen.journal_id, "dedupe", "DUPLICATE")
        again = repo.resend(seen.receipt_outbox_id, "test", 60)
        assert again is not None and again.values["body"] == b"<m2/>"
        repo.flush()
        uow.commit()


def test_purge_dry_run_changes_nothing(cli: Any, migrated_url: str, engines) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    before = snapshot(engine)
    result = cli("purge", "--older-than", "365d", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"to delete (with their events and sent outbox rows): {len(s.deletable)}" in result.stdout
    assert "nothing was changed (--dry-run)" in result.stdout
    assert snapshot(engine) == before


def test_purge_refuses_without_yes_when_stdin_is_not_a_terminal(
    cli: Any, migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    seed(engine)
    before = snapshot(engine)
    result = cli("purge", "--older-than", "365d")
    assert result.exit_code == 2
    assert "pass --yes" in result.stderr
    assert snapshot(engine) == before


def test_purge_asks_on_a_terminal(
    cli: Any, migrated_url: str, engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    before = snapshot(engine)
    monkeypatch.setattr(cli_maintenance, "_stdin_is_terminal", lambda: True)
    declined = cli("purge", "--older-than", "365d", input="n\n")
    assert declined.exit_code == 1
    assert snapshot(engine) == before
    accepted = cli("purge", "--older-than", "365d", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert f"deleted {len(s.deletable)} journal row(s)" in accepted.stdout


def test_purge_with_yes_deletes_and_a_second_run_finds_nothing(
    cli: Any, migrated_url: str, engines
) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    result = cli("purge", "--older-than", "365d", "--yes", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert f"deleted {len(s.deletable)} journal row(s)" in result.stdout
    assert snapshot(engine)["journal"] == sorted(set(s.all) - set(s.deletable))
    again = cli("purge", "--older-than", "365d", "--yes")
    assert again.exit_code == 0 and "nothing to delete" in again.stdout


def test_purge_refuses_a_cutoff_in_the_future(cli: Any) -> None:
    future = (NOW + timedelta(days=1)).isoformat()
    result = cli("purge", "--older-than", future, "--yes")
    assert result.exit_code == 2 and "in the future" in result.stderr


# -- export -------------------------------------------------------------------------------
def expected(engine: Any, ids: list[int], *, with_raw: bool) -> list[dict[str, Any]]:
    """The journal rows as export must write them, read back independently."""
    out = []
    with Session(engine) as session:
        for jid in ids:
            row = session.get(Journal, jid)
            assert row is not None
            events = session.exec(
                select(JournalEvent).where(JournalEvent.journal_id == jid)
                .order_by(col(JournalEvent.id))
            ).all()
            record = {
                k: getattr(row, k)
                for k in ("id", "direction", "message_id", "message_type", "sender_id",
                          "receiver_id", "correlation_id", "uscc", "routing_key", "digest",
                          "size", "status", "code", "info")
            }
            record["created_at"] = as_utc(row.created_at).isoformat()  # type: ignore[union-attr]
            record["updated_at"] = as_utc(row.updated_at).isoformat()  # type: ignore[union-attr]
            if with_raw:
                record["raw"] = row.raw
                record["canonical"] = row.canonical
            record["events"] = [
                {"id": e.id, "at": as_utc(e.at).isoformat(), "stage": e.stage,  # type: ignore[union-attr]
                 "status": e.status, "code": e.code, "detail": e.detail}
                for e in events
            ]
            out.append(record)
    return out


def read_lines(path: Path, *, decode_raw: bool) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if decode_raw:
        for line in lines:
            line["raw"] = base64.b64decode(line["raw"])
            line["canonical"] = (
                base64.b64decode(line["canonical"]) if line["canonical"] is not None else None
            )
    return lines


def test_export_writes_every_row_oldest_first_with_events_and_raw_bytes(
    cli: Any, migrated_url: str, engines, tmp_path: Path
) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    target = tmp_path / "journal.jsonl"
    result = cli("export", "-o", str(target), "--with-raw", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert f"exported {len(s.all)} message(s)" in result.stdout
    assert not target.with_name("journal.jsonl.part").exists()
    lines = read_lines(target, decode_raw=True)
    assert [line["id"] for line in lines] == s.all
    assert lines == expected(engine, s.all, with_raw=True)
    assert any(line["canonical"] == b"<canonical/>" for line in lines)


def test_export_without_raw_and_with_filters(
    cli: Any, migrated_url: str, engines, tmp_path: Path
) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    target = tmp_path / "out.jsonl"
    assert cli("export", "-o", str(target), "--status", "sent", "--until", "30d").exit_code == 0
    lines = read_lines(target, decode_raw=False)
    assert all("raw" not in line and "canonical" not in line for line in lines)
    with Session(engine) as session:
        old_sent = list(session.exec(
            select(Journal.id).where(Journal.status == "SENT", col(Journal.created_at) < RECENT)
            .order_by(col(Journal.id))
        ))
    assert [line["id"] for line in lines] == old_sent
    assert lines == expected(engine, old_sent, with_raw=False)
    # Filters combine; the partner may be sender or receiver.
    target.unlink()
    assert cli("export", "-o", str(target), "--partner", "PORTAL", "--type", "CDGI900",
               "--since", "800d").exit_code == 0
    assert [line["message_id"] for line in read_lines(target, decode_raw=False)] == ["MSG-0002"]
    assert s.pinned[1] == read_lines(target, decode_raw=False)[0]["id"]


def test_export_refuses_to_replace_a_file_unless_forced(cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "kept.jsonl"
    target.write_text("precious\n")
    refused = cli("export", "-o", str(target))
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert target.read_text() == "precious\n"
    assert cli("export", "-o", str(target), "--force").exit_code == 0
    assert target.read_text() == ""  # an empty store exports no line


def test_an_interrupted_export_leaves_no_file(
    cli: Any, migrated_url: str, engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    real = maintenance.iter_export

    def interrupted(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for n, record in enumerate(real(*args, **kwargs)):
            if n == 5:
                raise KeyboardInterrupt  # what Ctrl-C (or SIGTERM, mapped to it) raises
            yield record

    monkeypatch.setattr(maintenance, "iter_export", interrupted)
    target = tmp_path / "journal.jsonl"
    result = cli("export", "-o", str(target), "--batch-size", "2")
    assert result.exit_code == 130
    assert f"interrupted after 5 of {len(s.all)} message(s) (last journal id {s.all[4]})" in (
        result.stderr
    )
    assert not target.exists()
    assert not target.with_name("journal.jsonl.part").exists()
    assert list(tmp_path.glob("journal.jsonl*")) == []


def test_iter_export_reads_in_batches(migrated_url: str, engines, monkeypatch) -> None:
    engine = engines(migrated_url)
    s = seed(engine)
    calls: list[tuple[int, int]] = []
    real = maintenance.export_batch

    def counting(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        calls.append((kwargs["after_id"], kwargs["limit"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(maintenance, "export_batch", counting)
    f = maintenance.ExportFilter()
    total, top = maintenance.count_export(engine, f)
    assert (total, top) == (len(s.all), s.all[-1])
    ids = [r["id"] for r in maintenance.iter_export(engine, f, up_to_id=top, batch_size=4)]
    assert ids == s.all
    # 13 rows, 4 a query: four batches, then one query that finds nothing more.
    assert [after for after, _ in calls] == [0, s.all[3], s.all[7], s.all[11], s.all[12]]
    assert {limit for _, limit in calls} == {4}


SIGTERM_SCRIPT = """
import sys, time
from pathlib import Path
import typer
from adapter.cli.maintenance import export_cmd, purge_cmd
from store import maintenance

real, ready = maintenance.iter_export, Path(sys.argv[1])

def slow(*args, **kwargs):
    for n, record in enumerate(real(*args, **kwargs)):
        if n == 3:
            ready.touch()
            time.sleep(60)
        yield record

maintenance.iter_export = slow
app = typer.Typer()
app.command("export")(export_cmd)
app.command("purge")(purge_cmd)
app(sys.argv[2:])
"""


def test_sigterm_stops_an_export_like_ctrl_c(
    migrated_url: str, engines, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    engine = engines(migrated_url)
    s = seed(engine)
    ready, target = tmp_path / "ready", tmp_path / "journal.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT, str(ready), "export", "-o", str(target)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "CDGI_DATABASE_URL": migrated_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), proc.communicate(timeout=5)
        assert target.with_name("journal.jsonl.part").exists()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert f"interrupted after 3 of {len(s.all)} message(s)" in stderr
    assert list(tmp_path.glob("journal.jsonl*")) == []
