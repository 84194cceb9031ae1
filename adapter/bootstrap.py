"""The composition root: the one place that builds engines, the card, the bus and the pipeline."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from adapter.bus import Bus
from adapter.envelope import contract_zone
from adapter.errors import ConfigurationError
from adapter.expiry import Expiry
from adapter.observe import Metrics
from adapter.pipeline import Pipeline
from adapter.registry import Registry
from adapter.settings import Settings
from card import Pkcs11Signer, Signer
from card.devtoken import use_softhsm_dir
from store import migrate
from store.db import make_engine


def engine_for(settings: Settings, *, writer: bool = True) -> Engine:
    """The store's engine; an SQLite file's folder is created on first use."""
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url, writer=writer)


def open_signer(settings: Settings) -> Pkcs11Signer:
    """The data center's IC card, by token label and key label; the PIN is read, not logged."""
    use_softhsm_dir(Path(settings.softhsm_dir))
    return Pkcs11Signer(
        settings.pkcs11_module,
        settings.token_label,
        settings.key_label,
        settings.read_pin(),
        key_name=settings.effective_key_name,
    )


def require_migrated(engine: Engine) -> None:
    """Refuse to run against a database our migrations have not brought up to date."""
    current, head = migrate.current(engine), migrate.head()
    if current != head:
        raise ConfigurationError(
            f"the database is at revision {current or '(empty)'}, the code needs {head}: "
            "run `cdgi db upgrade` first"
        )


@dataclass
class App:
    """Everything the daemon runs with."""

    settings: Settings
    engine: Engine
    registry: Registry
    signer: Signer
    pipeline: Pipeline
    bus: Bus
    owner: str = field(default="")
    expiry: Expiry | None = None
    metrics: Metrics = field(default_factory=Metrics)


def bootstrap(settings: Settings, *, signer: Signer | None = None) -> App:
    """Wire the daemon from settings (a signer may be handed in, for tests and benches)."""
    engine = engine_for(settings)
    require_migrated(engine)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    registry = Registry(engine_for(settings, writer=False))
    signer = signer or open_signer(settings)
    metrics = Metrics()
    pipeline = Pipeline(settings, registry, signer, owner=owner, metrics=metrics)
    expiry = Expiry(pipeline, today=lambda: business_today(settings))
    return App(settings, engine, registry, signer, pipeline, Bus(settings), owner, expiry,
               metrics)


def business_today(settings: Settings) -> date:
    """Today in the contract's time zone (China time by default)."""
    return datetime.now(contract_zone(settings.timezone_offset)).date()
