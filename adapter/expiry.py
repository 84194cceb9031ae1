"""Time: the daemon notices by itself when a quota or a policy passes its end date.

APPROVED quotas past ValidTo and RECORDED policies past TermEnd become EXPIRED, and the portal
gets a CDGI505 for each. The transition is a conditional UPDATE, so that with several
processes exactly one of them moves a row and sends its notice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import structlog

from adapter import documents
from adapter.handlers import Outgoing
from adapter.pipeline import Pipeline
from store import repo as store_repo
from store.db import UnitOfWork
from store.models import Policy, Quota

log = structlog.get_logger("cdgi.expiry")


class Expiry:
    """Finds what has expired and tells the portal; ``today`` is injectable for tests."""

    def __init__(self, pipeline: Pipeline, *, today: Callable[[], date]) -> None:
        self.pipeline = pipeline
        self.today = today

    def sweep(self, engine: Any) -> list[int]:
        """Expire what is due; returns the outbox ids of the notices to publish."""
        today = self.today()
        quotas, policies = store_repo.expiry_candidates(engine, today)
        ids: list[int] = []
        for quota_no in quotas:
            ids += self._expire(engine, Quota, Quota.quota_no, quota_no, "APPROVED", "QUOTA")
        for apply_no in policies:
            ids += self._expire(engine, Policy, Policy.apply_no, apply_no, "RECORDED", "POLICY")
        return ids

    def _expire(self, engine: Any, model: Any, column: Any, key: str, expected: str,
                subject: str) -> list[int]:
        now: datetime = self.pipeline.clock()
        with UnitOfWork(engine) as uow:
            repo = store_repo.Repo(uow.session)
            if not repo.transition(model, column, key, expected, "EXPIRED", now):
                return []  # another process got there first
            row = repo.get(model, key)
            assert row is not None
            subject_no = getattr(row, "policy_no", None) or key
            end = getattr(row, "valid_to", None) or getattr(row, "term_end", None)
            reason = f"ended {end}"
            repo.progress(row.uscc, subject, subject_no, "EXPIRED", reason, None, now)
            notice = documents.status_notice(uscc=row.uscc, subject=subject,
                                             subject_no=subject_no, status="EXPIRED",
                                             reason=reason, time=now)
            outbox = self.pipeline.send(repo, Outgoing("PORTAL", "CDGI505", notice, row.uscc))
            repo.flush()
            uow.commit()
        log.info("expired", subject=subject, number=subject_no, uscc=row.uscc)
        assert outbox.id is not None
        return [outbox.id]
