"""Reliability suite: daemons killed, broker and store restarted, the card pulled, several
daemons at once; real RabbitMQ, PostgreSQL and a SoftHSM2 token throughout.

Every test records its figures (messages, kills, outages, lost, doubled, seconds) with
``figures``: they go into the JUnit properties, into ``var/reliability/<test>.json`` and
``var/reliability/last-run.json``, and into the terminal summary, so that
``docs/reliability.md`` can be updated from a real run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from adapter.settings import Settings
from tests.support.harness import ROOT, card_certificate, token
from tests.support.softhsm import TokenInfo
from tests.support.traffic import Fleet, Partners, daemon_env

__all__ = ["card_certificate", "token"]

FIGURES_DIR = ROOT / "var" / "reliability"
_RUN: dict[str, dict[str, Any]] = {}


@pytest.fixture()
def figures(request: pytest.FixtureRequest,
            record_property: Any) -> Iterator[dict[str, Any]]:
    """A dict the test fills with its figures; written out whatever the outcome."""
    found: dict[str, Any] = {}
    started = time.monotonic()
    yield found
    found["seconds"] = round(time.monotonic() - started, 1)
    name = request.node.name
    for key, value in found.items():
        record_property(key, value)
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(found, indent=2, default=str) + "\n",
                                              encoding="utf-8")
    _RUN[name] = found
    last = FIGURES_DIR / "last-run.json"
    try:
        merged = json.loads(last.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        merged = {}
    merged[name] = {**found, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    last.write_text(json.dumps(merged, indent=2, sort_keys=True, default=str) + "\n",
                    encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of this run's reliability tests, one line each."""
    if not _RUN:
        return
    terminalreporter.section("reliability figures")
    for name, found in _RUN.items():
        shown = ", ".join(f"{k}={v}" for k, v in found.items() if not isinstance(v, dict | list))
        terminalreporter.write_line(f"{name}: {shown}")
    terminalreporter.write_line(f"(written to {FIGURES_DIR.relative_to(ROOT)}/)")


@dataclass
class Stack:
    """One test's world: settings, a writer engine, partners and a fleet of daemons."""

    settings: Settings
    engine: Any
    partners: Partners
    fleet: Fleet


@pytest.fixture()
def stack(prefix: str, migrated_url: str, token: TokenInfo, tmp_path: Path, rabbitmq: str,
          engines: Any, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Partners registered and listening; no daemon started yet (``stack.fleet.start()``;
    a test may change ``stack.fleet.env`` first)."""
    state_dir = tmp_path / "run"
    settings = replace(Settings(), prefix=prefix, database_url=migrated_url, amqp_url=rabbitmq,
                       state_dir=str(state_dir))
    engine = engines(migrated_url)
    partners = Partners(settings, engine)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = daemon_env(token.env, prefix=prefix, database_url=migrated_url, amqp_url=rabbitmq,
                     state_dir=state_dir)
    fleet = Fleet(env, state_dir, logs, token.pin)
    try:
        yield Stack(settings, engine, partners, fleet)
    finally:
        try:
            fleet.stop_all()
        finally:
            partners.close()
        fleet.check_logs()
