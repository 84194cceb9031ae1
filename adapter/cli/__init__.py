"""The ``cdgi`` command (placeholder until the CLI lands)."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``cdgi`` console script."""
    raise SystemExit("not yet")
