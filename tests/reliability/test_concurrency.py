"""Several daemons on one PostgreSQL: same prefix, same queue, same database, one SoftHSM2
token, each its own process. Nothing may be processed twice, no transition applied twice,
and the out-of-order retry of DESIGN.md (a restore before its deduction) is checked against
the behaviour being built on the main line.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import bindparam, text

from adapter import documents as doc
from adapter.envelope import business_element
from adapter.envelope import field as field_of
from lxml import etree
from tests.reliability.conftest import Stack
from tests.support.traffic import BusinessMix, Msg, play, settle, verify, wait_committed

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("daemons,enterprises", [(2, 30), (3, 30)])
def test_competing_daemons_process_every_message_once_with_partner_resends_among_them(
    stack: Stack, figures: dict[str, Any], daemons: int, enterprises: int
) -> None:
    for _ in range(daemons):
        stack.fleet.start()
    mix = BusinessMix(stack.partners, enterprises)
    started = time.monotonic()
    # Each wave step by step across enterprises, and every 7th message sent twice, byte for
    # byte: copies of one message reach different daemons at the same moment.
    sent = play(mix, stack.partners, stack.engine, group_by_step=True, duplicate_every=7)
    settle(stack.partners, stack.engine, sent, timeout=150)
    verdict = verify(sent, stack.partners, stack.engine, stack.settings, mix)
    with stack.engine.connect() as c:
        handled_by = c.execute(text(
            "SELECT count(DISTINCT claimed_by) FROM outbox")).scalar()
    figures.update(verdict.figures)
    figures.update(daemons=daemons, partner_resends=stack.partners.published - len(sent),
                   seconds_to_commit_all=round(time.monotonic() - started, 1),
                   outbox_owners_left=handled_by)
    problems = [p for p in verdict.problems if not p.startswith("ledger ")]
    assert problems == [], "\n".join(problems[:40])
    assert verdict.lost == 0 and verdict.doubled == 0
    assert all(proc.poll() is None for proc in stack.fleet.procs), "a daemon died"
    assert stack.fleet.stop_all() == [0] * daemons


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_deductions_of_one_guarantee_keep_its_ledger_adding_up(
    stack: Stack, figures: dict[str, Any]
) -> None:
    """Three daemons take the deductions of one guarantee at once: each line's available
    amount must follow from the lines before it (no deduction computed on a stale ledger)."""
    for _ in range(3):
        stack.fleet.start()
    mix = BusinessMix(stack.partners, 30)

    def one_message_each(wave: int) -> None:
        # From the deductions on, each daemon takes one message at a time: the consecutive
        # lines of one guarantee go to three daemons at once.
        if wave == 9:
            assert stack.fleet.stop_all() == [0, 0, 0]
            stack.fleet.env.update(CDGI_PREFETCH="1", CDGI_BATCH_SIZE="1")
            for _ in range(3):
                stack.fleet.start()

    sent = play(mix, stack.partners, stack.engine, on_wave=one_message_each)
    settle(stack.partners, stack.engine, sent, timeout=150)
    verdict = verify(sent, stack.partners, stack.engine, stack.settings, mix)
    stale = [p for p in verdict.problems if p.startswith("ledger ")]
    figures.update(daemons=3, guarantees=len(mix.enterprises), stale_ledger_lines=len(stale),
                   lost=verdict.lost, doubled=verdict.doubled)
    assert [p for p in verdict.problems if not p.startswith("ledger ")] == []
    if stale:
        pytest.xfail("concurrent ledger lines are computed on a stale ledger (no lock on the "
                     f"guarantee), {len(stale)} lines: {stale[0]}; fix in store/repo.py + "
                     "adapter/handlers/ledger.py, see docs/reliability.md")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_different_approvals_of_one_quota_racing_apply_the_transition_once(
    stack: Stack, figures: dict[str, Any]
) -> None:
    """An insurer sends APPROVED twice under two MessageIds (its back office retried); two
    daemons take them at the same moment. One applies, the other is refused (2408)."""
    stack.fleet.env.update(CDGI_PREFETCH="1", CDGI_BATCH_SIZE="1")
    for _ in range(2):
        stack.fleet.start()
    mix = BusinessMix(stack.partners, 20)
    sent: list[Msg] = []
    for wave in range(5):  # up to UNDERWRITING
        msgs = mix.build(wave)
        for m in msgs:
            stack.partners.publish(m.sender, m.body)
        wait_committed(stack.engine, [m.message_id for m in msgs], 240)
        sent += msgs
    first, second = mix.build(5), mix.build(5)
    for a, b in zip(first, second, strict=True):
        stack.partners.publish(a.sender, a.body)
        stack.partners.publish(b.sender, b.body)
    wait_committed(stack.engine, [m.message_id for m in first + second], 240)
    settle(stack.partners, stack.engine, sent + first + second, timeout=150)
    with stack.engine.connect() as c:
        approvals = dict(c.execute(text(
            "SELECT subject_no, count(*) FROM progress WHERE subject = 'QUOTA' "
            "AND status = 'APPROVED' GROUP BY subject_no")).all())
        ids = {"ids": [m.message_id for m in first + second]}
        codes = dict(c.execute(text(
            "SELECT coalesce(code, '0000'), count(*) FROM journal WHERE direction = 'IN' "
            "AND message_id IN :ids GROUP BY 1").bindparams(bindparam("ids", expanding=True)),
            ids).all())
        notices = c.execute(text(
            "SELECT count(*) FROM journal WHERE direction = 'OUT' AND message_type = 'CDGI505' "
            "AND correlation_id IN :ids").bindparams(bindparam("ids", expanding=True)),
            ids).scalar()
    doubled = sum(n - 1 for n in approvals.values() if n > 1)
    figures.update(quotas=len(approvals), approvals_applied=sum(approvals.values()),
                   doubled=doubled, approval_notices=notices, receipt_codes=codes)
    assert len(approvals) == len(mix.enterprises)
    assert codes.get("2408", 0) + sum(approvals.values()) == 2 * len(mix.enterprises) or doubled
    if doubled:
        pytest.xfail(f"{doubled} of {len(approvals)} quotas were APPROVED twice by racing "
                     "decisions (read-modify-write, no conditional transition); fix in "
                     "adapter/handlers/quotas.py, see docs/reliability.md")
    assert notices == len(mix.enterprises), "one CDGI505 per approval, not per message"


@pytest.mark.xfail(strict=False, reason="out-of-order retry lands on main")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_restore_before_its_deduction_waits_and_is_applied_when_the_deduction_arrives(
    stack: Stack, figures: dict[str, Any]
) -> None:
    """DESIGN.md: out-of-order arrival is retried for a bounded time before it is flagged.
    A restore that arrives before its deduction is journaled WAITING with no receipt yet; its
    deduction arriving within CDGI_ORDER_GRACE_S lets it apply with 0000; a restore whose
    deduction never comes is flagged 2802 once the grace period is over."""
    grace = 6.0
    stack.fleet.env["CDGI_ORDER_GRACE_S"] = str(grace)
    for _ in range(2):
        stack.fleet.start()
    mix = BusinessMix(stack.partners, 4)
    for wave in range(9):  # up to RECORDED
        msgs = mix.build(wave)
        for m in msgs:
            stack.partners.publish(m.sender, m.body)
        wait_committed(stack.engine, [m.message_id for m in msgs], 240)
    customs = stack.partners.sims["CUS.0800"]
    now = datetime.now(UTC)
    early, orphan, late = [], [], []
    for e in mix.enterprises:
        restore = doc.guarantee_restore(guarantee_record_no=e.no("G"), entry_id=mix.entry(e, 5),
                                        amount=Decimal("300.00"), paid_time=now)
        early.append(customs.send("CDGI407", restore))
        orphan.append(customs.send("CDGI407", doc.guarantee_restore(
            guarantee_record_no=e.no("G"), entry_id=mix.entry(e, 6), amount=Decimal("1.00"),
            paid_time=now)))
    time.sleep(1.0)
    with stack.engine.connect() as c:
        waiting = c.execute(text(
            "SELECT count(*) FROM journal WHERE direction = 'IN' AND status = 'WAITING'"
        )).scalar()
    early_receipts = [g for g in stack.partners.received() if g.message_type == "CDGI900"
                      and g.correlation_id in set(early)]
    for e in mix.enterprises:
        late.append(customs.send("CDGI405", doc.guarantee_deduct(
            guarantee_record_no=e.no("G"), entry_id=mix.entry(e, 5), declaration_type="CL",
            customs_district="0800", tax_items=[doc.TaxItem(tax_kind="DUTY",
                                                            amount=Decimal("300.00"))],
            total=Decimal("300.00"), deduct_time=now,
            payment_due_date=mix.today - timedelta(days=1))))
    deadline = time.monotonic() + grace * 4
    receipts: dict[str, str] = {}
    while time.monotonic() < deadline and len(receipts) < len(early + orphan + late):
        for g in stack.partners.received():
            if g.message_type == "CDGI900" and g.correlation_id in set(early + orphan + late):
                el = business_element(etree.fromstring(g.body))
                receipts[g.correlation_id] = field_of(el, "ReturnCode") or ""
        time.sleep(0.3)
    figures.update(waiting_seen=waiting, receipts=len(receipts))
    assert waiting == 2 * len(mix.enterprises), "restores without a deduction wait"
    assert early_receipts == [], "no receipt while a restore waits"
    assert [receipts.get(m) for m in early] == ["0000"] * len(early)
    assert [receipts.get(m) for m in late] == ["0000"] * len(late)
    assert [receipts.get(m) for m in orphan] == ["2802"] * len(orphan)
