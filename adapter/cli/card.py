"""``cdgi card init|info|test``, and the work behind ``cdgi sign`` and ``cdgi verify``.

Owns the operator's view of the IC card: making the SoftHSM2 dev token, showing the card and
its certificate, timing signatures, and signing or verifying a file. Settings come from
``adapter.cli.settings()`` (so ``--config`` applies); the PIN is read through ``Settings``
when the card is opened and never printed.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from lxml import etree
from rich.console import Console
from rich.table import Table

from adapter.envelope import parse, serialize
from adapter.errors import CdgiError, ConfigurationError
from adapter.settings import Settings
from card import CardInfo, Verified, sign_envelope, verify_envelope
from card.devtoken import init_dev_token
from card.xmldsig import DS

card_app = typer.Typer(help="The IC card (PKCS#11 token).", no_args_is_help=True)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

_SAMPLE = (
    '<cdgi:Envelope xmlns:cdgi="urn:cdgi:1" version="1.0"><cdgi:Head>'
    "<cdgi:MessageId>6F1C2B9E-3A44-4C0B-9D0E-7A51C2E4B8F1</cdgi:MessageId>"
    "<cdgi:MessageType>CDGI109</cdgi:MessageType><cdgi:SenderId>{sender}</cdgi:SenderId>"
    "<cdgi:ReceiverId>PORTAL</cdgi:ReceiverId><cdgi:SendTime>2026-11-24T10:15:00+08:00</cdgi:SendTime>"
    '</cdgi:Head><cdgi:Body><cdgi:QuotaApply Id="D6F1C2B9E"><cdgi:QuotaNo>Q2026112400017</cdgi:QuotaNo>'
    "</cdgi:QuotaApply></cdgi:Body></cdgi:Envelope>"
)


def sign_file(settings: Settings, path: Path, out: Path | None) -> None:
    """Sign the envelope in ``path`` with the card (replacing its envelope signature, if any)."""
    from adapter.bootstrap import open_signer

    root = _read(settings, path)
    last = root[-1] if len(root) else None
    if last is not None and last.tag == f"{{{DS}}}Signature":
        root.remove(last)
    with open_signer(settings) as signer:
        data = serialize(sign_envelope(root, signer))
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)


def verify_file(settings: Settings, path: Path, cert_path: Path) -> Verified:
    """Verify the envelope signature in ``path`` against the PEM certificate(s) in ``cert_path``."""
    try:
        trusted = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"cannot read a PEM certificate from {cert_path}: {e}") from e
    return verify_with(path, trusted, settings=settings)


def verify_with(
    path: Path,
    trusted: Sequence[x509.Certificate],
    *,
    allow_sha1: bool = False,
    settings: Settings | None = None,
) -> Verified:
    """Verify the envelope signature in ``path`` against ``trusted``, by our profile."""
    return verify_envelope(_read(settings or Settings(), path), trusted, allow_sha1=allow_sha1)


def _read(settings: Settings, path: Path) -> etree._Element:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(f"cannot read {path}: {e.strerror}") from e
    return parse(data, max_bytes=settings.max_bytes, max_depth=settings.max_depth)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except CdgiError as e:
        _err.print(f"error: {e.message}", markup=False)
        raise typer.Exit(1) from None


def _settings() -> Settings:
    from adapter.cli import settings  # the root command's --config lives there

    return settings()


@card_app.command("init")
def init(
    so_pin: Annotated[
        str,
        typer.Option(
            envvar="CDGI_CARD_SO_PIN",
            help="The token's SO PIN (default: a random one, not shown).",
            show_default=False,
        ),
    ] = "",
    common_name: Annotated[str, typer.Option(help="Certificate subject CN.")] = "",
    days: Annotated[int, typer.Option(help="Certificate validity in days.")] = 730,
    force: Annotated[bool, typer.Option(help="Replace an existing key and certificate.")] = False,
) -> None:
    """Make the SoftHSM2 dev token with a key and a self-signed certificate (idempotent)."""
    with _one_line_errors():
        s = _settings()
        info = init_dev_token(
            module=s.pkcs11_module,
            softhsm_dir=Path(s.softhsm_dir),
            token_label=s.token_label,
            key_label=s.key_label,
            pin=s.read_pin(),
            so_pin=so_pin or secrets.token_urlsafe(18),
            common_name=common_name or f"CDGI adapter {s.party_id} (dev card)",
            days=days,
            force=force,
        )
    _print_info(info)


@card_app.command("info")
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the token, the key and its certificate."""
    from adapter.bootstrap import open_signer

    with _one_line_errors(), open_signer(_settings()) as signer:
        card = signer.info()
    if as_json:
        fields = {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(card).items()
        }
        _out.print(json.dumps(fields), markup=False)
    else:
        _print_info(card)


@card_app.command("test")
def test(count: Annotated[int, typer.Option(min=1, help="Signatures to time.")] = 20) -> None:
    """Sign a sample envelope with the card COUNT times, verify it, show the time per signature."""
    from adapter.bootstrap import open_signer

    with _one_line_errors():
        s = _settings()
        with open_signer(s) as signer:
            sample = etree.fromstring(_SAMPLE.format(sender=s.party_id).encode())
            sign_envelope(sample, signer)  # log in and read the certificate outside the timing
            started = time.perf_counter()
            for _ in range(count):
                signed = sign_envelope(sample, signer)
            elapsed = time.perf_counter() - started
            verified = verify_envelope(etree.fromstring(serialize(signed)), [signer.certificate])
    _out.print(f"signed and verified with {verified.certificate.subject.rfc4514_string()}")
    _out.print(f"{count} signatures, {elapsed / count * 1000:.1f} ms per signature")


def _print_info(card: CardInfo) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in asdict(card).items():
        table.add_row(
            name.replace("_", " "), value.isoformat() if isinstance(value, datetime) else str(value)
        )
    _out.print(table)
