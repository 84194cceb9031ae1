"""Scanning what the adapter said for secrets: the card PIN, the SO PIN, private keys.

A suite collects everything the adapter produced while it ran (daemon log lines, the receipts
its simulated partners received, the journal's info and events, CLI output) into an
``Evidence`` and asks ``Evidence.leaks(secrets)``; an empty list is the only good answer.
Shared by the security and reliability suites, so it knows nothing of either.

A secret is looked for in the forms it could take on its way out: as it is, and base64, hex
or JSON-escaped; a PEM private key also by each line of its base64 body, so that a partial
dump is caught too. Secrets shorter than ``MIN_LENGTH`` are refused: a four-digit PIN would
turn up by chance in any timestamp, and a scan that cries wolf is soon ignored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_LENGTH = 8
_PEM_LINE = 40  # a base64 line shorter than this could recur by chance (the last line, say)


@dataclass(frozen=True)
class Secret:
    """A value that must never appear in anything the adapter says."""

    name: str
    value: str

    def __post_init__(self) -> None:
        if len(self.value) < MIN_LENGTH:
            raise ValueError(
                f"secret {self.name!r} is too short ({len(self.value)} chars) to be found "
                f"without false alarms; make test secrets at least {MIN_LENGTH} characters"
            )

    def forms(self) -> dict[str, str]:
        """The encodings under which the value would still be a leak."""
        raw = self.value.encode()
        found = {
            "as is": self.value,
            "base64": base64.b64encode(raw).decode(),
            "hex": raw.hex(),
            "JSON-escaped": json.dumps(self.value)[1:-1],
        }
        if "-----BEGIN" in self.value:
            body = [
                line.strip()
                for line in self.value.splitlines()
                if line.strip() and not line.startswith("-----")
            ]
            found["PEM body"] = "".join(body)
            for n, line in enumerate(body):
                if len(line) >= _PEM_LINE:
                    found[f"PEM line {n + 1}"] = line
        distinct: dict[str, str] = {}  # one name per spelling ("as is" often is JSON's too)
        for how, text in found.items():
            if len(text) >= MIN_LENGTH and text not in distinct.values():
                distinct[how] = text
        return distinct


def pin_secrets(pin: str, so_pin: str | None = None) -> list[Secret]:
    """The card's user PIN and, if known, its security officer PIN."""
    found = [Secret("card PIN", pin)]
    if so_pin is not None:
        found.append(Secret("SO PIN", so_pin))
    return found


def key_secrets(signers: Iterable[tuple[str, Any]]) -> list[Secret]:
    """The PEM private keys of ``(name, signer)`` pairs (anything with ``key_pem()``)."""
    return [Secret(f"private key of {name}", signer.key_pem().decode()) for name, signer in signers]


@dataclass(frozen=True)
class Leak:
    """One secret found in one piece of evidence."""

    source: str
    secret: str
    form: str
    line: int
    excerpt: str

    def __str__(self) -> str:
        # Never repeat the secret itself in a failure message: show where, not what.
        return f"{self.secret} ({self.form}) in {self.source}, line {self.line}: {self.excerpt}"


@dataclass
class Evidence:
    """Everything the adapter said during a run, by source."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, source: str, content: str | bytes | None) -> None:
        """One piece of output: a log, a message body, a journal field, a CLI's output."""
        if content is None:
            return
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        self.texts.append((source, content))

    def add_file(self, source: str, path: Path) -> None:
        """A file as it is on disk (a daemon's log, say); a missing file adds nothing."""
        if path.exists():
            self.add(source, path.read_bytes())

    def add_journal(self, engine: Any, source: str = "journal") -> int:
        """Every journal row's info and raw bytes of outbound messages, and every event's
        detail, read straight from the store behind ``engine``; returns the rows read."""
        from sqlalchemy import text

        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, direction, info, raw FROM journal ORDER BY id")
            ).all()
            events = conn.execute(
                text("SELECT journal_id, detail FROM journal_event ORDER BY id")
            ).all()
        for row_id, direction, info, raw in rows:
            self.add(f"{source} row {row_id} info", info)
            if direction == "OUT":  # what we said; inbound bytes are what partners said
                self.add(f"{source} row {row_id} raw", bytes(raw))
        for journal_id, detail in events:
            self.add(f"{source} event of row {journal_id}", detail)
        return len(rows)

    def add_daemon(self, running: Any, name: str = "daemon") -> int:
        """A daemon of ``tests.support.harness`` (its ``Running``): its whole log file, and the
        journal of its store; returns the journal rows read. Stop the daemon first, so that
        its log is complete."""
        self.add_file(f"{name} log", running.log_path)
        return self.add_journal(running.engine, f"{name} journal")

    def add_received(self, source: str, messages: Iterable[Any]) -> None:
        """Messages simulated partners received (``adapter.sim.Received``), bodies whole."""
        for msg in messages:
            self.add(f"{source} {msg.message_type} {msg.message_id}", msg.body)

    def __len__(self) -> int:
        return len(self.texts)

    def leaks(self, secrets: Iterable[Secret]) -> list[Leak]:
        """Every place a secret (in any of its forms) occurs."""
        return list(self._scan(list(secrets)))

    def _scan(self, secrets: list[Secret]) -> Iterator[Leak]:
        for source, content in self.texts:
            for secret in secrets:
                for form, needle in secret.forms().items():
                    start = content.find(needle)
                    if start < 0:
                        continue
                    line = content.count("\n", 0, start) + 1
                    before = content[max(0, start - 40):start].replace("\n", " ")
                    yield Leak(source, secret.name, form, line, f"…{before}[SECRET]…")


def assert_no_leaks(evidence: Evidence, secrets: Iterable[Secret]) -> None:
    """Fail with where each secret was found (never with the secret itself)."""
    found = evidence.leaks(secrets)
    if found:
        shown = "\n".join(str(leak) for leak in found[:20])
        raise AssertionError(f"{len(found)} secret(s) leaked:\n{shown}")
