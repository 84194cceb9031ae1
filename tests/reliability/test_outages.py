"""Outages with messages in flight: RabbitMQ stopped and started, PostgreSQL restarted, the
card's token taken away and put back. The daemon pauses, says so in its status file, in
``cdgi status`` and in its log, resumes by itself, and loses and doubles nothing.

Each test leaves the service it disturbed running (``finally``) and waits until it answers.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.reliability.conftest import Stack
from tests.support import require_executable
from tests.support.softhsm import TokenInfo
from tests.support.traffic import BusinessMix, play, settle, verify

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ENTERPRISES = 22  # × 23 = 506 inbound messages per test
OUTAGE_S = 6.0


def _wait(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not answering yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what} did not answer within {timeout}s")


def _rabbit_up(url: str) -> bool:
    pika.BlockingConnection(pika.URLParameters(url)).close()
    return True


def _pg_up() -> bool:
    engine = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as c:
            return c.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


class Outage(threading.Thread):
    """Starts the outage when the traffic reaches a wave, watches the daemon pause (status
    file, ``cdgi status``), then ends the outage."""

    def __init__(self, stack: Stack, proc: Any, *, begin: Callable[[], None],
                 end: Callable[[], None], reason: str, status_key: str) -> None:
        super().__init__(name="outage", daemon=True)
        self.stack, self.proc = stack, proc
        self.begin, self.end, self.reason = begin, end, reason
        self.status_key = status_key
        self.go = threading.Event()
        self.seen: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        fleet = self.stack.fleet
        self.go.wait()
        time.sleep(0.3)  # the wave is on its way: messages in flight
        began = time.monotonic()
        try:
            self.begin()
            try:
                status = fleet.wait_state(self.proc, "paused", timeout=45, detail=self.reason)
                self.seen["paused_after_s"] = round(time.monotonic() - began, 1)
                self.seen["status_file"] = status.get("detail")
                report = fleet.cdgi_status()
                self.seen["cdgi_status"] = {
                    self.status_key: report.get(self.status_key),
                    "daemons": [(d["state"], d.get("detail")) for d in report["daemons"]],
                }
                remaining = OUTAGE_S - (time.monotonic() - began)
                if remaining > 0:
                    time.sleep(remaining)
            finally:
                self.end()
            self.seen["outage_s"] = round(time.monotonic() - began, 1)
            fleet.wait_state(self.proc, "running", timeout=90)
            self.seen["resumed_after_s"] = round(time.monotonic() - began, 1)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def _run_with_outage(stack: Stack, figures: dict[str, Any], outage_at_wave: int,
                     **outage: Any) -> None:
    proc = stack.fleet.start()
    mix = BusinessMix(stack.partners, ENTERPRISES)
    watcher = Outage(stack, proc, **outage)
    watcher.start()

    def on_wave(wave: int) -> None:
        if wave == outage_at_wave:
            watcher.go.set()

    started = time.monotonic()
    try:
        sent = play(mix, stack.partners, stack.engine, on_wave=on_wave, wave_timeout=240)
    finally:
        watcher.go.set()
        watcher.join(timeout=240)
    assert watcher.error is None, f"{watcher.error}"
    settle(stack.partners, stack.engine, sent, timeout=150)
    verdict = verify(sent, stack.partners, stack.engine, stack.settings, mix)
    figures.update(verdict.figures)
    figures.update({k: v for k, v in watcher.seen.items() if k != "cdgi_status"},
                   outages=1, cdgi_status=watcher.seen.get("cdgi_status"),
                   seconds_to_commit_all=round(time.monotonic() - started, 1),
                   partner_republished=stack.partners.republished)
    assert verdict.problems == [], "\n".join(verdict.problems[:40])
    assert verdict.lost == 0 and verdict.doubled == 0
    assert proc.poll() is None, "the daemon must ride through the outage, not exit"
    paused = stack.fleet.log_events("paused")
    assert any(outage["reason"] in (e.get("reason") or "") for e in paused), \
        "the log says why the daemon paused"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_rabbitmq_restart_with_messages_in_flight_pauses_the_daemon_and_loses_nothing(
    stack: Stack, figures: dict[str, Any]
) -> None:
    require_executable("rabbitmqctl")
    url = stack.settings.amqp_url

    def begin() -> None:
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)

    def end() -> None:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
        _wait("RabbitMQ", lambda: _rabbit_up(url))

    try:
        _run_with_outage(stack, figures, 4, begin=begin, end=end, reason="broker unavailable",
                         status_key="broker")
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], timeout=120)
        _wait("RabbitMQ", lambda: _rabbit_up(url))
    assert str(figures["cdgi_status"]["broker"]).startswith("DOWN")
    assert ("paused", ) == tuple(d[0] for d in figures["cdgi_status"]["daemons"])[:1]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgresql_restart_with_messages_in_flight_pauses_the_daemon_and_loses_nothing(
    stack: Stack, figures: dict[str, Any]
) -> None:
    require_executable("pg_ctlcluster")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]

    def begin() -> None:
        subprocess.run([*ctl, "stop", "-m", "fast"], check=True, timeout=120)

    def end() -> None:
        subprocess.run([*ctl, "start"], check=True, timeout=120)
        _wait("PostgreSQL", _pg_up)

    try:
        _run_with_outage(stack, figures, 6, begin=begin, end=end, reason="store",
                         status_key="store")
    finally:
        subprocess.run([*ctl, "start"], timeout=120)
        _wait("PostgreSQL", _pg_up)
    assert str(figures["cdgi_status"]["store"]).startswith("DOWN")
    assert figures["cdgi_status"]["daemons"][0][0] == "paused"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_card_taken_away_and_put_back_pauses_the_daemon_and_loses_nothing(
    stack: Stack, figures: dict[str, Any], token: TokenInfo
) -> None:
    tokens = Path(token.softhsm_dir) / "tokens"
    away = tokens.with_name("tokens.away")

    def begin() -> None:
        os.rename(tokens, away)

    def end() -> None:
        os.rename(away, tokens)

    try:
        _run_with_outage(stack, figures, 8, begin=begin, end=end, reason="card",
                         status_key="card")
    finally:
        if away.exists() and not tokens.exists():
            os.rename(away, tokens)
    assert figures["cdgi_status"]["card"]["state"] == "UNAVAILABLE"
    assert figures["cdgi_status"]["daemons"][0][0] == "paused"
    # The card is back for good: cdgi status opens it again.
    assert stack.fleet.cdgi_status()["card"]["state"] == "present"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_idle_daemon_reports_a_postgresql_outage_and_its_end(stack: Stack) -> None:
    """No message comes, so no batch meets the outage: the daemon's own store work (waiting
    messages, the outbox sweep) does, and the status says paused for the store, then running."""
    require_executable("pg_ctlcluster")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
    proc = stack.fleet.start()
    try:
        subprocess.run([*ctl, "stop", "-m", "fast"], check=True, timeout=120)
        status = stack.fleet.wait_state(proc, "paused", timeout=30, detail="store")
        assert "store" in status["detail"]
    finally:
        subprocess.run([*ctl, "start"], timeout=120)
        _wait("PostgreSQL", _pg_up)
    stack.fleet.wait_state(proc, "running", timeout=30)
    assert proc.poll() is None
    assert any("store" in (e.get("reason") or "") for e in stack.fleet.log_events("paused"))
