"""What the security suite's modules and its conftest share (conftest itself is not imported
by name: pytest loads it as a plugin of its own)."""

from __future__ import annotations

import signal

from tests.support.harness import Running

REPORT: list[str] = []
"""Lines for the end of the run: the counts a reader wants (vectors per class, cases)."""


def stop(running: Running) -> int | None:
    """SIGTERM and wait; the exit code (None if it had already gone)."""
    if running.proc.poll() is None:
        running.proc.send_signal(signal.SIGTERM)
        return running.proc.wait(timeout=30)
    return None
