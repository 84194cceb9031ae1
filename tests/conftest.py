"""Shared fixtures: real services with names of their own per test, so runs never collide.

On a laptop without RabbitMQ or PostgreSQL the tests that need them skip; in CI (``CI`` set)
they fail instead, so a missing service can never pass for green.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from adapter.settings import Settings

AMQP_URL = os.environ.get("CDGI_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_ADMIN_URL = os.environ.get("CDGI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = os.environ.get("CDGI_TEST_DATABASES", "sqlite postgresql").split()
IN_CI = bool(os.environ.get("CI"))


def unavailable(what: str) -> None:
    """Skip on a laptop, fail in CI."""
    if IN_CI:
        pytest.fail(f"{what} is not available in CI")
    pytest.skip(f"{what} is not available")


def unique(prefix: str = "t") -> str:
    """A name no earlier run used."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    """The URL of a running RabbitMQ."""
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception:
        unavailable(f"RabbitMQ at {AMQP_URL}")
    return AMQP_URL


@pytest.fixture()
def prefix(rabbitmq: str) -> Iterator[str]:
    """A topology prefix of this test's own; its queues and exchanges are deleted after."""
    import pika

    name = unique("cdgi-t-")
    yield name
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    ch = conn.channel()
    for queue in (f"{name}.in.q", f"{name}.dead"):
        ch.queue_delete(queue)
    for exchange in (f"{name}.in", f"{name}.out", f"{name}.dlx"):
        ch.exchange_delete(exchange)
    conn.close()


def _pg_admin():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    # pre_ping: a test may restart PostgreSQL, killing the pooled admin connection.
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cdgi.db'}"
        return
    from sqlalchemy import text

    name = unique("cdgi_t_")
    try:
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture()
def migrated_url(database_url: str) -> str:
    """A database at the newest schema."""
    from store.db import make_engine
    from store.migrate import upgrade

    engine = make_engine(database_url)  # disposed below
    upgrade(engine)
    engine.dispose()
    return database_url


@pytest.fixture()
def base_settings(tmp_path: Path) -> Settings:
    """Settings that touch nothing outside ``tmp_path``."""
    return replace(
        Settings(),
        database_url=f"sqlite:///{tmp_path / 'cdgi.db'}",
        state_dir=str(tmp_path / "run"),
        softhsm_dir=str(tmp_path / "softhsm"),
        retry_initial_s=0.05,
        relay_interval_s=0.2,
    )


@pytest.fixture()
def engines() -> Iterator[object]:
    """``engines(url, writer=True)`` makes an engine that is disposed after the test."""
    from store.db import make_engine

    made = []

    def factory(url: str, *, writer: bool = True):  # type: ignore[no-untyped-def]
        engine = make_engine(url, writer=writer)
        made.append(engine)
        return engine

    yield factory
    for engine in made:
        engine.dispose()
