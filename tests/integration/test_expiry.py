"""Expiry with an injected clock, on real SQLite and PostgreSQL, signed with the SoftHSM2 card."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree
from sqlmodel import Session, select

from adapter.expiry import Expiry
from adapter.pipeline import Pipeline
from adapter.registry import Registry
from adapter.settings import Settings
from card import Pkcs11Signer, verify_envelope
from store.db import utcnow
from store.models import Outbox, Policy, Progress, Quota
from tests.support.softhsm import TokenInfo, session_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> TokenInfo:
    return session_token(tmp_path_factory)


@pytest.fixture()
def signer(token: TokenInfo) -> Any:
    s = Pkcs11Signer(token.module, token.token_label, token.key_label, token.pin)
    yield s
    s.close()


def _state(engine: Any) -> None:
    now = utcnow()
    common = dict(uscc="91210100MA0DEM0016", insurer_code="PICC", applied_amount=Decimal("1.00"),
                  term_start=date(2025, 7, 1), term_end=date(2026, 6, 30), message_id="M",
                  created_at=now, updated_at=now, approved_amount=Decimal("1.00"),
                  valid_from=date(2025, 7, 1))
    with Session(engine) as s:
        s.add(Quota(quota_no="Q-OLD", status="APPROVED", valid_to=date(2026, 6, 30), **common))
        s.add(Quota(quota_no="Q-LIVE", status="APPROVED", valid_to=date(2026, 12, 31), **common))
        s.add(Quota(quota_no="Q-REJ", status="REJECTED", valid_to=date(2026, 1, 1), **common))
        s.add(Policy(apply_no="A-OLD", policy_no="P-OLD", quota_no="Q-OLD",
                     uscc="91210100MA0DEM0016", insurer_code="PICC",
                     insured_amount=Decimal("1.00"), term_start=date(2025, 7, 1),
                     term_end=date(2026, 6, 30), insured_customs="0800", coverage="DUTY",
                     status="RECORDED", guarantee_record_no="G-OLD", message_id="M",
                     created_at=now, updated_at=now))
        s.commit()


def test_what_passed_its_end_date_expires_once_and_the_portal_is_told(
    migrated_url: str, engines: Any, signer: Pkcs11Signer
) -> None:
    engine = engines(migrated_url)
    _state(engine)
    pipeline = Pipeline(replace(Settings(), database_url=migrated_url),
                        Registry(engines(migrated_url, writer=False)), signer, owner="test")
    on_the_last_day = Expiry(pipeline, today=lambda: date(2026, 6, 30))
    assert on_the_last_day.sweep(engine) == [], "nothing expires on its last valid day"

    expiry = Expiry(pipeline, today=lambda: date(2026, 7, 1))
    ids = expiry.sweep(engine)
    assert len(ids) == 2
    assert expiry.sweep(engine) == [], "a second sweep (or another process) sends nothing more"

    with Session(engine) as s:
        statuses = {q.quota_no: q.status for q in s.exec(select(Quota))}
        policy = s.get(Policy, "A-OLD")
        notices = s.exec(select(Outbox).where(Outbox.message_type == "CDGI505")).all()
        progress = s.exec(select(Progress)).all()
    assert statuses == {"Q-OLD": "EXPIRED", "Q-LIVE": "APPROVED", "Q-REJ": "REJECTED"}
    assert policy is not None and policy.status == "EXPIRED"
    assert sorted((p.subject, p.subject_no, p.status) for p in progress) == [
        ("POLICY", "P-OLD", "EXPIRED"), ("QUOTA", "Q-OLD", "EXPIRED")]
    subjects = set()
    for notice in notices:
        root = etree.fromstring(notice.body)
        verify_envelope(root, [signer.certificate])  # signed by the card
        body = root.find("{urn:cdgi:1}Body/{urn:cdgi:1}StatusNotice")
        assert body is not None and notice.receiver_id == "PORTAL"
        subjects.add((body.findtext("{urn:cdgi:1}SubjectNo"), body.findtext("{urn:cdgi:1}Status")))
    assert subjects == {("Q-OLD", "EXPIRED"), ("P-OLD", "EXPIRED")}
