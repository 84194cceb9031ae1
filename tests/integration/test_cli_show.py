"""``cdgi show``: the business as operators and auditors see it, from a real store.

A small realistic state is written straight into SQLite or PostgreSQL, then ``cdgi show``
runs as a subprocess, as an operator runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session

from store.models import (
    Agreement,
    Authorization,
    BoundCard,
    Claim,
    Credit,
    Enterprise,
    Increase,
    LedgerEntry,
    Partner,
    Policy,
    Progress,
    Quota,
    Seal,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

USCC = "91210100MA0DEM0016"
NAME = "大连海川进出口有限公司"
QUOTA = "Q2026001"
APPLY, POLICY, RECORD = "AP2026001", "PL2026001", "GR2026001"
CLAIM = "CL2026001"
ENTRY, STRAY = "018520260000012345", "018520260000099999"
EPOLICY = b"%PDF-1.7\n% e-policy PL2026001\n" + bytes(range(256)) + b"\n%%EOF\n"
EPOLICY_SHA = hashlib.sha256(EPOLICY).hexdigest()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cdgi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args],
        check=False,
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )


def as_json(*args: str, env: dict[str, str]) -> Any:
    done = cdgi(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def human(*args: str, env: dict[str, str]) -> str:
    done = cdgi(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def seed(engine: Any) -> None:
    """An enterprise part-way through the business: cards, credit, an approved quota with an
    approved increase, a recorded policy, its ledger (one discrepancy) and a paid claim."""
    now = utc(2026, 5, 10, 6, 30)
    common = {"message_id": "6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1"}
    card = {
        "certificate_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "valid_from": date(2025, 1, 1),
        "valid_to": date(2027, 12, 31),
        "updated_at": now,
        **common,
    }
    with Session(engine) as s:
        s.add(
            Partner(
                id="INS.PICC", name="中国人保财险", kind="INSURER", created_at=now, updated_at=now
            )
        )
        s.add(Partner(id="BANK.BOC", name="中国银行", kind="BANK", created_at=now, updated_at=now))
        s.add(Enterprise(uscc=USCC, name=NAME, customs_code="2102960123", updated_at=now))
        s.flush()
        s.add(BoundCard(card_no="LC0001", uscc=USCC, role="LEGAL", fingerprint="a" * 64, **card))
        s.add(
            BoundCard(
                card_no="OC0002",
                uscc=USCC,
                role="OPERATOR",
                fingerprint="b" * 64,
                permissions="AUTHORIZE,QUOTA,POLICY,QUERY",
                **card,
            )
        )
        s.add(
            BoundCard(
                card_no="OC0003",
                uscc=USCC,
                role="OPERATOR",
                fingerprint="c" * 64,
                revoked=True,
                **card,
            )
        )
        s.flush()
        s.add(
            Seal(
                seal_id="SEAL-LC0001-1",
                card_no="LC0001",
                holder_name="王海川",
                valid_from=date(2025, 1, 1),
                valid_to=date(2027, 12, 31),
            )
        )
        s.add(
            Credit(
                uscc=USCC,
                customs_code="2102960123",
                rating="ADVANCED",
                rated_date=date(2026, 1, 5),
                updated_at=now,
                records=json.dumps(
                    [{"date": "2025-11-02", "kind": "AUDIT", "description": "年度稽查 无异常"}],
                    ensure_ascii=False,
                ),
                **common,
            )
        )
        s.add(
            Agreement(
                agreement_no="AG2026001",
                uscc=USCC,
                bank_code="BOC",
                customs_district="0900",
                status="EFFECTIVE",
                effective_date=date(2026, 1, 3),
                created_at=now,
                updated_at=now,
                **common,
            )
        )
        s.add(
            Authorization(
                auth_no="AU2026001",
                uscc=USCC,
                insurer_code="PICC",
                scopes="CREDIT_QUERY",
                valid_to=date(2026, 12, 31),
                status="SIGNED",
                created_at=now,
                updated_at=now,
                **common,
            )
        )
        s.add(
            Quota(
                quota_no=QUOTA,
                uscc=USCC,
                insurer_code="PICC",
                status="APPROVED",
                applied_amount=Decimal("5000000.00"),
                term_start=date(2026, 1, 10),
                term_end=date(2026, 12, 31),
                contact_name="李明",
                contact_phone="13800000000",
                approved_amount=Decimal("3000000.00"),
                rate=Decimal("0.0080"),
                valid_from=date(2026, 1, 10),
                valid_to=date(2026, 12, 31),
                created_at=utc(2026, 1, 5, 1),
                updated_at=utc(2026, 1, 10, 2),
                **common,
            )
        )
        s.add(
            Increase(
                increase_no="INC2026001",
                quota_no=QUOTA,
                amount=Decimal("1000000.00"),
                status="APPROVED",
                approved_amount=Decimal("800000.00"),
                created_at=utc(2026, 2, 1),
                updated_at=utc(2026, 2, 3),
                **common,
            )
        )
        s.add(
            Increase(
                increase_no="INC2026002",
                quota_no=QUOTA,
                amount=Decimal("500000.00"),
                status="REJECTED",
                reason="exposure limit reached",
                created_at=utc(2026, 2, 10),
                updated_at=utc(2026, 2, 11),
                **common,
            )
        )
        policy = {
            "quota_no": QUOTA,
            "uscc": USCC,
            "insurer_code": "PICC",
            "term_start": date(2026, 3, 1),
            "term_end": date(2026, 12, 31),
            "insured_customs": "0900,0800",
            "coverage": "DUTY,VAT",
            **common,
        }
        s.add(
            Policy(
                apply_no=APPLY,
                policy_no=POLICY,
                insured_amount=Decimal("2000000.00"),
                status="RECORDED",
                premium=Decimal("16000.00"),
                rate=Decimal("0.008"),
                invoice=json.dumps(
                    {"Type": "SPECIAL", "Title": NAME, "TaxpayerId": USCC}, ensure_ascii=False
                ),
                epolicy_file_name="PL2026001.pdf",
                epolicy_media_type="application/pdf",
                epolicy_sha256=EPOLICY_SHA,
                epolicy_content=EPOLICY,
                guarantee_record_no=RECORD,
                created_at=utc(2026, 2, 20),
                updated_at=utc(2026, 2, 25),
                **policy,
            )
        )
        s.add(
            Policy(
                apply_no="AP2026002",
                insured_amount=Decimal("1500000.00"),
                status="DECLINED",
                reason="no",
                created_at=utc(2026, 2, 21),
                updated_at=utc(2026, 2, 22),
                **policy,
            )
        )
        s.add(
            Policy(
                apply_no="AP2026003",
                insured_amount=Decimal("300000.50"),
                status="SUBMITTED",
                created_at=utc(2026, 4, 1),
                updated_at=utc(2026, 4, 1),
                **policy,
            )
        )
        line = {"guarantee_record_no": RECORD, "policy_no": POLICY, "created_at": now, **common}
        s.add(
            LedgerEntry(
                entry_id=ENTRY,
                kind="DEDUCT",
                amount=Decimal("120000.55"),
                declaration_type="CL",
                customs_district="0900",
                tax_items=json.dumps([["DUTY", "20000.55"], ["VAT", "100000.00"]]),
                at=utc(2026, 3, 2, 2, 15),
                due_date=date(2026, 3, 17),
                available_after=Decimal("1879999.45"),
                **line,
            )
        )
        s.add(
            LedgerEntry(
                entry_id=ENTRY,
                kind="RESTORE",
                amount=Decimal("20000.55"),
                at=utc(2026, 3, 10, 8),
                available_after=Decimal("1900000.00"),
                **line,
            )
        )
        s.add(
            LedgerEntry(
                entry_id=STRAY,
                kind="RESTORE",
                amount=Decimal("5000.00"),
                at=utc(2026, 3, 11, 8),
                available_after=Decimal("1905000.00"),
                discrepancy="2802",
                note=f"no deduction of entry {STRAY} is known; recorded and flagged",
                **line,
            )
        )
        s.add(
            Claim(
                claim_no=CLAIM,
                policy_no=POLICY,
                guarantee_record_no=RECORD,
                uscc=USCC,
                insurer_code="PICC",
                cause="OVERDUE",
                entries=json.dumps(
                    [
                        {
                            "entry_id": ENTRY,
                            "tax": "100000.00",
                            "due_date": "2026-03-17",
                            "overdue_days": 45,
                            "late_fee": "2250.00",
                        }
                    ]
                ),
                total=Decimal("102250.00"),
                notice_date=date(2026, 5, 1),
                status="PAID",
                paid_amount=Decimal("102250.00"),
                paid_time=utc(2026, 5, 10, 6, 30),
                created_at=utc(2026, 5, 1),
                updated_at=now,
                **common,
            )
        )
        # Progress rows written out of time order: the views must sort by time.
        for subject, no, status, at, reason in [
            ("INCREASE", "INC2026002", "REJECTED", utc(2026, 2, 11), "exposure limit reached"),
            ("QUOTA", QUOTA, "APPROVED", utc(2026, 1, 10, 2), None),
            ("INCREASE", "INC2026001", "APPROVED", utc(2026, 2, 3), None),
            ("QUOTA", QUOTA, "SUBMITTED", utc(2026, 1, 5, 1), None),
            ("INCREASE", "INC2026001", "PENDING", utc(2026, 2, 1), None),
            ("QUOTA", QUOTA, "UNDERWRITING", utc(2026, 1, 6), None),
            ("INCREASE", "INC2026002", "PENDING", utc(2026, 2, 10), None),
            ("QUOTA", "Q2025009", "EXPIRED", utc(2026, 1, 1), None),
            ("POLICY", POLICY, "RECORDED", utc(2026, 2, 25), None),
            ("POLICY", APPLY, "SUBMITTED", utc(2026, 2, 20), None),
            ("POLICY", POLICY, "ISSUED", utc(2026, 2, 22), None),
            ("POLICY", "AP2026002", "DECLINED", utc(2026, 2, 22), "no"),
            ("CLAIM", CLAIM, "PAID", utc(2026, 5, 10, 6, 30), None),
            ("CLAIM", CLAIM, "NOTIFIED", utc(2026, 5, 1), None),
        ]:
            s.add(
                Progress(
                    uscc=USCC,
                    subject=subject,
                    subject_no=no,
                    status=status,
                    reason=reason,
                    at=at,
                    **common,
                )
            )
        s.commit()


@pytest.fixture()
def env(migrated_url: str, engines: Any, tmp_path: Path) -> dict[str, str]:
    seed(engines(migrated_url))
    return {
        "CDGI_DATABASE_URL": migrated_url,
        "CDGI_STATE_DIR": str(tmp_path / "run"),
        "CDGI_SOFTHSM_DIR": str(tmp_path / "softhsm"),
        "TZ": "Asia/Shanghai",  # humans read local time: UTC+8 here
        "COLUMNS": "250",
    }


def steps(history: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(h["subject"], h["subject_no"], h["status"]) for h in history]


def test_an_enterprise_shows_its_credit_cards_contracts_quotas_policies_and_claims(
    env: dict[str, str],
) -> None:
    doc = as_json("show", "enterprise", USCC, env=env)
    assert (doc["uscc"], doc["name"], doc["customs_code"]) == (USCC, NAME, "2102960123")
    assert doc["credit"]["rating"] == "ADVANCED"
    assert doc["credit"]["rated_date"] == "2026-01-05"
    assert doc["credit"]["records"] == [
        {"date": "2025-11-02", "kind": "AUDIT", "description": "年度稽查 无异常"}
    ]
    cards = {c["card_no"]: c for c in doc["cards"]}
    assert cards["OC0002"]["permissions"] == ["AUTHORIZE", "QUOTA", "POLICY", "QUERY"]
    assert cards["OC0003"]["revoked"] is True
    assert cards["LC0001"]["seals"] == [
        {
            "seal_id": "SEAL-LC0001-1",
            "holder_name": "王海川",
            "valid_from": "2025-01-01",
            "valid_to": "2027-12-31",
        }
    ]
    assert [(a["agreement_no"], a["bank_name"], a["status"]) for a in doc["agreements"]] == [
        ("AG2026001", "中国银行", "EFFECTIVE")
    ]
    assert [(a["auth_no"], a["scopes"], a["valid_to"]) for a in doc["authorizations"]] == [
        ("AU2026001", ["CREDIT_QUERY"], "2026-12-31")
    ]
    assert [
        (q["quota_no"], q["status"], q["applied_amount"], q["approved_amount"])
        for q in doc["quotas"]
    ] == [(QUOTA, "APPROVED", "5000000.00", "3000000.00")]
    assert [
        (p["apply_no"], p["policy_no"], p["status"], p["insured_amount"]) for p in doc["policies"]
    ] == [
        (APPLY, POLICY, "RECORDED", "2000000.00"),
        ("AP2026002", None, "DECLINED", "1500000.00"),
        ("AP2026003", None, "SUBMITTED", "300000.50"),
    ]
    assert [
        (c["claim_no"], c["status"], c["total"], c["paid_amount"], c["paid_time"])
        for c in doc["claims"]
    ] == [(CLAIM, "PAID", "102250.00", "102250.00", "2026-05-10T06:30:00+00:00")]

    text = human("show", "enterprise", USCC, env=env)
    for fact in (
        NAME,
        "2102960123",
        "ADVANCED rated 2026-01-05",
        "LC0001",
        "REVOKED",
        "SEAL-LC0001-1",
        "AUTHORIZE, QUOTA, POLICY, QUERY",
        "BOC (中国银行)",
        "PICC (中国人保财险)",
        "5000000.00",
        "3000000.00",
        "300000.50",
        "102250.00",
        "2026-05-10 14:30:00",
    ):
        assert fact in text, fact


def test_a_quota_shows_what_it_still_allows_and_its_history_in_time_order(
    env: dict[str, str],
) -> None:
    doc = as_json("show", "quota", QUOTA, env=env)
    assert (doc["status"], doc["approved_amount"], doc["rate"]) == (
        "APPROVED",
        "3000000.00",
        "0.0080",
    )
    assert [
        (i["increase_no"], i["status"], i["amount"], i["approved_amount"]) for i in doc["increases"]
    ] == [
        ("INC2026001", "APPROVED", "1000000.00", "800000.00"),
        ("INC2026002", "REJECTED", "500000.00", None),
    ]
    assert [(p["apply_no"], p["live"]) for p in doc["policies"]] == [
        (APPLY, True),
        ("AP2026002", False),
        ("AP2026003", True),
    ]
    # 3000000.00 approved + 800000.00 approved increase − (2000000.00 + 300000.50) live
    assert doc["approved_increases"] == "800000.00"
    assert doc["live_insured"] == "2300000.50"
    assert doc["available"] == "1499999.50"
    assert steps(doc["history"]) == [
        ("QUOTA", QUOTA, "SUBMITTED"),
        ("QUOTA", QUOTA, "UNDERWRITING"),
        ("QUOTA", QUOTA, "APPROVED"),
        ("INCREASE", "INC2026001", "PENDING"),
        ("INCREASE", "INC2026001", "APPROVED"),
        ("INCREASE", "INC2026002", "PENDING"),
        ("INCREASE", "INC2026002", "REJECTED"),
    ]
    assert doc["history"][0]["at"] == "2026-01-05T01:00:00+00:00"

    text = human("show", "quota", QUOTA, env=env)
    for fact in (
        "available: 1499999.50",
        "INC2026001",
        "800000.00",
        "exposure limit reached",
        "2026-01-05 09:00:00",
        "李明 13800000000",
    ):
        assert fact in text, fact


def test_a_policy_is_found_by_either_number_with_invoice_e_policy_ledger_and_history(
    env: dict[str, str],
) -> None:
    doc = as_json("show", "policy", POLICY, env=env)
    assert as_json("show", "policy", APPLY, env=env) == doc
    assert (doc["status"], doc["insured_amount"], doc["premium"], doc["rate"]) == (
        "RECORDED",
        "2000000.00",
        "16000.00",
        "0.0080",
    )
    assert doc["insured_customs"] == ["0900", "0800"]
    assert doc["invoice"] == {"Type": "SPECIAL", "Title": NAME, "TaxpayerId": USCC}
    assert doc["epolicy"] == {
        "file_name": "PL2026001.pdf",
        "media_type": "application/pdf",
        "sha256": EPOLICY_SHA,
        "size": len(EPOLICY),
    }
    assert doc["guarantee_record_no"] == RECORD
    assert doc["ledger"] == {
        "guarantee_record_no": RECORD,
        "insured_amount": "2000000.00",
        "deducted": "120000.55",
        "restored": "25000.55",
        "available": "1905000.00",
        "lines": 3,
        "discrepancies": 1,
    }
    assert [c["claim_no"] for c in doc["claims"]] == [CLAIM]
    assert steps(doc["history"]) == [
        ("POLICY", APPLY, "SUBMITTED"),
        ("POLICY", POLICY, "ISSUED"),
        ("POLICY", POLICY, "RECORDED"),
    ]

    text = human("show", "policy", POLICY, env=env)
    for fact in (
        "RECORDED",
        "2000000.00",
        "SPECIAL",
        "PL2026001.pdf",
        EPOLICY_SHA,
        f"{len(EPOLICY)} bytes",
        "available 1905000.00",
        "1 discrepancy",
        "2026-02-25 08:00:00",
    ):
        assert fact in text, fact
    pending = as_json("show", "policy", "AP2026003", env=env)
    assert (pending["policy_no"], pending["epolicy"], pending["ledger"]) == (None, None, None)


def test_save_epolicy_writes_the_exact_bytes_and_refuses_content_that_fails_its_hash(
    env: dict[str, str], migrated_url: str, engines: Any, tmp_path: Path
) -> None:
    target = tmp_path / "preview.pdf"
    done = cdgi("show", "policy", POLICY, "--save-epolicy", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == EPOLICY
    assert f"sha256 {EPOLICY_SHA} verified" in done.stdout
    folder = tmp_path / "previews"
    folder.mkdir()
    saved = as_json("show", "policy", APPLY, "--save-epolicy", str(folder), env=env)
    assert saved["saved_to"] == str(folder / "PL2026001.pdf")
    assert (folder / "PL2026001.pdf").read_bytes() == EPOLICY

    no_content = cdgi("show", "policy", "AP2026003", "--save-epolicy", str(tmp_path / "x"), env=env)
    assert no_content.returncode == 1
    assert "has no e-policy content" in no_content.stderr
    assert not (tmp_path / "x").exists()

    with Session(engines(migrated_url)) as s:
        s.execute(update(Policy).where(Policy.apply_no == APPLY).values(epolicy_sha256="0" * 64))
        s.commit()
    tampered = tmp_path / "tampered.pdf"
    refused = cdgi("show", "policy", POLICY, "--save-epolicy", str(tampered), env=env)
    assert refused.returncode == 1
    assert "does not match its Sha256" in refused.stderr
    assert EPOLICY_SHA in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not tampered.exists()


def test_a_claim_shows_its_entries_settlement_and_history(env: dict[str, str]) -> None:
    doc = as_json("show", "claim", CLAIM, env=env)
    assert (doc["policy_no"], doc["cause"], doc["notice_date"], doc["total"]) == (
        POLICY,
        "OVERDUE",
        "2026-05-01",
        "102250.00",
    )
    assert doc["entries"] == [
        {
            "entry_id": ENTRY,
            "tax": "100000.00",
            "due_date": "2026-03-17",
            "overdue_days": 45,
            "late_fee": "2250.00",
        }
    ]
    assert doc["entries_total"] == "102250.00"
    assert (doc["status"], doc["paid_amount"], doc["paid_time"]) == (
        "PAID",
        "102250.00",
        "2026-05-10T06:30:00+00:00",
    )
    assert doc["insurer_name"] == "中国人保财险"
    assert steps(doc["history"]) == [("CLAIM", CLAIM, "NOTIFIED"), ("CLAIM", CLAIM, "PAID")]

    text = human("show", "claim", CLAIM, env=env)
    for fact in (ENTRY, "100000.00", "2250.00", "102250.00", "PAID", "2026-05-10 14:30:00"):
        assert fact in text, fact
    assert "add up to" not in text


def test_a_ledger_lists_every_line_with_its_discrepancy_and_the_current_available(
    env: dict[str, str],
) -> None:
    doc = as_json("show", "ledger", RECORD, env=env)
    assert as_json("show", "ledger", "--policy", POLICY, env=env) == doc
    assert (doc["policy_no"], doc["insured_amount"], doc["available"]) == (
        POLICY,
        "2000000.00",
        "1905000.00",
    )
    assert [
        (x["at"], x["entry_id"], x["kind"], x["amount"], x["available_after"], x["discrepancy"])
        for x in doc["lines"]
    ] == [
        ("2026-03-02T02:15:00+00:00", ENTRY, "DEDUCT", "120000.55", "1879999.45", None),
        ("2026-03-10T08:00:00+00:00", ENTRY, "RESTORE", "20000.55", "1900000.00", None),
        ("2026-03-11T08:00:00+00:00", STRAY, "RESTORE", "5000.00", "1905000.00", "2802"),
    ]
    assert doc["lines"][0]["tax_items"] == [["DUTY", "20000.55"], ["VAT", "100000.00"]]
    assert doc["lines"][2]["note"].startswith(f"no deduction of entry {STRAY}")
    assert doc["discrepancies"] == 1

    text = human("show", "ledger", RECORD, env=env)
    for fact in (
        "2026-03-02 10:15:00",
        "-120000.55",
        "1879999.45",
        "! 2802",
        "available: 1905000.00",
        "1 discrepancy",
    ):
        assert fact in text, fact


@pytest.mark.parametrize(
    "args, says",
    [
        (["enterprise", "91110000000000000X"], "no enterprise 91110000000000000X in the store"),
        (["quota", "Q123"], "no quota Q123 in the store; see `cdgi show enterprise USCC`"),
        (["policy", "PL404"], "no policy PL404 in the store"),
        (
            ["policy", "PL404", "--save-epolicy", "/tmp/never-written.pdf"],
            "no policy PL404 in the store",
        ),
        (["claim", "CL404"], "no claim CL404 in the store"),
        (["ledger", "GR404"], "no guarantee record GR404 in the store"),
        (["ledger", "--policy", "PL404"], "no policy PL404 in the store"),
        (["ledger", "--policy", "AP2026003"], "is SUBMITTED, not recorded with customs"),
    ],
)
def test_unknown_numbers_say_where_to_look_without_a_traceback(
    env: dict[str, str], args: list[str], says: str
) -> None:
    done = cdgi("show", *args, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_ledger_needs_exactly_one_way_to_name_it(env: dict[str, str]) -> None:
    done = cdgi("show", "ledger", RECORD, "--policy", POLICY, env=env)
    assert done.returncode == 2
    assert "give exactly one of GUARANTEE_RECORD_NO or --policy" in done.stderr
