"""``cdgi show enterprise|quota|policy|claim|ledger``: the business as the store has it.

What operators and auditors look at: an enterprise and everything it holds, a quota and what
it still allows, a policy and its e-policy, a claim and its settlement, a guarantee ledger
and its discrepancies, each with its progress history (the user guide's 进度 view).

Human-readable by default (times in local time); ``--json`` prints one JSON document in
which amounts are strings with exactly two fraction digits (never floats) and times are ISO
8601 with their offset. Read-only: nothing here writes to the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from adapter.errors import CdgiError

show_app = typer.Typer(
    help="The business as the store has it: enterprises, quotas, policies, claims, ledgers.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="One machine-readable JSON document.")]

R = TypeVar("R")


# -- plumbing ------------------------------------------------------------------------------
def _cli() -> Any:
    from adapter import cli  # imported late: adapter.cli registers this module's app

    return cli


def _fail(message: str, code: int = 1) -> typer.Exit:
    return _cli().fail(escape(message), code)  # type: ignore[no-any-return]


@contextmanager
def _engine() -> Iterator[Any]:
    from adapter.bootstrap import engine_for

    engine = engine_for(_cli().settings(), writer=False)
    try:
        yield engine
    finally:
        engine.dispose()


def _load(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a store view with a reader engine of its own; store trouble ends as ``error:``."""
    try:
        with _engine() as engine:
            return fn(engine, *args, **kwargs)
    except CdgiError as e:
        raise _fail(
            f"{e.message} (is CDGI_DATABASE_URL right, and has `cdgi db upgrade` been run?)"
        ) from None


def _jsonable(value: Any) -> Any:
    """Decimals as exact strings, dates and times as ISO 8601 (times keep their offset)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _print_json(document: Any) -> None:
    _cli().out.print_json(data=_jsonable(document))


def _print(*renderables: Any) -> None:
    out = _cli().out
    for r in renderables:
        out.print(r)


# -- formatting ----------------------------------------------------------------------------
def _s(value: Any) -> str:
    """A value for a rich cell: escaped, ``-`` when absent."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))


def _when(moment: datetime | None) -> str:
    """A time in this machine's local time."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _term(start: date | None, end: date | None) -> str:
    if start is None and end is None:
        return "-"
    return f"{_s(start)} .. {_s(end)}"


def _named(code: str, name: str | None) -> str:
    return f"{escape(code)} ({escape(name)})" if name else escape(code)


def _fields(title: str, rows: Sequence[tuple[str, Any]]) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(escape(key), value if isinstance(value, str) else _s(value))
    return Panel(grid, title=escape(title), title_align="left", expand=False)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=escape(title), title_justify="left", title_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def _none(what: str) -> str:
    return f"[dim]{escape(what)}: none[/dim]"


def _status(status: str) -> str:
    bad = {"REJECTED", "DECLINED", "REFUSED", "RECORD_REJECTED", "REVOKED", "EXPIRED"}
    good = {"APPROVED", "ISSUED", "RECORDED", "PAID", "EFFECTIVE", "SIGNED"}
    if status in bad:
        return f"[red]{escape(status)}[/red]"
    if status in good:
        return f"[green]{escape(status)}[/green]"
    return escape(status)


def _history(steps: Sequence[Any]) -> Table | str:
    if not steps:
        return _none("progress history")
    table = _table("progress (进度)", "time", "subject", "number", "status", "reason")
    for s in steps:
        table.add_row(_when(s.at), _s(s.subject), _s(s.subject_no), _status(s.status), _s(s.reason))
    return table


def _claims(claims: Sequence[Any]) -> Table | str:
    if not claims:
        return _none("claims")
    table = _table("claims", "claim no", "policy no", "cause", "status", "total", "paid", "paid at")
    for c in claims:
        table.add_row(
            _s(c.claim_no),
            _s(c.policy_no),
            _s(c.cause),
            _status(c.status),
            _s(c.total),
            _s(c.paid_amount),
            _when(c.paid_time),
        )
    return table


def _policies(policies: Sequence[Any], *, live_column: bool = False) -> Table | str:
    if not policies:
        return _none("policies")
    cols = ["policy no", "apply no", "status", "insured", "term", "guarantee record"]
    if live_column:
        cols.append("counts against quota")
    table = _table("policies", *cols)
    for p in policies:
        row = [
            _s(p.policy_no),
            _s(p.apply_no),
            _status(p.status),
            _s(p.insured_amount),
            _term(p.term_start, p.term_end),
            _s(p.guarantee_record_no),
        ]
        if live_column:
            row.append("yes" if p.live else "no")
        table.add_row(*row)
    return table


# -- enterprise ----------------------------------------------------------------------------
@show_app.command("enterprise")
def show_enterprise(
    uscc: Annotated[str, typer.Argument(help="The enterprise's USCC (18 characters).")],
    as_json: JsonOpt = False,
) -> None:
    """An enterprise: credit, bound cards and seals, agreements, authorizations, quotas,
    policies and claims."""
    from store.views import enterprise_view

    view = _load(enterprise_view, uscc)
    if view is None:
        raise _fail(
            f"no enterprise {uscc} in the store; an enterprise appears once its card binding "
            f"(CDGI101) is processed; see `cdgi log --uscc {uscc}`"
        )
    if as_json:
        _print_json(view)
        return
    c = view.credit
    _print(
        _fields(
            f"enterprise {view.uscc}",
            [
                ("name", view.name),
                ("customs code", view.customs_code),
                (
                    "credit",
                    f"{escape(c.rating)} rated {c.rated_date.isoformat()}" if c else "none on file",
                ),
                ("updated", _when(view.updated_at)),
            ],
        )
    )
    if c and c.records:
        records = _table("credit records", "date", "kind", "description")
        for r in c.records:
            records.add_row(_s(r.date), _s(r.kind), _s(r.description))
        _print(records)
    if view.cards:
        cards = _table("bound cards", "card no", "role", "valid", "revoked", "permissions", "seals")
        for card in view.cards:
            seals = "; ".join(
                f"{escape(s.seal_id)} {escape(s.holder_name)} "
                f"({s.valid_from.isoformat()} .. {s.valid_to.isoformat()})"
                for s in card.seals
            )
            cards.add_row(
                _s(card.card_no),
                _s(card.role),
                _term(card.valid_from, card.valid_to),
                "[red]REVOKED[/red]" if card.revoked else "no",
                _s(card.permissions),
                seals or "-",
            )
        _print(cards)
    else:
        _print(_none("bound cards"))
    if view.agreements:
        agreements = _table(
            "agreements (三方协议)",
            "agreement no",
            "bank",
            "district",
            "status",
            "effective",
            "reason",
        )
        for a in view.agreements:
            agreements.add_row(
                _s(a.agreement_no),
                _named(a.bank_code, a.bank_name),
                _s(a.customs_district),
                _status(a.status),
                _s(a.effective_date),
                _s(a.reason),
            )
        _print(agreements)
    else:
        _print(_none("agreements"))
    if view.authorizations:
        auths = _table(
            "authorizations (授权书)", "auth no", "insurer", "scopes", "valid to", "status"
        )
        for au in view.authorizations:
            auths.add_row(
                _s(au.auth_no),
                _named(au.insurer_code, au.insurer_name),
                _s(au.scopes),
                _s(au.valid_to),
                _status(au.status),
            )
        _print(auths)
    else:
        _print(_none("authorizations"))
    if view.quotas:
        quotas = _table(
            "quotas (额度)", "quota no", "insurer", "status", "applied", "approved", "validity"
        )
        for q in view.quotas:
            quotas.add_row(
                _s(q.quota_no),
                _named(q.insurer_code, q.insurer_name),
                _status(q.status),
                _s(q.applied_amount),
                _s(q.approved_amount),
                _term(q.valid_from, q.valid_to),
            )
        _print(quotas)
    else:
        _print(_none("quotas"))
    _print(_policies(view.policies), _claims(view.claims))


# -- quota ---------------------------------------------------------------------------------
@show_app.command("quota")
def show_quota(
    quota_no: Annotated[str, typer.Argument(help="The QuotaNo.")],
    as_json: JsonOpt = False,
) -> None:
    """A quota: its fields, increases, policies, the amount still available and its history.

    available = approved amount + approved increases − insured amounts of its live policies
    (SUBMITTED, ISSUED, RECORDED).
    """
    from store.views import quota_view

    view = _load(quota_view, quota_no)
    if view is None:
        raise _fail(
            f"no quota {quota_no} in the store; see `cdgi show enterprise USCC` for an "
            "enterprise's quotas"
        )
    if as_json:
        _print_json(view)
        return
    _print(
        _fields(
            f"quota {view.quota_no}",
            [
                ("enterprise", _named(view.uscc, view.enterprise_name)),
                ("insurer", _named(view.insurer_code, view.insurer_name)),
                ("status", _status(view.status)),
                ("applied", view.applied_amount),
                ("approved", view.approved_amount),
                ("rate", view.rate),
                ("term applied", _term(view.term_start, view.term_end)),
                ("validity", _term(view.valid_from, view.valid_to)),
                ("re-application of", view.prev_quota_no),
                ("contact", " ".join(x for x in (view.contact_name, view.contact_phone) if x)),
                ("reason", view.reason),
                ("applied at", _when(view.created_at)),
                ("updated", _when(view.updated_at)),
            ],
        )
    )
    if view.increases:
        inc = _table(
            "increases (额度追加)",
            "increase no",
            "amount",
            "status",
            "approved",
            "reason",
            "applied at",
        )
        for i in view.increases:
            inc.add_row(
                _s(i.increase_no),
                _s(i.amount),
                _status(i.status),
                _s(i.approved_amount),
                _s(i.reason),
                _when(i.created_at),
            )
        _print(inc)
    else:
        _print(_none("increases"))
    _print(_policies(view.policies, live_column=True))
    style = "red" if view.available < 0 else "bold"
    _print(
        f"available: [{style}]{_s(view.available)}[/{style}] = approved "
        f"{_s(view.approved_amount or Decimal('0.00'))} + approved increases "
        f"{_s(view.approved_increases)} − live policies {_s(view.live_insured)}",
        _history(view.history),
    )


# -- policy --------------------------------------------------------------------------------
@show_app.command("policy")
def show_policy(
    no: Annotated[str, typer.Argument(help="The PolicyNo, or the ApplyNo of the application.")],
    save_epolicy: Annotated[
        Path | None,
        typer.Option(
            "--save-epolicy",
            metavar="PATH",
            help="Write the stored e-policy to PATH (a folder: its own file name inside) "
            "after checking it against its Sha256; prints only what was saved.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A policy (or application): fields, invoice, e-policy, guarantee ledger summary, claims
    and history."""
    if save_epolicy is not None:
        _save_epolicy(no, save_epolicy, as_json)
        return
    from store.views import policy_view

    view = _load(policy_view, no)
    if view is None:
        raise _fail(
            f"no policy {no} in the store (looked for a PolicyNo and an ApplyNo); see "
            "`cdgi show enterprise USCC` or `cdgi show quota QUOTA_NO`"
        )
    if as_json:
        _print_json(view)
        return
    _print(
        _fields(
            f"policy {view.policy_no or '(not issued)'} / application {view.apply_no}",
            [
                ("enterprise", _named(view.uscc, view.enterprise_name)),
                ("insurer", _named(view.insurer_code, view.insurer_name)),
                ("quota", view.quota_no),
                ("status", _status(view.status)),
                ("insured amount", view.insured_amount),
                ("premium", view.premium),
                ("rate", view.rate),
                ("term", _term(view.term_start, view.term_end)),
                ("insured customs", view.insured_customs),
                ("coverage", view.coverage),
                ("guarantee record", view.guarantee_record_no),
                ("reason", view.reason),
                ("applied at", _when(view.created_at)),
                ("updated", _when(view.updated_at)),
            ],
        )
    )
    if view.invoice:
        _print(_fields("invoice (发票)", [(k, _s(v)) for k, v in view.invoice.items()]))
    else:
        _print(_none("invoice"))
    e = view.epolicy
    if e is not None:
        _print(
            _fields(
                "e-policy (电子保单)",
                [
                    ("file name", e.file_name),
                    ("media type", e.media_type),
                    ("sha256", e.sha256),
                    (
                        "stored",
                        f"{e.size} bytes; save it with `cdgi show policy {escape(no)} "
                        "--save-epolicy PATH`"
                        if e.size is not None
                        else "no content (only its hash was sent)",
                    ),
                ],
            )
        )
    else:
        _print(_none("e-policy"))
    led = view.ledger
    if led is not None:
        flag = (
            f", [red]{led.discrepancies} discrepanc{'y' if led.discrepancies == 1 else 'ies'}[/red]"
            if led.discrepancies
            else ""
        )
        _print(
            f"guarantee ledger {escape(led.guarantee_record_no)}: insured {_s(led.insured_amount)}"
            f" − deducted {_s(led.deducted)} + restored {_s(led.restored)} = available "
            f"[bold]{_s(led.available)}[/bold] ({led.lines} line(s){flag}); see `cdgi show "
            f"ledger {escape(led.guarantee_record_no)}`"
        )
    else:
        _print(_none("guarantee ledger (not recorded with customs)"))
    _print(_claims(view.claims), _history(view.history))


def _save_epolicy(no: str, path: Path, as_json: bool) -> None:
    from store.views import epolicy_file

    found = _load(epolicy_file, no)
    if found is None:
        raise _fail(
            f"no policy {no} in the store (looked for a PolicyNo and an ApplyNo); see "
            "`cdgi show enterprise USCC`"
        )
    if found.content is None:
        raise _fail(
            f"policy {no} has no e-policy content in the store"
            + (
                f" (the insurer sent only its Sha256 {found.sha256}); ask the insurer for the file"
                if found.sha256
                else " (it has not been issued)"
            )
        )
    actual = hashlib.sha256(found.content).hexdigest()
    if not found.sha256 or actual != found.sha256.lower():
        raise _fail(
            f"the stored e-policy of {no} does not match its Sha256 "
            f"(declared {found.sha256 or 'none'}, content hashes to {actual}); nothing written"
        )
    target = path
    if path.is_dir():
        name = Path(found.file_name or "").name or f"{found.policy_no or found.apply_no}.bin"
        target = path / name
    try:
        target.write_bytes(found.content)
    except OSError as e:
        raise _fail(f"cannot write {target}: {e.strerror}") from None
    saved = {
        "apply_no": found.apply_no,
        "policy_no": found.policy_no,
        "saved_to": str(target),
        "file_name": found.file_name,
        "media_type": found.media_type,
        "size": len(found.content),
        "sha256": actual,
    }
    if as_json:
        _print_json(saved)
        return
    _cli().out.print(
        f"e-policy of {found.policy_no or found.apply_no} saved to {target} "
        f"({len(found.content)} bytes, {found.media_type or 'unknown type'}, sha256 {actual} "
        "verified)",
        markup=False,
    )


# -- claim ---------------------------------------------------------------------------------
@show_app.command("claim")
def show_claim(
    claim_no: Annotated[str, typer.Argument(help="The ClaimNo.")],
    as_json: JsonOpt = False,
) -> None:
    """A claim: its fields, the declarations it is for, its settlement and its history."""
    from store.views import claim_view

    view = _load(claim_view, claim_no)
    if view is None:
        raise _fail(
            f"no claim {claim_no} in the store; see `cdgi show enterprise USCC` for an "
            "enterprise's claims"
        )
    if as_json:
        _print_json(view)
        return
    _print(
        _fields(
            f"claim {view.claim_no}",
            [
                ("enterprise", _named(view.uscc, view.enterprise_name)),
                ("policy", view.policy_no),
                ("guarantee record", view.guarantee_record_no),
                ("insurer", _named(view.insurer_code, view.insurer_name)),
                ("cause", view.cause),
                ("notice date", view.notice_date),
                ("total", view.total),
                ("status", _status(view.status)),
                ("received", _when(view.created_at)),
            ],
        )
    )
    if view.entries:
        entries = _table(
            "declarations (报关单)", "entry id", "tax", "due date", "overdue days", "late fee"
        )
        for e in view.entries:
            entries.add_row(
                _s(e.entry_id), _s(e.tax), _s(e.due_date), _s(e.overdue_days), _s(e.late_fee)
            )
        _print(entries)
        if view.entries_total != view.total:
            _print(
                f"[red]the entries add up to {_s(view.entries_total)}, not the total "
                f"{_s(view.total)}[/red]"
            )
    else:
        _print(_none("declarations"))
    _print(
        _fields(
            "settlement (理赔)",
            [
                ("status", _status(view.status)),
                ("paid amount", view.paid_amount),
                ("paid at", _when(view.paid_time)),
                ("reason", view.reason),
            ],
        ),
        _history(view.history),
    )


# -- ledger --------------------------------------------------------------------------------
@show_app.command("ledger")
def show_ledger(
    guarantee_record_no: Annotated[
        str | None, typer.Argument(help="The customs GuaranteeRecordNo (担保备案编号).")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", metavar="POLICY_NO", help="Find the ledger by its PolicyNo."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A guarantee ledger: every deduction and restoration, discrepancies highlighted, and
    the amount still available (insured − deducted + restored)."""
    from store.views import NoLedger, ledger_view

    if (guarantee_record_no is None) == (policy is None):
        raise _fail("give exactly one of GUARANTEE_RECORD_NO or --policy POLICY_NO", 2)
    view = _load(ledger_view, guarantee_record_no, policy_no=policy)
    if view is None:
        if policy is not None:
            raise _fail(
                f"no policy {policy} in the store; see `cdgi show enterprise USCC` for an "
                "enterprise's policies"
            )
        raise _fail(
            f"no guarantee record {guarantee_record_no} in the store; try `cdgi show ledger "
            "--policy POLICY_NO` or `cdgi show enterprise USCC`"
        )
    if isinstance(view, NoLedger):
        raise _fail(
            f"policy {policy} is {view.status}, not recorded with customs, so it has no "
            f"guarantee ledger; see `cdgi show policy {policy}`"
        )
    if as_json:
        _print_json(view)
        return
    _print(
        _fields(
            f"guarantee ledger {view.guarantee_record_no}",
            [
                ("policy", view.policy_no),
                ("application", view.apply_no),
                ("enterprise", view.uscc),
                ("policy status", _status(view.status)),
                ("term", _term(view.term_start, view.term_end)),
                ("insured amount", view.insured_amount),
            ],
        )
    )
    if view.lines:
        table = _table(
            "lines", "time", "entry id", "kind", "amount", "available after", "discrepancy", "note"
        )
        for x in view.lines:
            table.add_row(
                _when(x.at),
                _s(x.entry_id),
                _s(x.kind),
                ("-" if x.kind == "DEDUCT" else "+") + _s(x.amount),
                _s(x.available_after),
                f"[bold]! {escape(x.discrepancy)}[/bold]" if x.discrepancy else "-",
                _s(x.note),
                style="red" if x.discrepancy else None,
            )
        _print(table)
    else:
        _print(_none("ledger lines"))
    _print(
        f"available: [bold]{_s(view.available)}[/bold] = insured {_s(view.insured_amount)} − "
        f"deducted {_s(view.deducted)} + restored {_s(view.restored)}"
    )
    if view.discrepancies:
        _print(
            f"[red]{view.discrepancies} discrepanc{'y' if view.discrepancies == 1 else 'ies'}: "
            "recorded as customs sent them, flagged for an operator (see the notes)[/red]"
        )
