"""Alerts: what an operator must act on, judged from a snapshot (pure: no I/O).

The daemon evaluates them periodically, logs each as an ``alert`` event, counts them in the
metrics and publishes them to ``<prefix>.alerts``; ``cdgi status`` shows the same list. How to
recover from each kind is in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Alert:
    """One thing to act on."""

    kind: str
    severity: str  # warning or critical
    message: str

    def as_dict(self) -> dict[str, Any]:
        """For JSON output and alert messages."""
        return asdict(self)


def evaluate(
    *,
    counts: dict[str, int] | None,
    card_days: int | None,
    card_error: str | None,
    partner_certs: Iterable[tuple[str, str, int]],
    dead_letters: int | None,
    window_days: int,
) -> list[Alert]:
    """Every alert the snapshot calls for, most severe first."""
    alerts: list[Alert] = []
    if card_error:
        alerts.append(Alert("card_unavailable", "critical", f"the IC card is unavailable: "
                            f"{card_error}"))
    if card_days is not None:
        alerts += _expiry("our card", card_days, window_days)
    for partner, fingerprint, days in partner_certs:
        alerts += _expiry(f"{partner}'s certificate {fingerprint[:16]}", days, window_days)
    if dead_letters:
        alerts.append(Alert("dead_letters", "critical",
                            f"{dead_letters} message(s) in the dead-letter queue"))
    c = counts or {}
    if c.get("unroutable"):
        alerts.append(Alert("unroutable", "critical",
                            f"{c['unroutable']} outbound message(s) no queue took; kept"))
    if c.get("ledger_discrepancies"):
        alerts.append(Alert("ledger_discrepancy", "warning",
                            f"{c['ledger_discrepancies']} ledger line(s) flagged"))
    if c.get("refused_by_partner"):
        alerts.append(Alert("partner_refused", "warning",
                            f"{c['refused_by_partner']} of our message(s) refused by a partner"))
    if c.get("unanswered"):
        alerts.append(Alert("unanswered", "warning",
                            f"{c['unanswered']} of our message(s) have no partner receipt yet"))
    return sorted(alerts, key=lambda a: a.severity != "critical")


def _expiry(what: str, days: int, window: int) -> list[Alert]:
    if days < 0:
        return [Alert("certificate_expired", "critical", f"{what} expired {-days} day(s) ago")]
    if days <= window:
        return [Alert("certificate_expiring", "warning", f"{what} expires in {days} day(s)")]
    return []
