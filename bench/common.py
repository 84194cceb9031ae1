"""What every bench program shares: names of its own, a token, a store, the daemon, the bus.

Nothing here is a test. Everything made has a name of its own (broker prefix, database,
token directory) and is removed by the ``Run`` that made it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapter.registry import fingerprint, kind_of  # noqa: E402
from adapter.settings import Settings  # noqa: E402
from card import SoftwareSigner  # noqa: E402
from store.db import make_engine, utcnow  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Partner, PartnerCert  # noqa: E402
from store.repo import save_partner  # noqa: E402

AMQP = os.environ.get("CDGI_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgresql://postgres@127.0.0.1:5432/"

_ORI = re.compile(rb"OriMessageId>([0-9A-F-]{36})<")
_CODE = re.compile(rb"ReturnCode>([0-9]{4})<")
_TYPE = re.compile(rb"MessageType>(CDGI[0-9]{3})<")


def command_line() -> str:
    """The command that reproduces this run."""
    return "cd " + str(ROOT) + " && python " + " ".join(
        [str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]])


# -- stores --------------------------------------------------------------------------------
def create_database(kind: str, tmp: Path, name: str | None = None) -> tuple[str, str | None]:
    """A fresh, migrated database URL (and, for PostgreSQL, its name to drop afterwards)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / ((name or 'bench-' + uuid.uuid4().hex[:6]) + '.db')}"
        dbname = None
    else:
        from sqlalchemy import create_engine, text

        dbname = name or f"cdgi_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{dbname}"'))
        admin.dispose()
        url = PG_BASE + dbname
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url, dbname


def drop_database(name: str | None) -> None:
    """Drop a PostgreSQL database this bench made."""
    if name is None:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def register_partners(url: str, partners: dict[str, SoftwareSigner]) -> None:
    """Register the simulated partners and their certificates straight in the store."""
    engine = make_engine(url)
    now = utcnow()
    for party_id, signer in partners.items():
        cert = signer.certificate
        save_partner(
            engine,
            Partner(id=party_id, name=party_id, kind=kind_of(party_id) or "PORTAL",
                    created_at=now, updated_at=now),
            PartnerCert(partner_id=party_id, fingerprint=fingerprint(cert),
                        subject=cert.subject.rfc4514_string(), pem=signer.cert_pem().decode(),
                        not_before=cert.not_valid_before_utc,
                        not_after=cert.not_valid_after_utc, added_at=now),
        )
    engine.dispose()


# -- the broker ----------------------------------------------------------------------------
def settings_for(prefix: str, url: str) -> Settings:
    return replace(Settings(), prefix=prefix, database_url=url, amqp_url=AMQP)


def declare(prefix: str, parties: Iterable[str]) -> None:
    """Exchanges and each partner's queue (the daemon declares the inbound queue itself)."""
    s = settings_for(prefix, "sqlite://")
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    ch.exchange_declare(s.exchange_in, "topic", durable=True)
    ch.exchange_declare(s.exchange_out, "topic", durable=True)
    for party in parties:
        q = f"{prefix}.partner.{party}"
        ch.queue_declare(q, durable=True)
        ch.queue_bind(q, s.exchange_out, routing_key=party)
    conn.close()


def remove_broker_names(prefix: str, parties: Iterable[str]) -> None:
    """Delete every queue and exchange under ``prefix`` (waiting out a broker restart)."""
    for _ in range(60):
        try:
            _remove(prefix, list(parties))
            return
        except (pika.exceptions.AMQPError, OSError):
            time.sleep(1.0)


def _remove(prefix: str, parties: list[str]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    for q in [f"{prefix}.in.q", f"{prefix}.dead", *(f"{prefix}.partner.{p}" for p in parties)]:
        ch.queue_delete(q)
    for x in ("in", "out", "dlx", "alerts"):
        ch.exchange_delete(f"{prefix}.{x}")
    conn.close()


def queue_depth(prefix: str) -> tuple[int, int]:
    """(ready, unacked) of ``<prefix>.in.q`` from the management-free CLI, else (ready, -1)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages_ready",
         "messages_unacknowledged"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == f"{prefix}.in.q" and len(parts) == 3:
            return int(parts[1]), int(parts[2])
    return -1, -1


class Publisher:
    """Publishes pre-built bodies under each sender's routing key (one connection)."""

    def __init__(self, prefix: str, *, confirm: bool = False) -> None:
        self.exchange = f"{prefix}.in"
        self.confirm = confirm
        self.restarts = 0
        self.conn = pika.BlockingConnection(pika.URLParameters(AMQP))
        self.ch = self.conn.channel()
        if confirm:
            self.ch.confirm_delivery()
        self.props = pika.BasicProperties(delivery_mode=2, content_type="application/xml")

    def send(self, sender: str, body: bytes) -> None:
        for attempt in range(120):
            try:
                self.ch.basic_publish(self.exchange, sender, body, properties=self.props)
                return
            except (pika.exceptions.AMQPError, OSError):
                # A broker restart: reconnect and publish again (a message that did reach
                # the queue comes twice and is answered as a duplicate).
                self.restarts += 1
                time.sleep(1.0)
                self._reconnect()
        raise RuntimeError("the broker stayed away for two minutes")

    def _reconnect(self) -> None:
        try:
            self.conn = pika.BlockingConnection(pika.URLParameters(AMQP))
            self.ch = self.conn.channel()
            if self.confirm:
                self.ch.confirm_delivery()
        except (pika.exceptions.AMQPError, OSError):
            pass

    def pump(self) -> None:
        try:
            self.conn.process_data_events(time_limit=0)
        except (pika.exceptions.AMQPError, OSError):
            self.restarts += 1
            self._reconnect()

    def close(self) -> None:
        try:
            if self.conn.is_open:
                self.conn.close()
        except (pika.exceptions.AMQPError, OSError):
            pass


@dataclass
class Collector:
    """Reads every partner queue in a thread of its own; times receipts by OriMessageId."""

    prefix: str
    parties: Sequence[str]
    receipts: dict[str, tuple[float, str]] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    total: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Collector:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    restarts: int = 0

    def _run(self) -> None:
        # The broker may restart under us (other suites on this machine stop it): what the
        # partner queues hold is durable, so reconnect and read on.
        while not self._stop.is_set():
            try:
                self._consume()
            except (pika.exceptions.AMQPError, OSError):
                self.restarts += 1
                time.sleep(1.0)

    def _consume(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=500)

        def on(channel: Any, method: Any, _props: Any, body: bytes) -> None:
            now = time.perf_counter()
            self.total += 1
            t = _TYPE.search(body)
            kind = t.group(1).decode() if t else "?"
            self.by_type[kind] = self.by_type.get(kind, 0) + 1
            if kind == "CDGI900":
                ori, code = _ORI.search(body), _CODE.search(body)
                if ori:
                    self.receipts[ori.group(1).decode()] = (
                        now, code.group(1).decode() if code else "????")
            if method.delivery_tag % 100 == 0:
                channel.basic_ack(method.delivery_tag, multiple=True)

        for party in self.parties:
            ch.basic_consume(f"{self.prefix}.partner.{party}", on)
        self._ready.set()
        while not self._stop.is_set():
            conn.process_data_events(time_limit=0.05)
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing at the end of a bench
            pass

    def wait_for(self, ids: Iterable[str], timeout: float, *, progress: bool = False) -> bool:
        """Wait until a receipt for every id arrived; False on timeout."""
        wanted = list(ids)
        deadline = time.monotonic() + timeout
        last_report = time.monotonic()
        while time.monotonic() < deadline:
            missing = sum(1 for i in wanted if i not in self.receipts)
            if missing == 0:
                return True
            if progress and time.monotonic() - last_report > 10:
                print(f"    ... {len(wanted) - missing}/{len(wanted)} receipted", flush=True)
                last_report = time.monotonic()
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


# -- the daemon ----------------------------------------------------------------------------
@dataclass
class DaemonProc:
    """One ``cdgi run`` subprocess."""

    proc: subprocess.Popen[bytes]
    log_path: Path


def start_daemons(count: int, *, prefix: str, url: str, token_env: dict[str, str], tmp: Path,
                  runner: list[str] | None = None, extra_env: dict[str, str] | None = None,
                  log_level: str = "WARNING") -> list[DaemonProc]:
    """Start ``count`` daemons on one store and prefix; returns when each reported running."""
    state = tmp / f"run-{prefix}"
    env = {**os.environ, **token_env, "CDGI_PREFIX": prefix, "CDGI_DATABASE_URL": url,
           "CDGI_AMQP_URL": AMQP, "CDGI_STATE_DIR": str(state), "CDGI_LOG_LEVEL": log_level,
           "CDGI_LOG_FORMAT": "json", "CDGI_HTTP_PORT": "0", **(extra_env or {})}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    procs = []
    for i in range(count):
        log_path = tmp / f"daemon-{prefix}-{i}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(runner or [sys.executable, "-m", "adapter", "run"],
                                    env=env, cwd=ROOT, stdout=log, stderr=log)
        procs.append(DaemonProc(proc, log_path))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = 0
        for f in state.glob(f"{prefix}-*.json"):
            try:
                running += '"running"' in f.read_text()
            except OSError:
                pass
        if running >= count:
            return procs
        if any(p.proc.poll() is not None for p in procs):
            break
        time.sleep(0.1)
    stop_daemons(procs)
    raise RuntimeError("the daemon did not start: " + " | ".join(
        p.log_path.read_text(errors="replace")[-2000:] for p in procs))


def stop_daemons(procs: Sequence[DaemonProc]) -> list[int | None]:
    """SIGTERM each daemon and wait; their exit codes."""
    for p in procs:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.proc.wait(timeout=60))
        except subprocess.TimeoutExpired:
            p.proc.kill()
            codes.append(p.proc.wait())
    return codes


def rss_kib(pid: int) -> int | None:
    """Resident memory of a process (VmRSS, KiB)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "short"


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far: the whole machine's (busy and all), and by part (``cpu_parts``)."""

    busy_s: float
    total_s: float
    parts: dict[str, float]


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(stat_path: str) -> tuple[str, float] | None:
    try:
        text = Path(stat_path).read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return text[text.index("(") + 1:text.rindex(")")], (int(fields[11]) + int(fields[12])) / _TICK


def cpu_snapshot(daemon_pids: Sequence[int]) -> CpuSnapshot:
    """Where the machine's CPU went so far: the daemons' main threads and their other threads
    (the card's, the broker connection's), the broker, the database server, this program
    (the simulated partners) and the rest."""
    parts: dict[str, float] = {}

    def add(part: str, seconds: float) -> None:
        parts[part] = parts.get(part, 0.0) + seconds

    for pid in daemon_pids:
        for tid in os.listdir(f"/proc/{pid}/task") if Path(f"/proc/{pid}").exists() else ():
            found = _cpu_of(f"/proc/{pid}/task/{tid}/stat")
            if found is not None:
                add("daemon main thread" if int(tid) == pid else "daemon other threads",
                    found[1])
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in daemon_pids:
            continue
        found = _cpu_of(f"/proc/{entry}/stat")
        if found is None:
            continue
        name, seconds = found
        if int(entry) == os.getpid():
            add("partners (this program)", seconds)
        elif name.startswith("beam") or name in ("epmd", "erl_child_setup"):
            add("broker", seconds)
        elif name.startswith("postgres") or name == "postmaster":
            add("database server", seconds)
        else:
            add("the rest", seconds)
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return CpuSnapshot((sum(values) - idle) / _TICK, sum(values) / _TICK, parts)


def cpu_lines(first: CpuSnapshot, last: CpuSnapshot, messages: int) -> list[str]:
    """CPU milliseconds a message by part between two snapshots, and how busy the machine
    was (processes that started or ended between them count from zero)."""
    total = last.total_s - first.total_s
    if messages <= 0 or total <= 0:
        return []
    busy = (last.busy_s - first.busy_s) / total
    wall = total / (os.cpu_count() or 1)
    lines = [f"machine busy {busy:.0%} of {os.cpu_count()} cores; CPU per message:"]
    for part in sorted(last.parts, key=lambda k: -(last.parts[k] - first.parts.get(k, 0.0))):
        used = last.parts[part] - first.parts.get(part, 0.0)
        if used > 0:
            lines.append(f"  {part:<26} {used / messages * 1000:6.2f} ms   "
                         f"({used / wall:.0%} of a core)")
    return lines
