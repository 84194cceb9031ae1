"""End-to-end throughput of the running daemon beside the raw limits, measured in one run.

    python bench/throughput.py [--messages 2000] [--database sqlite|postgresql]

Prints three figures and the ratios between them:
- raw PKCS#11 signing rate of the SoftHSM2 key (the card is the floor: one signature per
  receipt);
- raw consume rate of the local RabbitMQ (prefetch 100, ack each);
- messages per second through ``cdgi run`` (a daemon subprocess), counted from the partner's
  side: from the first publish to the last receipt received.

Everything it makes has names of its own (a token in a temporary directory, a broker prefix,
a database) and is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.domain.identifiers import make_uscc  # noqa: E402
from adapter.registry import fingerprint  # noqa: E402
from adapter.settings import Settings  # noqa: E402
from adapter.documents import credit_info  # noqa: E402
from adapter.sim import SimPartner  # noqa: E402
from card import SoftwareSigner  # noqa: E402
from store.db import make_engine, utcnow  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Partner, PartnerCert  # noqa: E402
from store.repo import save_partner  # noqa: E402
from tests.support.softhsm import make_token  # noqa: E402

AMQP = os.environ.get("CDGI_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def raw_sign_rate(token_env: dict[str, str], n: int) -> float:
    """Signatures per second straight through PKCS#11, in a process of its own."""
    code = (
        "import sys, time; from card import Pkcs11Signer\n"
        "s = Pkcs11Signer(*sys.argv[1:5]); data = b'x' * 1024; s.sign_bytes(data)\n"
        "n = int(sys.argv[5]); t = time.perf_counter()\n"
        "for _ in range(n): s.sign_bytes(data)\n"
        "print(n / (time.perf_counter() - t)); s.close()\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            token_env["CDGI_PKCS11_MODULE"],
            token_env["CDGI_TOKEN_LABEL"],
            token_env["CDGI_KEY_LABEL"],
            token_env["CDGI_CARD_PIN"],
            str(n),
        ],
        env={**os.environ, **token_env},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip())


def raw_consume_rate(n: int, body: bytes) -> float:
    """Messages per second consumed from a quorum queue with prefetch 100, ack each."""
    queue = f"bench.raw.{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    ch.confirm_delivery()
    for _ in range(n):
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    ch.basic_qos(prefetch_count=100)
    got = 0
    start = time.perf_counter()
    for method, _props, _body in ch.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        ch.basic_ack(method.delivery_tag)
        got += 1
        if got == n:
            break
    elapsed = time.perf_counter() - start
    ch.cancel()
    ch.queue_delete(queue)
    conn.close()
    return got / elapsed


def database(kind: str, tmp: Path) -> tuple[str, str | None]:
    """A fresh database URL (and, for PostgreSQL, its name to drop afterwards)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    from sqlalchemy import create_engine, text

    name = f"cdgi_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, name


def drop(name: str | None) -> None:
    if name is None:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def daemon_rate(token_env: dict[str, str], n: int, db_kind: str, tmp: Path) -> tuple[float, int]:
    """Messages per second through a daemon subprocess, receipts counted by the partner."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    url, dbname = database(db_kind, tmp)
    engine = make_engine(url)
    upgrade(engine)
    partner_key = SoftwareSigner.generate("CUS.0800 bench", key_name="CUS.0800")
    now = utcnow()
    cert = partner_key.certificate
    save_partner(
        engine,
        Partner(id="CUS.0800", name="bench", kind="CUSTOMS", created_at=now, updated_at=now),
        PartnerCert(
            partner_id="CUS.0800",
            fingerprint=fingerprint(cert),
            subject="b",
            pem=partner_key.cert_pem().decode(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            added_at=now,
        ),
    )
    engine.dispose()
    settings = replace(Settings(), prefix=prefix, database_url=url, amqp_url=AMQP)
    partner = SimPartner("CUS.0800", partner_key, settings).connect()
    uscc = make_uscc("91210100MA0BENCH1")
    bodies = [
        partner.envelope(
            "CDGI401",
            credit_info(
                uscc=uscc, customs_code="2101960001", rating="GENERAL", rated_date=date(2026, 11, 1)
            ),
        )
        for _ in range(n)
    ]
    env = {
        **os.environ,
        **token_env,
        "CDGI_PREFIX": prefix,
        "CDGI_DATABASE_URL": url,
        "CDGI_AMQP_URL": AMQP,
        "CDGI_STATE_DIR": str(tmp / "run"),
        "CDGI_LOG_LEVEL": "WARNING",
        "CDGI_LOG_FORMAT": "json", "CDGI_HTTP_PORT": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapter", "run"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not list((tmp / "run").glob(f"{prefix}-*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        start = time.perf_counter()
        for body in bodies:
            partner.send_raw(body)
        got = len(partner.receive(n, timeout=max(60, n / 20)))
        elapsed = time.perf_counter() - start
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        conn = pika.BlockingConnection(pika.URLParameters(AMQP))
        ch = conn.channel()
        for q in (f"{prefix}.in.q", f"{prefix}.dead", partner.queue):
            ch.queue_delete(q)
        for x in (f"{prefix}.in", f"{prefix}.out", f"{prefix}.dlx"):
            ch.exchange_delete(x)
        conn.close()
        partner.close()
        drop(dbname)
    return got / elapsed, got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cdgi-bench-") as tmpdir:
        tmp = Path(tmpdir)
        token = make_token(tmp / "card", token_label="CDGI-BENCH", key_label="bench")
        sign = raw_sign_rate(token.env, max(500, args.messages))
        body = b"x" * 2800
        consume = raw_consume_rate(max(2000, args.messages), body)
        rate, got = daemon_rate(token.env, args.messages, args.database, tmp)
    print(
        f"messages                     {got} of {args.messages} receipted "
        f"({args.database}, one daemon process)"
    )
    print(f"raw PKCS#11 sign             {sign:9.0f} /s")
    print(f"raw consume (prefetch 100)   {consume:9.0f} /s")
    print(f"daemon end to end            {rate:9.0f} /s")
    print(f"  ratio to raw sign          {rate / sign:9.3f}")
    print(f"  ratio to raw consume       {rate / consume:9.3f}")


if __name__ == "__main__":
    main()
