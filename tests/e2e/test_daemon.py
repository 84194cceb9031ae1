"""The daemon as a subprocess, driven over the real bus by simulated partners.

Real RabbitMQ, a real SoftHSM2 token for the adapter's card, SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from lxml import etree

from adapter.domain.identifiers import make_uscc
from adapter.envelope import build_envelope, contract_time, serialize
from adapter import documents
from adapter.sim import SimPartner, der
from card import SoftwareSigner, sign_envelope, verify_envelope
from store.db import utcnow
from tests.support.harness import ROOT, Running
from tests.support.softhsm import TokenInfo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

USCC = make_uscc("91210100MA0TEXT01")
TODAY = date(2026, 11, 24)


def _binding(card_key: SoftwareSigner, card_no: str = "LP0000000001") -> etree._Element:
    return documents.card_binding(
        uscc=USCC,
        enterprise_name="辽宁测试进出口有限公司",
        customs_code="2101960001",
        card_no=card_no,
        card_role="LEGAL",
        certificate=der(card_key),
        valid_from=date(2026, 1, 1),
        valid_to=date(2028, 12, 31),
        seals=[documents.Seal(seal_id="SEAL-0001", holder_name="张伟",
                              valid_from=date(2026, 1, 1), valid_to=date(2028, 12, 31))],
    )


def _credit(rating: str = "ADVANCED", rated: date = TODAY) -> etree._Element:
    return documents.credit_info(
        uscc=USCC,
        customs_code="2101960001",
        rating=rating,
        rated_date=rated,
        records=[documents.CreditRecord(date=rated, kind="AEO", description="高级认证企业")],
    )


def _credit_row(r: Running) -> tuple[str, str] | None:
    from sqlmodel import Session

    from store.models import Credit

    with Session(r.engine) as s:
        row = s.get(Credit, USCC)
        return (row.rating, row.message_id) if row else None


def test_a_card_binding_and_a_credit_rating_are_processed_stored_and_receipted(
    daemon: Running, card_certificate: x509.Certificate
) -> None:
    card_key = SoftwareSigner.generate("legal person card")
    bind_id = daemon.portal.send("CDGI101", _binding(card_key))
    credit_id = daemon.customs.send("CDGI401", _credit())

    bind_receipt = daemon.portal.receipts_for([bind_id])[bind_id]
    credit_receipt = daemon.customs.receipts_for([credit_id])[credit_id]

    for receipt, ori, ori_type in (
        (bind_receipt, bind_id, "CDGI101"),
        (credit_receipt, credit_id, "CDGI401"),
    ):
        assert receipt.field("ReturnStatus") == "1"
        assert receipt.field("ReturnCode") == "0000"
        assert receipt.field("OriMessageType") == ori_type
        assert receipt.correlation_id == ori
        # The receipt is signed by the adapter's card: verifiable with its certificate.
        verify_envelope(etree.fromstring(receipt.body), [card_certificate])

    assert _credit_row(daemon) == ("ADVANCED", credit_id)
    inbound = {row.message_id: row for row in daemon.journal(direction="IN")}
    assert inbound[bind_id].status == "PROCESSED" and inbound[bind_id].uscc == USCC
    assert inbound[credit_id].status == "PROCESSED"
    sent = daemon.journal(direction="OUT")
    assert {row.correlation_id for row in sent} >= {bind_id, credit_id}
    assert daemon.alive()


def _bad_cases(daemon: Running) -> list[tuple[str, bytes, str]]:
    """(what, bytes, expected ReturnCode) for every bad input the spine must refuse."""
    customs = daemon.customs
    stranger = SoftwareSigner.generate("not registered", key_name="CUS.0800")
    unsigned = serialize(
        build_envelope(
            message_type="CDGI401",
            sender_id="CUS.0800",
            receiver_id="DC",
            business=_credit("DISHONEST"),
            send_time=contract_time(utcnow()),
        )
    )
    wrong_key = serialize(
        sign_envelope(
            build_envelope(
                message_type="CDGI401",
                sender_id="CUS.0800",
                receiver_id="DC",
                business=_credit("DISHONEST"),
                send_time=contract_time(utcnow()),
            ),
            stranger,
        )
    )
    tampered = customs.envelope("CDGI401", _credit("GENERAL")).replace(b">GENERAL<", b">DISHONEST<")
    invalid = customs.envelope("CDGI401", _credit("EXCELLENT"))
    return [
        ("not well-formed", b"<cdgi:Envelope xmlns:cdgi='urn:cdgi:1'><a></cdgi:Envelope>", "0001"),
        ("schema-invalid", invalid, "0002"),
        ("unsigned", unsigned, "1004"),
        ("signed by an unregistered key", wrong_key, "1003"),
        ("tampered after signing", tampered, "1001"),
    ]


def test_bad_messages_get_their_receipt_codes_change_no_state_and_leave_the_daemon_running(
    daemon: Running,
) -> None:
    first = daemon.customs.send("CDGI401", _credit("ADVANCED"))
    assert daemon.customs.receipts_for([first])[first].field("ReturnStatus") == "1"
    before = _credit_row(daemon)

    cases = _bad_cases(daemon)
    for _, body, _ in cases:
        daemon.customs.send_raw(body)
    receipts = daemon.customs.receive(len(cases), timeout=30)
    assert len(receipts) == len(cases), "every bad message gets exactly one receipt"
    codes = sorted(r.field("ReturnCode") or "" for r in receipts)
    assert codes == sorted(code for _, _, code in cases)
    assert all(int(r.field("ReturnStatus") or "0") < 0 for r in receipts)

    assert _credit_row(daemon) == before, "a refused message changed the state"
    refused = daemon.journal(direction="IN", status="REFUSED")
    assert sorted(r.code for r in refused) == codes, "each refusal has its journal row"
    assert all(r.raw for r in refused), "the journal keeps the bytes that travelled"
    assert daemon.alive()


def test_a_duplicate_gets_the_original_receipt_again_and_a_changed_copy_is_refused(
    daemon: Running,
) -> None:
    customs = daemon.customs
    body = customs.envelope("CDGI401", _credit("ADVANCED"))
    customs.send_raw(body)
    original = customs.receive(1)[0]
    message_id = original.field("OriMessageId")
    assert original.field("ReturnStatus") == "1"

    # The same message delivered again: a duplicate, answered with the original receipt.
    customs.send_raw(body)
    again = customs.receive(1)[0]
    assert again.body == original.body, "the original receipt, byte for byte"

    changed = customs.envelope("CDGI401", _credit("GENERAL"), message_id=message_id)
    customs.send_raw(changed)
    conflict = customs.receive(1)[0]
    assert conflict.field("ReturnCode") == "1005"
    assert _credit_row(daemon) == ("ADVANCED", message_id)
    inbound = [r for r in daemon.journal(direction="IN") if r.message_id == message_id]
    assert sorted(r.status for r in inbound) == ["PROCESSED", "REFUSED"]
    assert daemon.alive()


def test_sigterm_finishes_the_work_in_hand_and_exits_with_ok(daemon: Running) -> None:
    ids = [daemon.customs.send("CDGI401", _credit(rated=date(2026, 11, d))) for d in range(1, 11)]
    time.sleep(0.05)
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=30) == 0
    processed = {r.message_id for r in daemon.journal(direction="IN")}
    # Whatever the daemon took before stopping is recorded; the rest waits in the queue.
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(daemon.settings.amqp_url))
    waiting = conn.channel().queue_declare(daemon.settings.queue_in, passive=True)
    left = waiting.method.message_count
    conn.close()
    assert len(processed & set(ids)) + left == len(ids), "nothing lost, nothing doubled"


def _cdgi(
    r: Running, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CDGI_PREFIX": r.settings.prefix,
        "CDGI_DATABASE_URL": r.settings.database_url,
        "CDGI_AMQP_URL": r.settings.amqp_url,
        **(extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_refused_message_is_processed_by_replay_once_its_certificate_is_registered(
    daemon: Running, tmp_path: Path
) -> None:
    new_key = SoftwareSigner.generate("CUS.0800 renewed", key_name="CUS.0800")
    renewed = SimPartner("CUS.0800", new_key, daemon.settings)
    body = renewed.envelope("CDGI401", _credit("GENERAL"))
    daemon.customs.send_raw(body)
    refused = daemon.customs.receive(1)[0]
    message_id = refused.field("OriMessageId") or ""
    assert refused.field("ReturnCode") == "1003"

    dry = _cdgi(daemon, "replay", message_id, "--direction", "IN", "--dry-run")
    assert (
        dry.returncode == 0
        and "would reprocess" in dry.stdout
        and "nothing was changed" in dry.stdout
    )
    cert = tmp_path / "renewed.pem"
    cert.write_bytes(new_key.cert_pem())
    added = _cdgi(daemon, "partner", "add", "CUS.0800", "--name", "CUS.0800", "--cert", str(cert))
    assert added.returncode == 0, added.stderr
    time.sleep(5.5)  # the daemon's registry cache lives five seconds

    assert _cdgi(daemon, "replay", message_id, "--direction", "IN").returncode == 0
    accepted = daemon.customs.receive(1)[0]
    assert (accepted.field("OriMessageId"), accepted.field("ReturnCode")) == (message_id, "0000")
    assert _credit_row(daemon) == ("GENERAL", message_id)

    # Replaying again is idempotent: a duplicate, answered with the same receipt.
    assert _cdgi(daemon, "replay", message_id, "--direction", "IN").returncode == 0
    assert daemon.customs.receive(1)[0].body == accepted.body
    story = _cdgi(daemon, "why", message_id)
    assert "REFUSED 1003" in story.stdout and "PROCESSED" in story.stdout
    assert "duplicate" in story.stdout


def test_a_partner_receipt_is_recorded_against_the_message_it_answers(daemon: Running) -> None:
    sent = daemon.customs.send("CDGI401", _credit())
    ours = daemon.customs.receipts_for([sent])[sent]
    answer = daemon.customs.answer(ours, status=-1, code="0002", info="cannot read your receipt")
    deadline = time.monotonic() + 20
    row = None
    while time.monotonic() < deadline:
        rows = daemon.journal(direction="OUT", message_type="CDGI900")
        row = next((r for r in rows if r.message_id == ours.message_id), None)
        if row is not None and row.status == "REFUSED_BY_PARTNER":
            break
        time.sleep(0.2)
    assert row is not None and (row.status, row.code) == ("REFUSED_BY_PARTNER", "0002")
    # No receipt for a receipt.
    assert daemon.customs.receive(1, timeout=1.5) == []
    inbound = [r for r in daemon.journal(direction="IN") if r.message_id == answer]
    assert inbound and inbound[0].status == "PROCESSED"
    assert "cannot read your receipt" in _cdgi(daemon, "why", ours.message_id or "").stdout


def _status(r: Running) -> str:
    files = list(Path(r.settings.state_dir).glob("*.json"))
    return files[0].read_text() if files else ""


def test_a_database_outage_pauses_the_daemon_and_loses_nothing(
    daemon: Running, rabbitmq: str
) -> None:
    if not daemon.settings.database_url.startswith("postgresql"):
        pytest.skip("the outage is made by refusing connections to a PostgreSQL database")
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL

    name = daemon.settings.database_url.rsplit("/", 1)[1]
    admin = create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    daemon.engine.dispose()

    def allow(flag: bool) -> None:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(flag).lower()}'))
            if not flag:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                    ),
                    {"n": name},
                )

    try:
        allow(False)
        ids = [daemon.customs.send("CDGI401", _credit(rated=date(2026, 10, d))) for d in (1, 2, 3)]
        deadline = time.monotonic() + 15
        while '"paused"' not in _status(daemon) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert '"paused"' in _status(daemon) and daemon.alive()
        assert daemon.customs.receive(1, timeout=1) == []
    finally:
        allow(True)
    receipts = daemon.customs.receipts_for(ids, timeout=60)
    assert sorted(receipts) == sorted(ids)
    assert {r.field("ReturnCode") for r in receipts.values()} == {"0000"}
    assert '"running"' in _status(daemon)
    admin.dispose()


def test_a_lost_broker_connection_is_reopened_and_nothing_is_lost(daemon: Running) -> None:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if listed.returncode != 0:
        pytest.skip("rabbitmqctl is not usable here")
    pids = [
        line.split()[0]
        for line in listed.stdout.splitlines()
        if f"cdgi-adapter {daemon.settings.prefix}" in line
    ]
    assert pids, "the daemon's connection is named after its prefix"
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pid, "test: broker outage"],
            check=True,
            timeout=30,
        )
    ids = [daemon.customs.send("CDGI401", _credit(rated=date(2026, 9, d))) for d in (1, 2, 3)]
    receipts = daemon.customs.receipts_for(ids, timeout=60)
    assert sorted(receipts) == sorted(ids)
    assert daemon.alive()


def test_a_wrong_pin_stops_the_daemon_with_exit_78_and_is_never_retried(
    prefix: str, migrated_url: str, token: TokenInfo, tmp_path: Path, rabbitmq: str
) -> None:
    wrong = "wrong-" + secrets.token_hex(6)
    env = {
        **os.environ,
        **token.env,
        "CDGI_CARD_PIN": wrong,
        "CDGI_PREFIX": prefix,
        "CDGI_DATABASE_URL": migrated_url,
        "CDGI_AMQP_URL": rabbitmq,
        "CDGI_STATE_DIR": str(tmp_path / "run"),
        "CDGI_LOG_FORMAT": "json", "CDGI_HTTP_PORT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "adapter", "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78
    assert "PIN" in result.stderr
    assert wrong not in result.stderr + result.stdout


def test_an_unroutable_receipt_is_kept_and_raises_an_alert_message_log_and_status(
    start_daemon: Any, rabbitmq: str
) -> None:
    import json

    import pika

    running = start_daemon({"CUS.0800": "customs"}, {"CDGI_ALERT_INTERVAL_S": "0.3"})
    s = running.settings
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    ch = conn.channel()
    watch = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(watch, s.exchange_alerts, routing_key="#")
    ch.queue_delete(running.customs.queue)  # customs' queue is gone: our receipt has nowhere to go

    running.customs.send("CDGI401", _credit())
    alert = None
    deadline = time.monotonic() + 20
    while alert is None and time.monotonic() < deadline:
        method, props, body = ch.basic_get(watch, auto_ack=True)
        if method is None:
            conn.process_data_events(time_limit=0.2)
        elif props.type == "unroutable":
            alert = json.loads(body)
    conn.close()
    assert alert is not None and alert["severity"] == "critical"
    assert "1 outbound message" in alert["message"]
    assert any(r.status == "UNROUTABLE" for r in running.journal(direction="OUT"))
    status = _cdgi(running, "status", "--json")
    kinds = {a["kind"] for a in json.loads(status.stdout)["alerts"]}
    assert "unroutable" in kinds
    assert '"alert"' in running.log_path.read_text() and running.alive()


def test_the_daemon_serves_metrics_and_readiness_that_a_scraper_can_read(
    start_daemon: Any,
) -> None:
    import json
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = start_daemon({"CUS.0800": "customs"},
                           {"CDGI_HTTP_PORT": str(port), "CDGI_ALERT_INTERVAL_S": "0.2"})
    sent = running.customs.send("CDGI401", _credit())
    running.customs.receipts_for([sent])
    running.customs.send_raw(b"<not-xml")
    running.customs.receive(1)
    time.sleep(0.5)
    base = f"http://127.0.0.1:{port}"
    ready = json.loads(urllib.request.urlopen(f"{base}/readyz", timeout=5).read())
    assert ready["ready"] is True and ready["checks"]["card"] == "present"
    text = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("cdgi_messages_in_total",
                    (("outcome", "PROCESSED"), ("partner", "CUS.0800"), ("type", "CDGI401")))] == 1
    assert samples[("cdgi_receipts_total", (("code", "0001"),))] == 1
    assert samples[("cdgi_messages_out_total",
                    (("outcome", "SENT"), ("partner", "CUS.0800"), ("type", "CDGI900")))] == 2
    assert samples[("cdgi_card_sign_seconds_count", ())] >= 2
    assert any(name == "cdgi_certificate_days_to_expiry" and ("owner", "DC") in labels
               for name, labels in samples)
    assert samples[("cdgi_daemon_state", (("state", "running"),))] == 1
