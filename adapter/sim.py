"""Simulated partners over the real bus: for the demo, the end-to-end tests and the benches.

A ``SimPartner`` is what a portal, bank, insurer or customs office does on its side: it signs
envelopes with its own (software) key, publishes them to ``<prefix>.in`` under its party id,
and reads what the adapter sends it from its own queue bound on ``<prefix>.out``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pika
from cryptography.hazmat.primitives import serialization
from lxml import etree

import mappings
from adapter import documents
from adapter.envelope import (
    build_envelope,
    business_element,
    contract_time,
    read_head,
    serialize,
)
from adapter.envelope import field as text
from adapter.settings import Settings
from card import SoftwareSigner, sign_document, sign_envelope


def partner_message_id() -> str:
    """A MessageId as a partner may make it: an upper-case random (version 4) UUID.

    The adapter's own ids are time-ordered (``adapter.envelope.new_message_id``); a partner's
    need not be, and the simulated partners' are not, so that tests and benches see the
    store's harder case: each inbound id indexed at a random place.
    """
    return str(uuid.uuid4()).upper()


@dataclass
class Received:
    """A message the adapter sent to a simulated partner."""

    message_id: str | None
    message_type: str | None
    correlation_id: str | None
    body: bytes
    root: etree._Element

    def field(self, name: str) -> str | None:
        """A field of the business element."""
        el = business_element(self.root)
        return text(el, name) if el is not None else None


@dataclass
class SimPartner:
    """One simulated party on the bus."""

    party_id: str
    signer: SoftwareSigner
    settings: Settings
    dialect: str = "canonical"  # what it speaks on the wire (the registry says the same)
    _conn: Any = field(default=None, repr=False)
    _ch: Any = field(default=None, repr=False)

    @property
    def queue(self) -> str:
        """The partner's own queue on the adapter's outbound exchange."""
        return f"{self.settings.prefix}.partner.{self.party_id}"

    def connect(self) -> SimPartner:
        """Open a connection and bind the partner's queue."""
        self._conn = pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url))
        self._ch = self._conn.channel()
        self._ch.confirm_delivery()
        s = self.settings
        self._ch.exchange_declare(s.exchange_in, "topic", durable=True)
        self._ch.exchange_declare(s.exchange_out, "topic", durable=True)
        self._ch.queue_declare(self.queue, durable=True)
        self._ch.queue_bind(self.queue, s.exchange_out, routing_key=self.party_id)
        return self

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None and self._conn.is_open:
            self._conn.close()

    def envelope(
        self,
        message_type: str,
        business: etree._Element,
        *,
        message_id: str | None = None,
        receiver: str | None = None,
        correlation_id: str | None = None,
    ) -> bytes:
        """A signed envelope around ``business`` as this partner sends it."""
        root = build_envelope(
            message_type=message_type,
            sender_id=self.party_id,
            receiver_id=receiver or self.settings.party_id,
            business=business,
            send_time=contract_time(datetime.now(UTC)),
            message_id=message_id,
            correlation_id=correlation_id,
        )
        dialect = mappings.get(self.dialect)
        return dialect.serialize(sign_envelope(dialect.from_canonical(root), self.signer))

    def send_raw(self, body: bytes, *, routing_key: str | None = None) -> None:
        """Publish bytes as they are, under this partner's routing key (or another)."""
        self._ch.basic_publish(
            self.settings.exchange_in,
            routing_key or self.party_id,
            body,
            properties=pika.BasicProperties(delivery_mode=2, content_type="application/xml"),
        )

    def send(self, message_type: str, business: etree._Element, **kw: Any) -> str:
        """Sign and publish; returns the MessageId."""
        message_id = kw.pop("message_id", None) or partner_message_id()
        self.send_raw(self.envelope(message_type, business, message_id=message_id, **kw))
        return message_id

    def receive(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait for ``count`` messages on this partner's queue (fewer on timeout)."""
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            method, props, body = self._ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                self._conn.process_data_events(time_limit=0.05)
                continue
            root = etree.fromstring(body)
            if self.dialect != "canonical":  # read it the way the tests and demo read all
                signature = root[-1]
                root.remove(signature)
                root = mappings.get(self.dialect).to_canonical(root)
            head = read_head(root)
            got.append(
                Received(head.message_id, head.message_type, head.correlation_id, body, root)
            )
        return got

    def receipts_for(
        self, message_ids: Iterable[str], timeout: float = 30.0
    ) -> dict[str, Received]:
        """Collect the adapter's receipts for ``message_ids`` (other messages are kept aside)."""
        wanted = set(message_ids)
        found: dict[str, Received] = {}
        deadline = time.monotonic() + timeout
        while wanted - set(found) and time.monotonic() < deadline:
            for msg in self.receive(1, timeout=max(0.1, deadline - time.monotonic())):
                ori = msg.field("OriMessageId")
                if msg.message_type == "CDGI900" and ori in wanted:
                    found[ori] = msg
        return found

    def answer(
        self, msg: Received, *, status: int = 1, code: str = "0000", info: str = "received"
    ) -> str:
        """Send the partner's own CDGI900 for a message the adapter sent it."""
        from adapter.envelope import build_receipt

        receipt = build_receipt(
            ori_message_id=msg.message_id,
            ori_message_type=msg.message_type,
            status=status,
            code=code,
            info=info,
            time=contract_time(datetime.now(UTC)),
        )
        return self.send("CDGI900", receipt, correlation_id=msg.message_id)

    def purge(self) -> None:
        """Drop whatever waits in this partner's queue."""
        self._ch.queue_purge(self.queue)


# -- an enterprise and its IC cards ------------------------------------------------------
@dataclass
class SimEnterprise:
    """An importer with its IC cards (software keys here) and the seals made for each holder."""

    uscc: str
    name: str
    customs_code: str
    cards: dict[str, tuple[str, SoftwareSigner, str]] = field(default_factory=dict)
    # card_no -> (role, key, seal id)

    def add_card(self, card_no: str, role: str, holder: str) -> SimEnterprise:
        """Make a card (and a seal for its holder)."""
        key = SoftwareSigner.generate(f"{self.name} {card_no}", key_name=card_no)
        self.cards[card_no] = (role, key, f"SEAL-{card_no}")
        self._holders = {**getattr(self, "_holders", {}), card_no: holder}
        return self

    def binding(self, card_no: str, *, valid_from: date, valid_to: date,
                revoked: bool | None = None) -> etree._Element:
        """The portal's CDGI101 for one of the cards, with its holder's seal."""
        role, key, seal_id = self.cards[card_no]
        holder = self._holders[card_no]
        return documents.card_binding(
            uscc=self.uscc, enterprise_name=self.name, customs_code=self.customs_code,
            card_no=card_no, card_role=role, certificate=der(key), valid_from=valid_from,
            valid_to=valid_to, revoked=revoked,
            seals=[documents.Seal(seal_id=seal_id, holder_name=holder, valid_from=valid_from,
                                  valid_to=valid_to)],
        )

    def seal(self, card_no: str) -> str:
        """The seal id made for a card's holder."""
        return self.cards[card_no][2]

    def sign(self, element: etree._Element, card_no: str) -> etree._Element:
        """The document signed by one of the enterprise's cards."""
        return sign_document(element, self.cards[card_no][1])


# -- partner keys on disk (demo) -----------------------------------------------------------
def partner_signer(directory: Path, party_id: str) -> SoftwareSigner:
    """A partner's software key and certificate, made once and kept under ``directory``."""
    key_path, cert_path = directory / f"{party_id}.key", directory / f"{party_id}.pem"
    if key_path.exists() and cert_path.exists():
        return SoftwareSigner.from_pem(key_path.read_bytes(), cert_path.read_bytes(), party_id)
    directory.mkdir(parents=True, exist_ok=True)
    signer = SoftwareSigner.generate(f"{party_id} (simulated)", key_name=party_id)
    key_path.write_bytes(signer.key_pem())
    key_path.chmod(0o600)
    cert_path.write_bytes(signer.cert_pem())
    return signer


def der(signer: SoftwareSigner) -> bytes:
    """A signer's certificate as DER."""
    return signer.certificate.public_bytes(serialization.Encoding.DER)


# -- the demo --------------------------------------------------------------------------------


def run_demo(settings: Settings, *, keep_running: bool, console: Any) -> int:
    """Set everything up on the embedded defaults, run a daemon, let partners talk to it."""
    from adapter.bootstrap import engine_for
    from adapter.registry import fingerprint
    from card.devtoken import init_dev_token, softhsm_conf, use_softhsm_dir
    from store.db import utcnow
    from store.migrate import upgrade
    from store.models import Partner, PartnerCert
    from store.repo import JournalFilter, find_journal, save_partner

    var = Path("var")
    var.mkdir(exist_ok=True)
    if settings.prefix == Settings().prefix:  # the demo keeps to names of its own
        settings = Settings(
            **{
                **settings.__dict__,
                "prefix": f"{settings.prefix}-demo",
                "database_url": "sqlite:///var/demo.db",
            }
        )
    env = dict(os.environ)
    # A restore that overtakes its deduction waits this long before it is flagged; the demo
    # shows both outcomes, so it waits 3 s rather than the minute a data center would.
    env.setdefault("CDGI_ORDER_GRACE_S", "3")
    # The dev token's PIN lives in a private file, never on a command line or in a log.
    if not settings.has_pin():
        pin_file = Path(settings.softhsm_dir) / "dev-pin"
        if not pin_file.exists():
            pin_file.parent.mkdir(parents=True, exist_ok=True)
            pin_file.write_text(os.urandom(6).hex() + "\n", encoding="utf-8")
            pin_file.chmod(0o600)
        settings = Settings(**{**settings.__dict__, "pin_file": str(pin_file)})
        env["CDGI_PIN_FILE"] = str(pin_file)
    console.print("[bold]1. the card[/bold] (SoftHSM2 dev token)")
    softhsm_conf(Path(settings.softhsm_dir))
    use_softhsm_dir(Path(settings.softhsm_dir))
    env["SOFTHSM2_CONF"] = os.environ["SOFTHSM2_CONF"]
    info = init_dev_token(
        module=settings.pkcs11_module,
        softhsm_dir=Path(settings.softhsm_dir),
        token_label=settings.token_label,
        key_label=settings.key_label,
        pin=settings.read_pin(),
        so_pin=os.urandom(8).hex(),
        common_name=f"cdgi-adapter {settings.party_id} (dev card)",
    )
    console.print(
        f"   token {info.token_label}, key {info.key_label}, {info.subject}, "
        f"{info.days_to_expiry} days left"
    )

    console.print("[bold]2. the store[/bold] (a fresh one: the story starts from nothing)")
    if settings.database_url == "sqlite:///var/demo.db":
        for leftover in Path("var").glob("demo.db*"):
            leftover.unlink()
    engine = engine_for(settings)
    before, after = upgrade(engine)
    console.print(f"   {settings.database_url}: {before or '(empty)'} -> {after}")

    console.print("[bold]3. the partners[/bold] (software keys under var/partners)")
    partners: dict[str, SimPartner] = {}
    now = utcnow()
    from adapter.scenario import PARTNERS

    for party_id, name in PARTNERS.items():
        signer = partner_signer(var / "partners", party_id)
        cert = signer.certificate
        save_partner(
            engine,
            Partner(id=party_id, name=name, kind=_kind(party_id), created_at=now, updated_at=now),
            PartnerCert(
                partner_id=party_id,
                fingerprint=fingerprint(cert),
                subject=cert.subject.rfc4514_string(),
                pem=signer.cert_pem().decode(),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                added_at=now,
            ),
        )
        partners[party_id] = SimPartner(party_id, signer, settings).connect()
        partners[party_id].purge()
        console.print(f"   {party_id:<9} {name}")
    _purge_inbound(settings)

    console.print("[bold]4. the daemon[/bold] (cdgi run)")
    log_path = var / "demo-daemon.log"
    with log_path.open("ab") as log_file:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "adapter", "run"],
            env={
                **env,
                "CDGI_LOG_FORMAT": "json", "CDGI_HTTP_PORT": env.get("CDGI_HTTP_PORT", "0"),
                "CDGI_PREFIX": settings.prefix,
                "CDGI_DATABASE_URL": settings.database_url,
            },
            stdout=log_file,
            stderr=log_file,
        )
    try:
        # Partners speak only once the daemon has declared its queue: a message published
        # before that would be routed nowhere.
        if not _wait_running(daemon, Path(settings.state_dir) / f"{settings.prefix}-{daemon.pid}.json"):
            console.print(f"   the daemon did not start (exit code {daemon.poll()}); "
                          f"see {log_path}")
            return 1
        console.print(f"   pid {daemon.pid}, log in {log_path}")
        code, ids = _demo_exchange(partners, settings, console)
        time.sleep(0.5)  # let the relay record the broker's confirms before showing the journal
        console.print("[bold]7. the journal[/bold] (cdgi log --limit 25)")
        from adapter.cli import _print_rows

        _print_rows(list(reversed(find_journal(engine, JournalFilter(limit=25)))), as_json=False)
        show_env = {**env, "CDGI_PREFIX": settings.prefix,
                    "CDGI_DATABASE_URL": settings.database_url,
                    "COLUMNS": str(max(120, shutil.get_terminal_size().columns))}
        for what in (["quota", ids["quota"]], ["ledger", ids["guarantee"]]) if ids else ():
            console.print(f"[bold]8. cdgi show {' '.join(what)}[/bold]")
            subprocess.run([sys.executable, "-m", "adapter", "show", *what], env=show_env,
                           check=False)
        console.print(
            f"\nLook closer, with the demo's settings:\n"
            f"  export CDGI_PREFIX={settings.prefix} CDGI_DATABASE_URL={settings.database_url}\n"
            "  cdgi log --status REFUSED | cdgi why <MessageId> | cdgi show enterprise <USCC> | "
            "cdgi show quota <QuotaNo> | cdgi status"
        )
        if daemon.poll() is not None:
            console.print(
                f"   [red]the daemon stopped early (exit code {daemon.returncode})"
                f"[/red]; see {log_path}"
            )
            return 1
        return code
    finally:
        for p in partners.values():
            p.close()
        if keep_running:
            console.print(
                f"   the daemon keeps running (pid {daemon.pid}); stop it with "
                f"kill -TERM {daemon.pid}"
            )
        else:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=30)
            console.print(f"   daemon stopped (exit code {code})")


def _wait_running(daemon: subprocess.Popen[bytes], status: Path, timeout: float = 60.0) -> bool:
    """Wait until the daemon's status file says it consumes (False if it exited first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and daemon.poll() is None:
        try:
            if json.loads(status.read_text(encoding="utf-8")).get("state") == "running":
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def _purge_inbound(settings: Settings) -> None:
    """Start the demo from an empty inbound queue (its own prefix: nobody else's messages)."""
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    ch = conn.channel()
    try:
        ch.queue_purge(settings.queue_in)
    except pika.exceptions.ChannelClosedByBroker:
        pass  # not declared yet: the daemon declares it
    conn.close()


def _kind(party_id: str) -> str:
    from adapter.registry import kind_of

    return kind_of(party_id) or "PORTAL"


def _demo_exchange(
    partners: dict[str, SimPartner], settings: Settings, console: Any
) -> tuple[int, dict[str, str]]:
    """The business lifecycle, then what the adapter does with bad input."""
    from adapter.scenario import Lifecycle, ScenarioFailed

    console.print("[bold]5. the business[/bold] (every step checked: ok, or !! and a stop)")
    story = Lifecycle(partners, say=console.print)
    try:
        ids = story.run()
    except ScenarioFailed as e:
        console.print(f"[red]the demo stopped: {e}[/red]")
        return 1, {}
    console.print(f"   enterprise {story.e.uscc}: quota {ids['quota']}, policy {ids['policy']}, "
                  f"claim {ids['claim']}")
    console.print("[bold]6. bad input[/bold] (each refused with its code; the daemon keeps running)")
    customs = partners["CUS.0800"]
    credit = documents.credit_info(uscc=story.e.uscc, customs_code=story.e.customs_code,
                                   rating="ADVANCED", rated_date=story.today)
    signed = customs.envelope("CDGI401", credit)
    unsigned = serialize(build_envelope(
        message_type="CDGI401", sender_id="CUS.0800", receiver_id=settings.party_id,
        business=documents.credit_info(uscc=story.e.uscc, customs_code=story.e.customs_code,
                                       rating="DISHONEST", rated_date=story.today),
        send_time=contract_time(datetime.now(UTC)),
    ))
    cases = [
        ("a credit rating", signed),
        ("the same message again (a duplicate: the original receipt again)", signed),
        ("broken XML", b"<cdgi:Envelope xmlns:cdgi='urn:cdgi:1'><oops></cdgi:Envelope>"),
        ("an unsigned rating claiming to be customs", unsigned),
        ("a DTD with an entity (billion laughs)",
         b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'),
    ]
    for _, body in cases:
        customs.send_raw(body)
    got = customs.receive(len(cases), timeout=30)
    for (what, _), msg in zip(cases, got, strict=False):
        console.print(f"   CUS.0800 sent {what}\n      <- receipt {msg.field('ReturnStatus')} "
                      f"{msg.field('ReturnCode')}: {msg.field('ReturnInfo')}")
    return (0 if len(got) == len(cases) else 1), ids
