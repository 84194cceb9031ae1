"""What a test's engine sends to the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event


def selects(engine: Any) -> list[str]:
    """A list that every SELECT the engine executes from now on is appended to."""
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement)
                 if statement.startswith("SELECT") else None)
    return seen


def executed(engine: Any) -> list[tuple[str, Any]]:
    """A list that every statement the engine executes from now on, with its parameters as the
    driver got them, is appended to (to run EXPLAIN on exactly what the code sent)."""
    seen: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, parameters, *_a: seen.append((statement, parameters)))
    return seen
