"""Engines, the unit of work, and the translation of database errors into ours.

Engines are made by the composition root (never at import). SQLite runs in WAL mode with a
busy timeout and ``BEGIN IMMEDIATE`` for writers, so that a writer never has to upgrade a
read lock (which SQLite cannot wait for); readers (``cdgi log``) use deferred transactions
and do not block the daemon.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session

from adapter.errors import ConfigurationError, StoreUnavailable


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite hands them back naive)."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names an SQLite database."""
    return url.startswith("sqlite")


def make_engine(url: str, *, writer: bool = True, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate write locks."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if is_sqlite(url):
            engine = create_engine(
                url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}
            )
            _sqlite_pragmas(engine, immediate=writer)
        else:
            # Many rows go in as the driver's executemany (psycopg pipelines it: one round
            # trip, one statement parsed once), not as one INSERT with a VALUES list a row,
            # whose text psycopg parses afresh each batch: every size of it is a new query.
            engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5,
                                   use_insertmanyvalues=False)
    except (ImportError, ValueError, SQLAlchemyError) as e:
        raise ConfigurationError(
            f"cannot use the database URL (CDGI_DATABASE_URL): {e}; "
            "expected sqlite:///path.db or postgresql://user@host/db"
        ) from None
    return engine


def _sqlite_pragmas(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (savepoints work).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def translate(e: BaseException) -> BaseException:
    """A database error as ours: connection and lock trouble is transient."""
    if is_conflict(e):
        return e
    if isinstance(e, OperationalError | DBAPIError) and not isinstance(e, IntegrityError):
        detail = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e) else type(e).__name__
        err = StoreUnavailable(f"store unavailable: {detail}")
        err.__cause__ = e
        return err
    return e


P = ParamSpec("P")
R = TypeVar("R")


def translating(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a store function so that database failures leave it as StoreUnavailable."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError as e:
            translated = translate(e)
            if translated is e:
                raise
            raise translated from e

    return wrapper


_RACES = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock detected, serialization failure


def is_conflict(e: BaseException) -> bool:
    """Whether ``e`` is a race with another process: it wrote the same row first (a unique
    constraint), or the two waited on each other's locks (a deadlock PostgreSQL broke).
    Doing the work again resolves it."""
    if isinstance(e, IntegrityError):
        return True
    return isinstance(e, DBAPIError) and getattr(
        getattr(e, "orig", None), "sqlstate", None) in _RACES


def as_store_error(e: BaseException) -> StoreUnavailable | None:
    """``e`` as StoreUnavailable when it is a database failure, else None."""
    if isinstance(e, SQLAlchemyError) and not is_conflict(e):
        translated = translate(e)
        return (
            translated
            if isinstance(translated, StoreUnavailable)
            else StoreUnavailable(f"store error: {type(e).__name__}")
        )
    return None


class UnitOfWork:
    """A session that rolls back unless ``commit()`` is called; errors come out as ours."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = Session(self.engine, expire_on_commit=False)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            self.session.rollback()
        except SQLAlchemyError:
            pass  # the connection is already gone; closing below releases it
        finally:
            self.session.close()
        if exc is not None and isinstance(exc, SQLAlchemyError):
            translated = translate(exc)
            if translated is not exc:
                raise translated from exc

    def commit(self) -> None:
        """Make everything done in this unit durable."""
        try:
            self.session.commit()
        except SQLAlchemyError as e:
            translated = translate(e)
            if translated is e:
                raise
            raise translated from e

