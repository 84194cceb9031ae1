"""The daemon's metrics: names, labels and values as a scraper sees them."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from adapter.observe import Health, Metrics


def samples(metrics: Metrics) -> list[Sample]:
    """Every sample of the exposition, parsed back as Prometheus would."""
    text = metrics.exposition().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The value of the one sample with this name and exactly these labels, if any."""
    found = [s.value for s in samples(metrics) if s.name == name and s.labels == labels]
    assert len(found) <= 1
    return found[0] if found else None


def test_counters_appear_with_their_names_and_labels_after_use() -> None:
    m = Metrics()
    m.messages_in.labels(type="CDGI101", partner="BANK1", outcome="PROCESSED").inc()
    m.messages_in.labels(type="CDGI101", partner="BANK1", outcome="PROCESSED").inc()
    m.receipts.labels(code="R0000").inc()
    m.messages_out.labels(type="CDGI505", partner="PORTAL", outcome="SENT").inc()
    m.retries.labels(reason="broker").inc(3)
    m.sign_failures.inc()
    m.discrepancies.labels(code="L01").inc()
    m.alerts.labels(kind="cert_expiry").inc()

    assert (
        value(m, "cdgi_messages_in_total", type="CDGI101", partner="BANK1", outcome="PROCESSED")
        == 2
    )
    assert value(m, "cdgi_receipts_total", code="R0000") == 1
    assert (
        value(m, "cdgi_messages_out_total", type="CDGI505", partner="PORTAL", outcome="SENT") == 1
    )
    assert value(m, "cdgi_retries_total", reason="broker") == 3
    assert value(m, "cdgi_card_sign_failures_total") == 1
    assert value(m, "cdgi_ledger_discrepancies_total", code="L01") == 1
    assert value(m, "cdgi_alerts_total", kind="cert_expiry") == 1


def test_histograms_and_gauges_appear_with_their_names_and_labels_after_use() -> None:
    m = Metrics()
    m.sign_seconds.observe(0.03)
    m.outbox_backlog.labels(state="PENDING").set(4)
    m.outbox_oldest_age.set(12.5)
    m.cert_days.labels(owner="DC", fingerprint="ab12").set(300)

    assert value(m, "cdgi_card_sign_seconds_count") == 1
    assert value(m, "cdgi_card_sign_seconds_sum") == pytest.approx(0.03)
    assert value(m, "cdgi_outbox_backlog", state="PENDING") == 4
    assert value(m, "cdgi_outbox_oldest_pending_age_seconds") == 12.5
    assert value(m, "cdgi_certificate_days_to_expiry", owner="DC", fingerprint="ab12") == 300


def test_every_metric_is_documented_and_prefixed() -> None:
    text = Metrics().exposition().decode()
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("cdgi_")
        assert family.documentation


def test_stage_buckets_reach_from_a_tenth_of_a_millisecond_to_five_seconds() -> None:
    m = Metrics()
    with m.stage("parse"):
        pass
    bounds = {
        float(s.labels["le"])
        for s in samples(m)
        if s.name == "cdgi_stage_seconds_bucket" and s.labels["stage"] == "parse"
    }
    assert min(bounds) == 0.0001
    assert max(b for b in bounds if b != float("inf")) == 5.0


def test_stage_observes_the_duration_of_the_block() -> None:
    m = Metrics()
    with m.stage("verify"):
        pass
    with m.stage("verify"):
        pass
    assert value(m, "cdgi_stage_seconds_count", stage="verify") == 2
    assert value(m, "cdgi_stage_seconds_sum", stage="verify") >= 0  # type: ignore[operator]


def test_stage_observes_a_duration_even_when_the_block_raises() -> None:
    m = Metrics()
    with pytest.raises(ValueError, match="broken"), m.stage("schema"):
        raise ValueError("broken")
    assert value(m, "cdgi_stage_seconds_count", stage="schema") == 1


def test_set_state_leaves_exactly_one_state_at_one() -> None:
    m = Metrics()
    m.set_state("starting")
    m.set_state("running")
    m.set_state("paused")
    m.set_state("running")
    states = {s.labels["state"]: s.value for s in samples(m) if s.name == "cdgi_daemon_state"}
    assert states == {"starting": 0, "running": 1, "paused": 0}


def test_a_rotated_certificate_stops_reporting_its_old_fingerprint() -> None:
    m = Metrics()
    m.set_certificate("BANK1", "old", 3)
    m.set_certificate("DC", "ours", 400)
    m.set_certificate("BANK1", "new", 700)
    certs = {
        (s.labels["owner"], s.labels["fingerprint"]): s.value
        for s in samples(m)
        if s.name == "cdgi_certificate_days_to_expiry"
    }
    assert certs == {("BANK1", "new"): 700, ("DC", "ours"): 400}


def test_separate_metrics_instances_do_not_share_values() -> None:
    a, b = Metrics(), Metrics()
    a.receipts.labels(code="R0000").inc()
    a.set_state("running")
    assert value(a, "cdgi_receipts_total", code="R0000") == 1
    assert value(b, "cdgi_receipts_total", code="R0000") is None
    assert value(b, "cdgi_daemon_state", state="running") is None
    assert a.registry is not b.registry


def test_health_is_ready_only_when_broker_store_and_card_are_up_and_running() -> None:
    up = {"broker": "up", "store": "up", "card": "present", "state": "running"}
    assert Health.judge(live=True, checks=up).ready
    assert not Health.judge(live=False, checks=up).ready
    for key, bad in [
        ("broker", "down"),
        ("store", "down"),
        ("card", "absent"),
        ("state", "paused"),
    ]:
        assert not Health.judge(live=True, checks={**up, key: bad}).ready
    assert not Health.judge(live=True, checks={"broker": "up"}).ready
