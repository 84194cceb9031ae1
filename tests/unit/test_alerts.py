"""Which snapshots call for which alerts."""

from __future__ import annotations

from adapter.alerts import evaluate

QUIET = dict(counts={}, card_days=400, card_error=None, partner_certs=[], dead_letters=0,
             window_days=30)


def test_a_healthy_snapshot_raises_no_alert() -> None:
    assert evaluate(**QUIET) == []


def test_certificates_are_warned_within_the_window_and_critical_once_expired() -> None:
    alerts = evaluate(**{**QUIET, "card_days": 30,
                         "partner_certs": [("INS.PICC", "ab" * 32, -2), ("BANK.BOC", "cd" * 32, 31)]})
    assert [(a.kind, a.severity) for a in alerts] == [
        ("certificate_expired", "critical"), ("certificate_expiring", "warning")]
    assert "INS.PICC" in alerts[0].message and "our card" in alerts[1].message


def test_every_kind_of_trouble_has_its_alert_and_critical_ones_come_first() -> None:
    alerts = evaluate(**{**QUIET, "card_error": "token CDGI-DEV not found", "dead_letters": 3,
                         "counts": {"unroutable": 1, "ledger_discrepancies": 2,
                                    "refused_by_partner": 4, "unanswered": 5}})
    kinds = [a.kind for a in alerts]
    assert set(kinds) == {"card_unavailable", "dead_letters", "unroutable", "ledger_discrepancy",
                          "partner_refused", "unanswered"}
    severities = [a.severity for a in alerts]
    assert severities == sorted(severities, key=lambda s: s != "critical")
