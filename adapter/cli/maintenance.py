"""``cdgi export`` and ``cdgi purge``: long operator work that shows progress and stops safely.

Plain command functions, registered by ``adapter.cli`` (``app.command("export")(export_cmd)``).
Both read the store in batches (``store.maintenance``), draw a progress bar on stderr, and
treat Ctrl-C and SIGTERM alike: they stop between rows or batches, leave the store and the
file system consistent, say how far they got, and exit 130.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM stops the work like Ctrl-C (a KeyboardInterrupt)."""

    def _raise(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


# -- export -------------------------------------------------------------------------------
def export_cmd(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The JSON-lines file to write (FILE.jsonl).")
    ],
    since: Annotated[str | None, typer.Option(help="ISO time, or 15m / 2h / 7d ago.")] = None,
    until: Annotated[
        str | None, typer.Option(help="ISO time, or 15m / 2h / 7d ago (exclusive).")
    ] = None,
    message_type: Annotated[str | None, typer.Option("--type", help="e.g. CDGI101.")] = None,
    partner: Annotated[str | None, typer.Option(help="Sender or receiver party id.")] = None,
    status: Annotated[str | None, typer.Option(help="PROCESSED, REFUSED, SENT, ...")] = None,
    direction: Annotated[str | None, typer.Option(help="IN or OUT.")] = None,
    with_raw: Annotated[
        bool, typer.Option("--with-raw", help="Include the bytes (raw, canonical) in base64.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per query.")] = 1000,
) -> None:
    """Export the journal, oldest first, one message per line (journal fields and events).

    Written to FILE.part and renamed to FILE only when complete. Ctrl-C or SIGTERM removes
    FILE.part, leaves FILE untouched, says how far it got and exits 130.
    """
    from rich.progress import Progress

    from adapter.bootstrap import engine_for
    from adapter.cli import _since, err, fail, out, settings
    from adapter.errors import CdgiError
    from store import maintenance

    if output.exists() and not force:
        raise fail(f"{output} exists; name another file or pass --force to replace it", 2)
    part = output.with_name(output.name + ".part")
    f = maintenance.ExportFilter(
        since=_since(since),
        until=_since(until),
        message_type=message_type,
        partner=partner,
        status=status,
        direction=direction,
    )
    engine = engine_for(settings(), writer=False)
    total: int | None = None
    written, last_id, done = 0, None, False
    try:
        with _sigterm_as_interrupt():
            total, top = maintenance.count_export(engine, f)
            with (
                part.open("w", encoding="utf-8") as fh,
                Progress(console=err, transient=True) as progress,
            ):
                task = progress.add_task("exporting", total=total)
                step = 0
                for record in maintenance.iter_export(
                    engine, f, up_to_id=top, batch_size=batch_size, with_raw=with_raw
                ):
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                    written, last_id, step = written + 1, record["id"], step + 1
                    if step == 200:
                        progress.advance(task, step)
                        step = 0
                progress.advance(task, step)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(part, output)
            done = True
            _fsync_dir(output.parent)
    except KeyboardInterrupt:
        if done:  # the file was complete and renamed before the signal: nothing was lost
            out.print(f"exported {written} message(s) to {output}", markup=False)
            return
        part.unlink(missing_ok=True)
        where = f" (last journal id {last_id})" if last_id is not None else ""
        err.print(
            f"interrupted after {written} of {'?' if total is None else total} message(s)"
            f"{where}; {part.name} removed, {output} not written; run it again to export",
            markup=False,
        )
        raise typer.Exit(INTERRUPTED) from None
    except CdgiError as e:
        part.unlink(missing_ok=True)
        raise fail(f"{e.message} (after {written} message(s); {output} not written)") from None
    except OSError as e:
        part.unlink(missing_ok=True)
        raise fail(f"cannot write {part}: {e.strerror or e}") from None
    finally:
        engine.dispose()
    out.print(f"exported {written} message(s) to {output}", markup=False)


# -- purge --------------------------------------------------------------------------------
def purge_cmd(
    older_than: Annotated[
        str,
        typer.Option(help="Delete finished messages created before this: 365d, or an ISO time."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted and kept.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed when stdin is no terminal).")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 500,
) -> None:
    """Retention: delete finished journal rows older than the cutoff, with their events.

    Kept always: the inbox (the dedupe), the journal rows and receipts the inbox needs, and
    every message with an outbox row still PENDING or UNROUTABLE. Deletes in small
    transactions: Ctrl-C or SIGTERM stops after the batch in hand rolls back (exit 130), and
    running it again continues. Export first: `cdgi export --until ... --with-raw -o FILE`.
    """
    from rich.progress import Progress

    from adapter.bootstrap import engine_for
    from adapter.cli import _since, err, fail, out, settings
    from adapter.errors import CdgiError
    from store import maintenance

    cutoff = _since(older_than)
    assert cutoff is not None  # the option is required and _since refuses what it cannot read
    if cutoff > datetime.now(UTC):
        raise fail(f"--older-than {older_than} lies in the future; give 365d or a past time", 2)
    engine = engine_for(settings())
    deleted = 0
    plan = None
    try:
        with _sigterm_as_interrupt():
            plan = maintenance.purge_plan(engine, cutoff)
            when = plan.cutoff.isoformat(timespec="seconds")
            out.print(
                f"journal rows created before {when}: {plan.old}\n"
                f"  to delete (with their events and sent outbox rows): {plan.eligible}\n"
                f"  kept, needed by the dedupe (inbox) or its receipts: {plan.kept_for_dedupe}\n"
                f"  kept, an outbox row still PENDING or UNROUTABLE:    {plan.kept_unsent}\n"
                f"  kept, not finished:                                  {plan.unfinished}",
                markup=False,
            )
            if dry_run:
                out.print("nothing was changed (--dry-run)")
                return
            if plan.eligible == 0:
                out.print("nothing to delete")
                return
            if not yes:
                if not _stdin_is_terminal():
                    raise fail(
                        "not deleting without confirmation and stdin is not a terminal; "
                        "pass --yes",
                        2,
                    )
                if not typer.confirm(f"delete {plan.eligible} journal row(s)?", default=False):
                    err.print("nothing was deleted")
                    raise typer.Exit(1)
            with Progress(console=err, transient=True) as progress:
                task = progress.add_task("purging", total=plan.eligible)

                def advance(n: int) -> None:
                    nonlocal deleted
                    deleted += n
                    progress.advance(task, n)

                maintenance.purge(engine, cutoff, batch_size=batch_size, on_batch=advance)
    except KeyboardInterrupt:
        of = f" of {plan.eligible}" if plan is not None else ""
        err.print(
            f"interrupted after deleting {deleted}{of} journal row(s); the store is consistent "
            "(the batch in hand was rolled back); run the same command again to continue",
            markup=False,
        )
        raise typer.Exit(INTERRUPTED) from None
    except CdgiError as e:
        raise fail(
            f"{e.message} (after deleting {deleted} row(s); run the same command again to "
            "continue)"
        ) from None
    finally:
        engine.dispose()
    out.print(f"deleted {deleted} journal row(s) created before {when}")
