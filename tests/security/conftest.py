"""The security suite: one daemon per database backend and test module, with its own card,
store and prefix, fed a corpus of hostile and malformed messages over the real bus.

Module-scoped (not per test as in tests/e2e), so that the corpus runs through one daemon per
backend and the suite stays fast; each case is still asserted as a test of its own.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapter.registry import fingerprint, kind_of
from adapter.settings import Settings
from adapter.sim import SimPartner
from card import SoftwareSigner
from store.db import make_engine, utcnow
from store.migrate import upgrade
from store.models import Partner, PartnerCert
from store.repo import save_partner
from tests.conftest import AMQP_URL, BACKENDS, PG_ADMIN_URL, unique
from tests.security.suite import REPORT, stop
from tests.support import unavailable
from tests.support.harness import DAEMON, ROOT, Running, _wait_running, card_certificate
from tests.support.softhsm import TokenInfo, make_token, require_softhsm

__all__ = ["card_certificate"]


@pytest.fixture(scope="module")
def so_pin() -> str:
    """The card's security officer PIN: distinctive, so that finding it means it leaked."""
    return "so-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory, so_pin: str) -> TokenInfo:
    """The adapter's card, with a PIN no output could contain by chance."""
    require_softhsm()
    return make_token(
        tmp_path_factory.mktemp("card"),
        token_label="CDGI-SEC",
        key_label="dc-sec",
        pin="pin-" + secrets.token_hex(8),
        so_pin=so_pin,
    )


@pytest.fixture(scope="module")
def amqp() -> str:
    """The URL of a running RabbitMQ (skip on a laptop without one, fail in CI)."""
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except (pika.exceptions.AMQPError, OSError):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    return AMQP_URL


@pytest.fixture(scope="module")
def module_prefix(amqp: str) -> Iterator[str]:
    """A topology prefix of this module's own; its queues and exchanges are deleted after."""
    import pika

    name = unique("cdgi-sec-")
    yield name
    conn = pika.BlockingConnection(pika.URLParameters(amqp))
    ch = conn.channel()
    for queue in (f"{name}.in.q", f"{name}.dead", *(f"{name}.partner.{p}" for p in _PARTIES)):
        ch.queue_delete(queue)
    for exchange in (f"{name}.in", f"{name}.out", f"{name}.dlx", f"{name}.alerts"):
        ch.exchange_delete(exchange)
    conn.close()


@pytest.fixture(scope="module", params=BACKENDS)
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database at the newest schema, SQLite or PostgreSQL, for one module."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'cdgi.db'}"
        _upgrade(url)
        yield url
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    name = unique("cdgi_sec_")
    admin_url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}")
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    _upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _upgrade(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def register_partner(engine: Any, party_id: str, signer: SoftwareSigner, *,
                     enabled: bool = True) -> None:
    """Register a partner and the certificate it signs with, straight in the store."""
    now = utcnow()
    cert = signer.certificate
    save_partner(
        engine,
        Partner(id=party_id, name=party_id, kind=kind_of(party_id) or "PORTAL",
                enabled=enabled, created_at=now, updated_at=now),
        PartnerCert(partner_id=party_id, fingerprint=fingerprint(cert),
                    subject=cert.subject.rfc4514_string(), pem=signer.cert_pem().decode(),
                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                    added_at=now),
    )


@pytest.fixture(scope="module")
def launch(
    module_prefix: str, module_database: str, token: TokenInfo, amqp: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Running]]:
    """``launch({party_id: signer, ...}, disabled=...)``: register the partners with those keys
    (expired ones included: the registry takes what it is given), start ``cdgi run``."""
    started: list[Running] = []
    run_dir = tmp_path_factory.mktemp("run")

    def start(keys: dict[str, SoftwareSigner], *, disabled: tuple[str, ...] = ()) -> Running:
        settings = replace(Settings(), prefix=module_prefix, database_url=module_database,
                           amqp_url=amqp, state_dir=str(run_dir / "state"))
        writer = make_engine(module_database)
        partners = {}
        for party_id, key in keys.items():
            register_partner(writer, party_id, key, enabled=party_id not in disabled)
            partners[party_id] = SimPartner(party_id, key, settings).connect()
            _PARTIES.add(party_id)
        writer.dispose()
        env = {
            **os.environ, **token.env, "CDGI_PREFIX": module_prefix,
            "CDGI_DATABASE_URL": module_database, "CDGI_AMQP_URL": amqp,
            "CDGI_STATE_DIR": settings.state_dir, "CDGI_LOG_FORMAT": "json",
            "CDGI_RELAY_INTERVAL_S": "0.2", "CDGI_HTTP_PORT": "0",
        }
        log_path = run_dir / "daemon.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(DAEMON, env=env, cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT)
        running = Running(proc, settings, partners, log_path,
                          make_engine(module_database, writer=False))
        started.append(running)
        _wait_running(running, Path(settings.state_dir))
        return running

    yield start
    for running in started:
        for partner in running.partners.values():
            partner.close()
        stop(running)
        running.engine.dispose()
        log = running.log_path.read_text(errors="replace")
        assert token.pin not in log, "the PIN reached the log"
        assert "Traceback" not in log, f"the daemon met a defect:\n{log[-4000:]}"


_PARTIES: set[str] = set()  # every partner queue a module made, to delete it after


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The suite's counts (corpus cases, vectors per class) at the end of the run."""
    if REPORT:
        terminalreporter.section("security suite")
        for line in REPORT:
            terminalreporter.write_line(line)
