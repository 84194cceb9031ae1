"""The daemon harness: the daemon as a subprocess with its own card, store and prefix, and
simulated partners over the real bus. Suites load it with ``pytest_plugins`` in their conftest
(end-to-end, reliability, security)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from adapter.registry import fingerprint, kind_of
from adapter.settings import Settings
from adapter.sim import SimPartner
from card import SoftwareSigner
from store.db import utcnow
from store.models import Partner, PartnerCert
from store.repo import JournalFilter, find_journal, save_partner
from tests.support.softhsm import TokenInfo, make_token, require_softhsm

ROOT = Path(__file__).resolve().parents[2]
DAEMON = [sys.executable, "-m", "adapter", "run"]


@dataclass
class Running:
    """A daemon under test and the partners that talk to it."""

    proc: subprocess.Popen[bytes]
    settings: Settings
    partners: dict[str, SimPartner]
    log_path: Path
    engine: Any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def portal(self) -> SimPartner:
        return self.partners["PORTAL"]

    @property
    def customs(self) -> SimPartner:
        return self.partners["CUS.0800"]

    def journal(self, **kw: object) -> list:  # type: ignore[type-arg]
        return find_journal(self.engine, JournalFilter(limit=2000, **kw))  # type: ignore[arg-type]

    def alive(self) -> bool:
        return self.proc.poll() is None


def register(engine: Any, party_id: str, signer: SoftwareSigner, name: str | None = None,
             dialect: str = "canonical") -> None:
    """Register a partner and its certificate straight in the store."""
    now = utcnow()
    cert = signer.certificate
    save_partner(
        engine,
        Partner(id=party_id, name=name or party_id, kind=kind_of(party_id) or "PORTAL",
                dialect=dialect,
                created_at=now, updated_at=now),
        PartnerCert(partner_id=party_id, fingerprint=fingerprint(cert),
                    subject=cert.subject.rfc4514_string(), pem=signer.cert_pem().decode(),
                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                    added_at=now),
    )


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> TokenInfo:
    require_softhsm()
    # A PIN no log line could contain by chance, so that finding it means it leaked.
    return make_token(
        tmp_path_factory.mktemp("card"),
        token_label="CDGI-E2E",
        key_label="dc-e2e",
        pin="pin-" + secrets.token_hex(8),
    )


@pytest.fixture(scope="module")
def card_certificate(token: TokenInfo) -> x509.Certificate:
    """The adapter card's certificate, read from the token by a process of its own."""
    code = (
        "import sys; from card import Pkcs11Signer; "
        "from cryptography.hazmat.primitives.serialization import Encoding; "
        "s = Pkcs11Signer(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]); "
        "sys.stdout.write(s.certificate.public_bytes(Encoding.PEM).decode()); s.close()"
    )
    pem = subprocess.run(
        [sys.executable, "-c", code, token.module, token.token_label, token.key_label, token.pin],
        env={**os.environ, **token.env},
        capture_output=True,
        check=True,
    ).stdout
    return x509.load_pem_x509_certificate(pem)


@pytest.fixture()
def start_daemon(
    prefix: str, migrated_url: str, token: TokenInfo, tmp_path: Path, rabbitmq: str, engines: Any
) -> Iterator[Callable[..., Running]]:
    """``start_daemon({"PORTAL": "name", ...})``: register partners, start ``cdgi run``."""
    started: list[Running] = []

    def start(names: dict[str, str], extra_env: dict[str, str] | None = None,
              dialects: dict[str, str] | None = None) -> Running:
        settings = replace(Settings(), prefix=prefix, database_url=migrated_url,
                           amqp_url=rabbitmq, state_dir=str(tmp_path / "run"))
        writer = engines(migrated_url)
        partners = {}
        for party_id, name in names.items():
            key = SoftwareSigner.generate(f"{party_id} test", key_name=party_id)
            dialect = (dialects or {}).get(party_id, "canonical")
            register(writer, party_id, key, name, dialect)
            partners[party_id] = SimPartner(party_id, key, settings, dialect).connect()
        env = {
            **os.environ, **token.env, "CDGI_PREFIX": prefix, "CDGI_DATABASE_URL": migrated_url,
            "CDGI_AMQP_URL": rabbitmq, "CDGI_STATE_DIR": str(tmp_path / "run"),
            "CDGI_LOG_FORMAT": "json", "CDGI_RELAY_INTERVAL_S": "0.2", "CDGI_HTTP_PORT": "0",
            "CDGI_ORDER_GRACE_S": "3",
            **(extra_env or {}),
        }
        log_path = tmp_path / "daemon.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(DAEMON, env=env, cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
        running = Running(proc, settings, partners, log_path,
                          engines(migrated_url, writer=False))
        started.append(running)
        _wait_running(running, tmp_path / "run")
        return running

    yield start
    for running in started:
        for partner in running.partners.values():
            partner.close()
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            running.proc.wait(timeout=30)
        log = running.log_path.read_text(errors="replace")
        assert token.pin not in log, "the PIN reached the log"
        assert "Traceback" not in log, f"the daemon met a defect:\n{log[-4000:]}"


@pytest.fixture()
def daemon(start_daemon: Callable[..., Running]) -> Running:
    """A daemon with a portal and a customs office."""
    return start_daemon({"PORTAL": "portal", "CUS.0800": "Shenyang Customs"})


def _wait_running(r: Running, state_dir: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if r.proc.poll() is not None:
            pytest.fail(f"daemon exited with {r.proc.returncode}:\n{r.log_path.read_text()}")
        for path in state_dir.glob("*.json"):
            if '"running"' in path.read_text():
                return
        time.sleep(0.1)
    pytest.fail(f"daemon did not start:\n{r.log_path.read_text()}")


