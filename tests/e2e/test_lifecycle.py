"""The whole business end to end: the daemon as a subprocess, every partner over the bus."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography import x509
from lxml import etree
from sqlmodel import Session, select

import mappings
from adapter import documents
from adapter.envelope import build_envelope, contract_time, new_message_id
from adapter.scenario import PARTNERS, Lifecycle
from card import sign_envelope, verify_envelope
from store.models import Claim, Journal, LedgerEntry, Policy, Progress, Quota
from tests.support.harness import Running

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_the_lifecycle_runs_with_every_refusal_and_every_notice(
    start_daemon: Callable[..., Running],
) -> None:
    running = start_daemon(PARTNERS)
    story = Lifecycle(running.partners, say=print)  # shown when the test fails
    ids = story.run()

    with Session(running.engine) as s:
        quota = s.get(Quota, ids["quota"])
        policy = s.exec(select(Policy).where(Policy.policy_no == ids["policy"])).one()
        claim = s.get(Claim, ids["claim"])
        ledger = s.exec(select(LedgerEntry).where(
            LedgerEntry.guarantee_record_no == ids["guarantee"])).all()
        progress = s.exec(select(Progress).where(Progress.subject_no == ids["quota"])).all()
    assert quota is not None and quota.status == "APPROVED"
    assert Decimal(quota.approved_amount) == Decimal("5000000.00")
    assert policy.status == "RECORDED" and policy.guarantee_record_no == ids["guarantee"]
    assert policy.epolicy_content and policy.epolicy_content.startswith(b"%PDF")
    assert claim is not None and claim.status == "PAID"
    assert Decimal(claim.paid_amount) == Decimal("61056.00")
    # available = 5,500,000 − 100,000 − 57,600 + 100,000 − 20,000 + 20,000 + 10 (flagged)
    assert Decimal(ledger[-1].available_after) == Decimal("5442410.00")
    assert [line.discrepancy for line in ledger] == [None, None, None, None, None, "2802"]
    # The restore of entry 3 came before its deduction: it waited, then was applied after it.
    assert [(line.entry_id[-1], line.kind) for line in ledger][3:5] == [("3", "DEDUCT"),
                                                                        ("3", "RESTORE")]
    waited = running.journal(message_type="CDGI407", direction="IN")
    assert sorted(row.status for row in waited) == ["FLAGGED", "PROCESSED", "PROCESSED"]
    assert [p.status for p in progress] == ["SUBMITTED", "UNDERWRITING", "APPROVED"]
    refusals = {code for _, _, code in story.seen if code != "0000"}
    assert refusals >= {"2404", "1006", "1003", "2501", "2402", "2403", "2602", "2802"}
    assert running.alive()


def test_the_daemon_expires_a_quota_past_its_validity_by_itself_and_tells_the_portal(
    start_daemon: Callable[..., Running],
) -> None:
    running = start_daemon(PARTNERS, {"CDGI_EXPIRY_INTERVAL_S": "0.3"})
    story = Lifecycle(running.partners, say=print)
    story.setup()
    quota_no = story.expire_a_quota()  # waits for the APPROVED and then the EXPIRED notice
    with Session(running.engine) as s:
        quota = s.get(Quota, quota_no)
        history = [p.status for p in s.exec(
            select(Progress).where(Progress.subject_no == quota_no).order_by(Progress.id))]
    assert quota is not None and quota.status == "EXPIRED"
    assert history == ["SUBMITTED", "APPROVED", "EXPIRED"]


def test_a_legacy_gbk_insurer_and_a_canonical_one_work_side_by_side(
    start_daemon: Callable[..., Running], card_certificate: x509.Certificate
) -> None:
    legacy = {"INS.PICC": "legacy-gbk", "INS.PAIC": "legacy-gbk"}
    running = start_daemon(PARTNERS, dialects=legacy)
    story = Lifecycle(running.partners, say=print)
    ids = story.run()  # PICC underwrites, issues and pays in GBK; CPIC and PAIC hear of the claim

    with Session(running.engine) as s:
        claim = s.get(Claim, ids["claim"])
        rows = s.exec(select(Journal).where(Journal.receiver_id.in_(  # type: ignore[attr-defined]
            ["INS.PICC", "INS.PAIC", "INS.CPIC"]))).all()
        inbound = s.exec(select(Journal).where(Journal.sender_id == "INS.PICC",
                                               Journal.direction == "IN")).all()
    assert claim is not None and claim.status == "PAID"
    for row in rows:
        legacy_receiver = row.receiver_id in legacy
        assert row.raw.startswith(b"<?xml version='1.0' encoding='GBK'?>") == legacy_receiver
        assert (row.canonical is not None) == legacy_receiver, "the journal keeps both forms"
        # What travels is signed by the adapter's card in the receiver's own form.
        verify_envelope(etree.fromstring(row.raw), [card_certificate])
    assert {r.receiver_id for r in rows if r.message_type == "CDGI503"} == {"INS.CPIC", "INS.PAIC"}
    assert inbound and all(r.canonical and r.raw.startswith(b"<?xml") for r in inbound)
    assert all(b"encoding='GBK'" in r.raw or b'encoding="GBK"' in r.raw for r in inbound)
    # A legacy amount that is not a whole number of fen is refused, never rounded.
    picc = running.partners["INS.PICC"]
    dialect = mappings.get("legacy-gbk")
    tree = dialect.from_canonical(build_envelope(
        message_type="CDGI301", sender_id="INS.PICC", receiver_id="DC",
        business=documents.quota_decision(
            quota_no=ids["quota"], result="APPROVED", approved_amount=Decimal("1.00"),
            rate=Decimal("0.01"), valid_from=story.today, valid_to=story.today),
        send_time=contract_time(datetime.now(UTC)), message_id=new_message_id(),
    ))
    next(tree.iter("APPROVED_AMOUNT")).text = "12.5"
    picc.send_raw(dialect.serialize(sign_envelope(tree, picc.signer)))
    receipt = story.mail.take("INS.PICC", "CDGI900", lambda m: m.field("ReturnCode") != "0000")
    assert (receipt.field("ReturnStatus"), receipt.field("ReturnCode")) == ("-1", "0002")
    assert "fen" in (receipt.field("ReturnInfo") or "")
