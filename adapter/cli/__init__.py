"""The ``cdgi`` command: one command with subcommands, human-readable or ``--json``.

Every ``CdgiError`` ends as one line ``error: ...`` that says how to fix it, and exit code 1
(``cdgi run`` has its own named exit codes, see ``adapter.daemon.ExitCode``).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from adapter import __version__
from adapter.errors import CdgiError, ConfigurationError
from adapter.settings import Settings

app = typer.Typer(
    name="cdgi",
    help="cdgi-adapter: the Customs Duty Guarantee Insurance message-bus adapter.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The SQL store.", no_args_is_help=True)
partner_app = typer.Typer(help="The partner registry.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(partner_app, name="partner")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class _State:
    config: str | None = None


def settings() -> Settings:
    """The settings for this invocation."""
    return Settings.from_env(config_file=_State.config)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr and return the Exit to raise."""
    err.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(code)


@app.callback()
def _root(
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="A TOML settings file (CDGI_CONFIG).")
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(f"cdgi-adapter {__version__}")
        raise typer.Exit()
    _State.config = config


# -- run ----------------------------------------------------------------------------------
@app.command()
def run(
    give_up_after: Annotated[
        float | None,
        typer.Option(help="Exit (code 69) if the broker stays down this many seconds."),
    ] = None,
    migrate: Annotated[bool, typer.Option(help="Run `db upgrade` first.")] = False,
) -> None:
    """Run the daemon: consume, check, record, answer, publish. SIGTERM stops it cleanly."""
    from adapter import logs
    from adapter.bootstrap import bootstrap, engine_for
    from adapter.daemon import ExitCode
    from adapter.daemon import run as run_daemon
    from store.migrate import upgrade

    s = settings()
    logs.configure(s.log_format, s.log_level)
    try:
        if migrate:
            upgrade(engine_for(s))
        app_ = bootstrap(s)
    except ConfigurationError as e:
        err.print(f"error: {e.message}")
        raise typer.Exit(ExitCode.CONFIG) from None
    raise typer.Exit(int(run_daemon(app_, give_up_after_s=give_up_after)))


# -- db -----------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create or migrate the database to the newest schema (safe to run again)."""
    from adapter.bootstrap import engine_for
    from store.migrate import upgrade

    s = settings()
    try:
        before, after = upgrade(engine_for(s), revision)
    except CdgiError as e:
        raise fail(e.message) from None
    except Exception as e:  # alembic and the driver raise their own
        raise fail(f"migration failed on {_masked_db(s)}: {e}") from None
    if before == after:
        out.print(f"database {_masked_db(s)} is up to date (revision {after})")
    else:
        out.print(f"database {_masked_db(s)} migrated: {before or '(empty)'} -> {after}")


def _masked_db(s: Settings) -> str:
    from adapter.settings import mask_url

    return mask_url(s.database_url)


# -- card, sign, verify, validate -----------------------------------------------------------
def _register_card() -> None:
    from adapter.cli.card import card_app

    app.add_typer(card_app, name="card", help="The IC card (PKCS#11 token).")


_register_card()


def _register_show() -> None:
    from adapter.cli.show import show_app

    app.add_typer(show_app, name="show", help="The business: enterprises, quotas, policies, claims, "
                  "the guarantee ledger.")


_register_show()


def _register_maintenance() -> None:
    from adapter.cli.maintenance import export_cmd, purge_cmd

    app.command("export")(export_cmd)
    app.command("purge")(purge_cmd)


_register_maintenance()


@app.command()
def sign(
    file: Path,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Default: stdout.")] = None,
) -> None:
    """Sign an envelope with the card (enveloped, exclusive C14N, RSA-SHA256)."""
    from adapter.cli.card import sign_file

    try:
        sign_file(settings(), file, output)
    except CdgiError as e:
        raise fail(e.message) from None


@app.command()
def verify(
    file: Path,
    cert: Annotated[Path | None, typer.Option(help="Verify against this PEM certificate.")] = None,
    partner: Annotated[
        str | None, typer.Option(help="Verify against the certificates registered for a partner.")
    ] = None,
) -> None:
    """Verify an envelope's signature by our profile (CONTRACT §4)."""
    from adapter.cli.card import verify_file, verify_with

    if (cert is None) == (partner is None):
        raise fail("give exactly one of --cert PEM or --partner ID", 2)
    try:
        if cert is not None:
            verified = verify_file(settings(), file, cert)
        else:
            from adapter.bootstrap import engine_for
            from adapter.registry import load_partners

            found = load_partners(engine_for(settings(), writer=False)).get(partner or "")
            if found is None:
                raise fail(f"partner {partner} is not registered; see `cdgi partner list`")
            verified = verify_with(file, list(found.certificates), allow_sha1=False)
    except CdgiError as e:
        raise fail(f"{e.code} {e.message}") from None
    out.print(f"valid: signed by {verified.certificate.subject.rfc4514_string()}")


@app.command()
def validate(file: Path) -> None:
    """Check a message against the contract's XSD; prints every problem with line and path."""
    import schemas

    try:
        data = file.read_bytes()
    except OSError as e:
        raise fail(f"cannot read {file}: {e.strerror}") from None
    problems = schemas.problems(data)
    if not problems:
        out.print(f"{file}: valid")
        return
    for p in problems:
        where = f"{file}:{p.line}" if p.line else str(file)
        out.print(f"{where}: {p.path or '-'}: {p.message}")
    raise typer.Exit(1)


# -- partners -----------------------------------------------------------------------------
@partner_app.command("add")
def partner_add(
    party_id: Annotated[str, typer.Argument(help="PORTAL, BANK.<code>, INS.<code>, CUS.<dddd>.")],
    name: Annotated[str, typer.Option(help="Display name (insurers: as in queries).")],
    cert: Annotated[
        Path | None, typer.Option(help="A PEM or DER certificate it signs with.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Checked against the id's pattern.")] = None,
    dialect: Annotated[
        str | None,
        typer.Option(help="canonical (for a new partner), or a dialect in mappings/."),
    ] = None,
    broker_user: Annotated[str | None, typer.Option(help="Its RabbitMQ user, if checked.")] = None,
    allow_sha1_until: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD: accept SHA-1 from it until then.")
    ] = None,
) -> None:
    """Register (or update) a partner and add a certificate it signs with."""
    import mappings
    from adapter.bootstrap import engine_for
    from adapter.registry import check_party_id, fingerprint, load_certificate, load_partners, pem
    from store.db import as_utc, utcnow
    from store.models import Partner, PartnerCert
    from store.repo import save_partner

    try:
        found_kind = check_party_id(party_id, kind)
        if dialect is not None:
            mappings.get(dialect)
    except (CdgiError, KeyError) as e:
        raise fail(e.message if isinstance(e, CdgiError) else str(e.args[0])) from None
    until = None
    if allow_sha1_until:
        try:
            until = datetime.strptime(allow_sha1_until, "%Y-%m-%d").date()
        except ValueError:
            raise fail("--allow-sha1-until takes a date YYYY-MM-DD") from None
    cert_row = None
    now = utcnow()
    if cert is not None:
        try:
            c = load_certificate(cert.read_bytes())
        except OSError as e:
            raise fail(f"cannot read {cert}: {e.strerror}") from None
        except CdgiError as e:
            raise fail(e.message) from None
        cert_row = PartnerCert(
            partner_id=party_id,
            fingerprint=fingerprint(c),
            subject=c.subject.rfc4514_string()[:500],
            pem=pem(c),
            not_before=as_utc(c.not_valid_before_utc),
            not_after=as_utc(c.not_valid_after_utc),
            added_at=now,
        )
    try:
        engine = engine_for(settings())
        # Updating a partner changes only what is given; the rest stays as registered.
        known = load_partners(engine).get(party_id)
        if known is not None:
            dialect = dialect or known.dialect
            broker_user = broker_user or known.broker_user
            until = until or known.allow_sha1_until
        dialect = dialect or "canonical"
        save_partner(
            engine,
            Partner(
                id=party_id,
                name=name,
                kind=found_kind,
                dialect=dialect,
                enabled=known.enabled if known is not None else True,
                broker_user=broker_user,
                allow_sha1_until=until,
                created_at=now,
                updated_at=now,
            ),
            cert_row,
        )
    except CdgiError as e:
        raise fail(e.message) from None
    except Exception as e:
        raise fail(f"cannot save the partner: {e}; has `cdgi db upgrade` been run?") from None
    extra = f" with certificate {cert_row.fingerprint[:16]}…" if cert_row else ""
    out.print(f"partner {party_id} ({found_kind}, {dialect}) registered{extra}")


@partner_app.command("list")
def partner_list(as_json: JsonOpt = False) -> None:
    """Every partner, its certificates and their days to expiry."""
    from adapter.bootstrap import engine_for
    from store.db import as_utc
    from store.repo import load_partners, partner_certs

    engine = engine_for(settings(), writer=False)
    now = datetime.now(UTC)
    certs: dict[str, list[dict[str, Any]]] = {}
    for c in partner_certs(engine):
        certs.setdefault(c.partner_id, []).append(
            {
                "fingerprint": c.fingerprint,
                "subject": c.subject,
                "not_after": as_utc(c.not_after).isoformat(),  # type: ignore[union-attr]
                "days_to_expiry": (as_utc(c.not_after) - now).days,  # type: ignore[operator]
            }
        )
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "kind": p.kind,
            "dialect": p.dialect,
            "enabled": p.enabled,
            "broker_user": p.broker_user,
            "allow_sha1_until": p.allow_sha1_until.isoformat() if p.allow_sha1_until else None,
            "certificates": certs.get(p.id, []),
        }
        for p, _ in sorted(load_partners(engine), key=lambda t: t[0].id)
    ]
    if as_json:
        out.print_json(data=rows)
        return
    table = Table("id", "name", "kind", "dialect", "enabled", "certificates (days left)")
    for r in rows:
        table.add_row(
            r["id"],
            r["name"],
            r["kind"],
            r["dialect"],
            "yes" if r["enabled"] else "NO",
            ", ".join(
                f"{c['fingerprint'][:12]}… ({c['days_to_expiry']})" for c in r["certificates"]
            )
            or "-",
        )
    out.print(table)


@partner_app.command("disable")
def partner_disable(party_id: str) -> None:
    """Stop accepting messages from a partner (it still gets receipts)."""
    _set_enabled(party_id, False)


@partner_app.command("enable")
def partner_enable(party_id: str) -> None:
    """Accept messages from a partner again."""
    _set_enabled(party_id, True)


def _set_enabled(party_id: str, enabled: bool) -> None:
    from adapter.bootstrap import engine_for
    from store.repo import set_partner_enabled

    if not set_partner_enabled(engine_for(settings()), party_id, enabled):
        raise fail(f"partner {party_id} is not registered; see `cdgi partner list`")
    out.print(f"partner {party_id} {'enabled' if enabled else 'disabled'}")


# -- journal ------------------------------------------------------------------------------
def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"bad time {value!r}: use 2026-11-24T10:00:00+08:00 or 15m, 2h, 3d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row_json(row: Any) -> dict[str, Any]:
    from store.db import as_utc

    return {
        "journal_id": row.id,
        "direction": row.direction,
        "message_id": row.message_id,
        "type": row.message_type,
        "sender": row.sender_id,
        "receiver": row.receiver_id,
        "correlation_id": row.correlation_id,
        "uscc": row.uscc,
        "status": row.status,
        "code": row.code,
        "info": row.info,
        "size": row.size,
        "created_at": as_utc(row.created_at).isoformat(),  # type: ignore[union-attr]
    }


@app.command("log")
def log_cmd(
    message_id: Annotated[
        str | None, typer.Option("--id", help="MessageId (or correlated).")
    ] = None,
    message_type: Annotated[str | None, typer.Option("--type", help="e.g. CDGI101.")] = None,
    partner: Annotated[str | None, typer.Option(help="Sender or receiver party id.")] = None,
    status: Annotated[str | None, typer.Option(help="PROCESSED, REFUSED, SENT, ...")] = None,
    direction: Annotated[str | None, typer.Option(help="IN or OUT.")] = None,
    uscc: Annotated[str | None, typer.Option(help="Enterprise USCC.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, or 15m / 2h / 3d ago.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time, or 15m / 2h / 3d ago.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new rows.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The message journal, newest first (``--follow``: oldest first, then as they come)."""
    from adapter.bootstrap import engine_for
    from store.repo import JournalFilter, find_journal

    engine = engine_for(settings(), writer=False)
    f = JournalFilter(
        message_id=message_id,
        message_type=message_type,
        partner=partner,
        status=status,
        direction=direction,
        uscc=uscc,
        since=_since(since),
        until=_since(until),
        limit=limit,
    )
    try:
        rows = find_journal(engine, f)
    except CdgiError as e:
        raise fail(e.message) from None
    rows.reverse() if follow else None
    _print_rows(rows, as_json)
    if not follow:
        return
    last = max((r.id for r in rows), default=0)
    try:
        while True:
            time.sleep(1.0)
            new = find_journal(
                engine, JournalFilter(**{**f.__dict__, "after_id": last, "limit": 1000})
            )
            if new:
                _print_rows(new, as_json, header=False)
                last = new[-1].id
    except KeyboardInterrupt:
        return


def _print_rows(rows: list[Any], as_json: bool, header: bool = True) -> None:
    from store.db import as_utc

    if as_json:
        for r in rows:
            out.print(json.dumps(_row_json(r), ensure_ascii=False), markup=False)
        return
    if header and not rows:
        out.print("no messages match")
        return
    for r in rows:
        when = as_utc(r.created_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[union-attr]
        arrow = f"{r.sender_id or r.routing_key or '?'} -> {r.receiver_id or '?'}"
        code = f" {r.code}" if r.code else ""
        out.print(
            f"{when} #{r.id:<6} {r.direction:<3} {r.message_type or 'Unknown':<8} "
            f"{(r.message_id or '-'):<36} {arrow:<22} {r.status}{code}  {r.info or ''}",
            markup=False,
        )


@app.command()
def why(
    key: Annotated[str, typer.Argument(help="A MessageId, or a journal id (#123).")],
    as_json: JsonOpt = False,
) -> None:
    """One message's whole story: every stage, receipt, publish and partner answer."""
    from adapter.bootstrap import engine_for
    from store.db import as_utc
    from store.repo import journal_story

    engine = engine_for(settings(), writer=False)
    story = journal_story(engine, key.lstrip("#"))
    if not story:
        raise fail(f"no message {key} in the journal; try `cdgi log --id {key}` or a prefix search")
    if as_json:
        out.print_json(
            data=[
                {
                    **_row_json(row),
                    "events": [
                        {
                            "at": as_utc(e.at).isoformat(),
                            "stage": e.stage,
                            "status": e.status,  # type: ignore[union-attr]
                            "code": e.code,
                            "detail": e.detail,
                        }
                        for e in events
                    ],
                }
                for row, events in story
            ]
        )
        return
    for row, events in story:
        title = "received" if row.direction == "IN" else "sent"
        out.print(
            f"[bold]#{row.id} {title} {row.message_type or 'Unknown'} {row.message_id or '-'}[/bold]"
            f"  {row.sender_id or row.routing_key or '?'} -> {row.receiver_id or '?'}"
            f"  ({row.size} bytes)"
        )
        out.print(
            f"  status: {row.status}{' ' + row.code if row.code else ''}"
            f"{'  ' + row.info if row.info else ''}",
            markup=False,
        )
        for e in events:
            when = as_utc(e.at).astimezone().strftime("%H:%M:%S.%f")[:-3]  # type: ignore[union-attr]
            out.print(
                f"  {when} {e.stage:<15} {e.status}{' ' + e.code if e.code else ''}", markup=False
            )
            for line in _detail_lines(e.detail):
                out.print(f"               {line}", markup=False)


def _detail_lines(detail: str | None) -> list[str]:
    if not detail:
        return []
    try:
        data = json.loads(detail)
    except ValueError:
        return [detail]
    if isinstance(data, dict):
        lines = [f"- {s}" for s in data.pop("stages", [])]
        lines += [f"{k}: {v}" for k, v in data.items()]
        return lines
    return [detail]


@app.command()
def replay(
    key: Annotated[str | None, typer.Argument(help="A MessageId or journal id.")] = None,
    message_type: Annotated[str | None, typer.Option("--type")] = None,
    partner: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    direction: Annotated[str | None, typer.Option()] = None,
    since: Annotated[str | None, typer.Option()] = None,
    until: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="At most this many messages.")] = 1000,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed.")
    ] = False,
) -> None:
    """Replay messages: inbound ones go through the pipeline again, outbound ones are re-sent.

    Idempotent: an inbound message processed before is recognised as a duplicate and only
    its original receipt is re-sent; an outbound message is re-sent byte-identical.
    """
    from rich.progress import Progress

    from adapter.bootstrap import engine_for
    from adapter.bus import Bus
    from store.repo import JournalFilter, find_journal, journal_story, requeue_outbound

    s = settings()
    engine = engine_for(s)
    if key:
        rows = [row for row, _ in journal_story(engine, key.lstrip("#"))]
        if direction:
            rows = [r for r in rows if r.direction == direction.upper()]
    elif any((message_type, partner, status, direction, since, until)):
        rows = find_journal(
            engine,
            JournalFilter(
                message_type=message_type,
                partner=partner,
                status=status,
                direction=direction,
                since=_since(since),
                until=_since(until),
                limit=limit,
            ),
        )
        rows.reverse()
    else:
        raise fail("name a message (ID) or a filter (--type, --partner, --status, --since ...)", 2)
    if not rows:
        raise fail("nothing matches; check with `cdgi log` and the same filters")
    if dry_run:
        for r in rows:
            what = "reprocess" if r.direction == "IN" else "re-send"
            out.print(
                f"would {what} #{r.id} {r.direction} {r.message_type or 'Unknown'} "
                f"{r.message_id or '-'} ({r.status})",
                markup=False,
            )
        out.print(f"{len(rows)} message(s); nothing was changed (--dry-run)")
        return
    bus = Bus(s)
    done = 0
    try:
        bus.connect()
        bus.declare_topology()
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("replaying", total=len(rows))
            for r in rows:
                if r.direction == "IN":
                    bus.inject(
                        routing_key=r.routing_key or r.sender_id or "", body=r.raw, replay_of=r.id
                    )
                else:
                    requeue_outbound(engine, r.id, "re-sent by cdgi replay")
                done += 1
                progress.advance(task)
    except KeyboardInterrupt:
        err.print(f"interrupted after {done} of {len(rows)}; running it again is safe")
        raise typer.Exit(130) from None
    except CdgiError as e:
        raise fail(f"{e.message} (after {done} of {len(rows)}; running it again is safe)") from None
    finally:
        bus.close()
    out.print(f"replayed {done} message(s); follow them with `cdgi log -f`")


# -- status -------------------------------------------------------------------------------
@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Queues, dead letters, outbox backlog, daemons, the card and certificate expiry."""
    from adapter.alerts import evaluate
    from adapter.bootstrap import engine_for
    from adapter.bus import Bus
    from store.db import as_utc
    from store.repo import alert_counts, outbox_backlog, partner_certs, waiting_count

    s = settings()
    report: dict[str, Any] = {"prefix": s.prefix, "party_id": s.party_id}
    bus = Bus(s)
    try:
        bus.connect()
        report["queues"] = bus.queue_depths([s.queue_in, s.queue_dead])
        report["broker"] = "up"
    except CdgiError as e:
        report["broker"] = f"DOWN: {e.message}"
    finally:
        bus.close()
    try:
        engine = engine_for(s, writer=False)
        backlog = outbox_backlog(engine)
        oldest = as_utc(backlog["oldest_pending"])
        report["outbox"] = {
            **{k.lower(): v for k, v in backlog["counts"].items()},
            "oldest_pending_s": round((datetime.now(UTC) - oldest).total_seconds())
            if oldest
            else None,
        }
        now = datetime.now(UTC)
        report["partner_certificates"] = [
            {
                "partner": c.partner_id,
                "fingerprint": c.fingerprint[:16],
                "days_to_expiry": (as_utc(c.not_after) - now).days,
            }  # type: ignore[operator]
            for c in partner_certs(engine)
        ]
        report["counts"] = alert_counts(engine, unanswered_after_s=s.receipt_timeout_s)
        report["waiting"] = waiting_count(engine)
        report["store"] = "up"
    except CdgiError as e:
        report["store"] = f"DOWN: {e.message}"
    except Exception as e:
        report["store"] = f"DOWN: {e}"
    report["card"] = _card_status(s)
    report["daemons"] = _daemons(s)
    card = report["card"]
    report["alerts"] = [a.as_dict() for a in evaluate(
        counts=report.get("counts"),
        card_days=card.get("days_to_expiry"),
        card_error=card.get("error") if card.get("state") == "UNAVAILABLE" else None,
        partner_certs=[(c["partner"], c["fingerprint"], c["days_to_expiry"])
                       for c in report.get("partner_certificates", [])],
        dead_letters=(report.get("queues") or {}).get(s.queue_dead),
        window_days=s.alert_cert_days,
    )]
    if as_json:
        out.print_json(data=report, default=str)
        return
    out.print(f"[bold]cdgi-adapter[/bold] {s.party_id} prefix {s.prefix}")
    out.print(f"broker: {report['broker']}")
    for name, depth in (report.get("queues") or {}).items():
        note = " (dead letters present!)" if name == s.queue_dead and depth else ""
        out.print(f"  {name}: {'missing' if depth is None else depth}{note}")
    out.print(f"store: {report['store']}")
    if "outbox" in report:
        out.print(f"  outbox: {report['outbox']}")
    if report.get("waiting"):
        out.print(f"  waiting for the message they depend on: {report['waiting']} "
                  "(cdgi log --status WAITING)")
    card = report["card"]
    out.print(
        f"card: {card.get('state')}"
        + (
            f", certificate expires in {card['days_to_expiry']} days"
            if "days_to_expiry" in card
            else ""
        )
        + (f" ({card['error']})" if card.get("error") else "")
    )
    for c in report.get("partner_certificates", []):
        warn = "  [yellow]expiring soon[/yellow]" if c["days_to_expiry"] < 30 else ""
        out.print(
            f"  partner {c['partner']} cert {c['fingerprint']}…: {c['days_to_expiry']} days{warn}"
        )
    for d in report["daemons"]:
        out.print(
            f"daemon pid {d['pid']}: {d['state']} {d.get('detail') or ''} "
            f"(messages {d.get('messages', 0)}, updated {d['age_s']}s ago)"
        )
    if not report["daemons"]:
        out.print("daemon: none running with this prefix on this host")
    if report["alerts"]:
        out.print("[bold red]alerts[/bold red] (docs/operations.md says how to recover):")
        for a in report["alerts"]:
            colour = "red" if a["severity"] == "critical" else "yellow"
            out.print(f"  [{colour}]{a['severity']}[/{colour}] {a['kind']}: ", end="")
            out.print(a["message"], markup=False)
    else:
        out.print("alerts: none")


@app.command()
def health(
    max_age: Annotated[float, typer.Option(help="Seconds since the daemon last reported.")] = 30.0,
) -> None:
    """Exit 0 when a daemon of this prefix runs here and reported lately (for healthchecks)."""
    s = settings()
    daemons = _daemons(s)
    fresh = [d for d in daemons if d["age_s"] <= max_age]
    if any(d["state"] == "running" for d in fresh):
        out.print("healthy: running")
        return
    if fresh:
        raise fail(f"{fresh[0]['state']}: {fresh[0].get('detail') or 'see the log'}")
    raise fail(
        f"no daemon with prefix {s.prefix} has reported in {max_age:.0f}s "
        f"(status files in {s.state_dir})"
    )


def _card_status(s: Settings) -> dict[str, Any]:
    from adapter.bootstrap import open_signer

    if not s.has_pin():
        return {"state": "unknown", "error": f"no PIN configured ({s.pin_env})"}
    try:
        signer = open_signer(s)
        try:
            info = signer.info()
        finally:
            signer.close()
    except CdgiError as e:
        return {"state": "UNAVAILABLE", "error": e.message}
    return {
        "state": "present",
        "token": info.token_label,
        "key": info.key_label,
        "subject": info.subject,
        "days_to_expiry": info.days_to_expiry,
    }


def _daemons(s: Settings) -> list[dict[str, Any]]:
    import os

    found = []
    for path in sorted(Path(s.state_dir).glob(f"{s.prefix}-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        try:
            os.kill(int(data["pid"]), 0)
        except (OSError, ValueError, KeyError):
            continue  # a stale file of a process that is gone
        updated = datetime.fromisoformat(data["updated_at"])
        data["age_s"] = round((datetime.now(UTC) - updated).total_seconds())
        found.append(data)
    return found


# -- demo ---------------------------------------------------------------------------------
@app.command()
def demo(
    keep_running: Annotated[
        bool, typer.Option(help="Leave the daemon running afterwards.")
    ] = False,
) -> None:
    """Simulated partners exchange signed messages with a real daemon; then show the journal."""
    from adapter.sim import run_demo

    try:
        code = run_demo(settings(), keep_running=keep_running, console=out)
    except CdgiError as e:
        raise fail(e.message) from None
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``cdgi`` console script."""
    try:
        app()
    except ConfigurationError as e:
        err.print(f"error: {e.message}")
        sys.exit(1)
