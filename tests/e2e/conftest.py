"""End-to-end tests run the daemon through the shared harness."""

from tests.support.harness import card_certificate, daemon, start_daemon, token

__all__ = ["card_certificate", "daemon", "start_daemon", "token"]
