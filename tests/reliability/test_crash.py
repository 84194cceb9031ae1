"""Crashes: thousands of business messages while the daemon is SIGKILLed again and again.

Whatever moment a kill lands on (parsing, signing, between commit and ack, between publish
and marking the row sent), every inbound message must end with exactly one effect on the
state and exactly one receipt, and every outbound message must reach its receiver; identical
re-sends (same MessageId, same bytes) are the only duplicates a partner may see.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from sqlalchemy import text

from tests.reliability.conftest import Stack
from tests.support.traffic import BusinessMix, play, settle, verify

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ENTERPRISES = 218  # × 23 inbound messages = 5,014
KILLS = 24


def _inbound_total(engine: Any) -> int:
    try:
        with engine.connect() as c:
            return int(c.execute(text(
                "SELECT count(*) FROM journal WHERE direction = 'IN'")).scalar() or 0)
    except Exception:  # noqa: BLE001
        return 0


class Killer(threading.Thread):
    """Keeps one daemon running and SIGKILLs it each time the store passes a threshold (plus a
    random delay), then starts a new one."""

    def __init__(self, stack: Stack, thresholds: list[int], rng: random.Random) -> None:
        super().__init__(name="killer", daemon=True)
        self.stack, self.thresholds, self.rng = stack, thresholds, rng
        self.done = threading.Event()
        self.kills: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.proc = stack.fleet.start()
        self.since = time.monotonic()

    def run(self) -> None:
        fleet, engine = self.stack.fleet, self.stack.engine
        try:
            while not self.done.is_set() and self.thresholds:
                if _inbound_total(engine) < self.thresholds[0]:
                    time.sleep(0.02)
                    continue
                self.thresholds.pop(0)
                time.sleep(self.rng.uniform(0.0, 0.25))
                at = _inbound_total(engine)
                uptime = time.monotonic() - self.since
                fleet.kill(self.proc)
                self.kills.append({"committed": at, "uptime_s": round(uptime, 2)})
                self.proc = fleet.start()
                self.since = time.monotonic()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_five_thousand_business_messages_through_repeated_sigkills_have_one_effect_each(
    stack: Stack, figures: dict[str, Any]
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    mix = BusinessMix(stack.partners, ENTERPRISES)
    total = len(mix.enterprises) * mix.PER_ENTERPRISE
    assert total >= 5000
    # Kill points spread over the run, each jittered: kills land at random moments of work.
    step = (total * 0.9 - 150) / KILLS
    thresholds = sorted(int(150 + i * step + rng.uniform(0, step * 0.8)) for i in range(KILLS))
    killer = Killer(stack, thresholds, rng)
    killer.start()
    started = time.monotonic()
    try:
        sent = play(mix, stack.partners, stack.engine, duplicate_every=97, wave_timeout=240)
    finally:
        killer.done.set()
        killer.join(timeout=120)
    processing = time.monotonic() - started
    assert killer.error is None, f"the killer failed: {killer.error!r}"
    settle(stack.partners, stack.engine, sent, timeout=150)
    verdict = verify(sent, stack.partners, stack.engine, stack.settings, mix)
    figures.update(verdict.figures)
    figures.update(
        seed=seed,
        database="postgresql",
        kills=len(killer.kills),
        kills_with_work_in_flight=sum(1 for k in killer.kills if k["committed"] < total),
        daemon_starts=stack.fleet.started,
        partner_resends=stack.partners.published - len(sent),
        seconds_to_commit_all=round(processing, 1),
        kill_points=[k["committed"] for k in killer.kills],
    )
    assert len(killer.kills) >= 20, f"only {len(killer.kills)} kills landed"
    assert verdict.problems == [], "\n".join(verdict.problems[:40])
    assert verdict.lost == 0 and verdict.doubled == 0
    assert stack.fleet.stop_all() == [0], "the last daemon did not stop cleanly on SIGTERM"
