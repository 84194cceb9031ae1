"""A slow card: 250 ms per signature. Does the daemon throttle smoothly and stay connected?

    python bench/slowcard.py [--messages 300] [--delay 0.25] [--store sqlite]

Runs the daemon through ``bench/slowcard_runner.py`` (``bootstrap(settings,
signer=SlowSigner(real PKCS#11 signer))`` then ``Daemon(app).run()``), publishes ``--messages``
credit ratings (CDGI401, one signature each) at once, and samples every 2 s the inbound
queue (ready / unacked, from ``rabbitmqctl``), receipts received and the daemon's RSS. Then
reports: unacked never above the prefetch, RSS bounded, no redelivery (journal events whose
detail says ``"redelivered": true``), and no broker connection lost (the daemon log: one
``connected to RabbitMQ``, no ``broker unavailable`` / heartbeat / pause lines).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from adapter import documents as doc  # noqa: E402
from adapter.domain.identifiers import make_uscc  # noqa: E402
from adapter.envelope import new_message_id  # noqa: E402
from adapter.settings import Settings  # noqa: E402
from adapter.sim import SimPartner  # noqa: E402
from bench.common import (  # noqa: E402
    Collector,
    Publisher,
    command_line,
    create_database,
    declare,
    drop_database,
    queue_depth,
    register_partners,
    remove_broker_names,
    rss_kib,
    start_daemons,
    stop_daemons,
)
from card import SoftwareSigner  # noqa: E402
from store.db import make_engine  # noqa: E402
from tests.support.softhsm import make_token  # noqa: E402

PREFETCH = Settings().prefetch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--delay", type=float, default=0.25)
    parser.add_argument("--store", default="sqlite")
    args = parser.parse_args()
    customs = SoftwareSigner.generate("CUS.0800 (bench)", key_name="CUS.0800")
    sim = SimPartner("CUS.0800", customs, Settings())
    today = datetime.now(UTC).date()
    bodies = []
    for i in range(args.messages):
        mid = new_message_id()
        uscc = make_uscc(f"9121{i:06d}MA0BLWX")
        bodies.append((mid, sim.envelope("CDGI401", doc.credit_info(
            uscc=uscc, customs_code=f"21{i:06d}01", rating="GENERAL", rated_date=today),
            message_id=mid)))
    prefix = f"bench-slow-{uuid.uuid4().hex[:6]}"
    samples: list[tuple[float, int, int, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="cdgi-bench-") as tmpdir:
        tmp = Path(tmpdir)
        token = make_token(tmp / "card", token_label="CDGI-BENCH", key_label="bench")
        url, name = create_database(args.store, tmp)
        register_partners(url, {"CUS.0800": customs})
        declare(prefix, ["CUS.0800"])
        collector = Collector(prefix, ["CUS.0800"]).start()
        procs = start_daemons(1, prefix=prefix, url=url, token_env=token.env, tmp=tmp,
                              runner=[sys.executable, str(ROOT / "bench/slowcard_runner.py"),
                                      str(args.delay)], log_level="INFO")
        pid = procs[0].proc.pid
        publisher = Publisher(prefix, confirm=True)
        try:
            start = time.perf_counter()
            for _, body in bodies:
                publisher.send("CUS.0800", body)
            published_s = time.perf_counter() - start
            deadline = time.monotonic() + args.messages * args.delay * 3 + 120
            while time.monotonic() < deadline:
                ready, unacked = queue_depth(prefix)
                got = sum(1 for mid, _ in bodies if mid in collector.receipts)
                samples.append((time.perf_counter() - start, ready, unacked, got,
                                rss_kib(pid) or 0))
                print(f"  t={samples[-1][0]:6.1f}s ready={ready:4d} unacked={unacked:4d} "
                      f"receipted={got:4d} rss={samples[-1][4] / 1024:6.1f} MiB", flush=True)
                if got == args.messages:
                    break
                publisher.pump()
                time.sleep(2.0)
            elapsed = time.perf_counter() - start
        finally:
            publisher.close()
            codes = stop_daemons(procs)
            collector.stop()
            remove_broker_names(prefix, ["CUS.0800"])
        engine = make_engine(url)
        with engine.connect() as c:
            redelivered = c.execute(text(
                "SELECT count(*) FROM journal_event WHERE detail LIKE '%\"redelivered\": true%'"
            )).scalar_one()
            inbound = c.execute(text(
                "SELECT count(*) FROM journal WHERE direction = 'IN'")).scalar_one()
        engine.dispose()
        drop_database(name)
        log_lines = [json.loads(line) for line in procs[0].log_path.read_text().splitlines()
                     if line.startswith("{")]
    events = [r.get("event", "") for r in log_lines]
    connects = sum(1 for e in events if e == "connected to RabbitMQ")
    trouble = [r for r in log_lines if any(w in json.dumps(r, ensure_ascii=False).lower() for w in
               ("heartbeat", "broker unavailable", "connection", "paused", "consuming failed",
                "ack failed", "publishing failed"))
               and r.get("event") != "connected to RabbitMQ"]
    got = sum(1 for mid, _ in bodies if mid in collector.receipts)
    codes_seen: dict[str, int] = {}
    for mid, _ in bodies:
        if mid in collector.receipts:
            c = collector.receipts[mid][1]
            codes_seen[c] = codes_seen.get(c, 0) + 1
    max_unacked = max((s[2] for s in samples), default=-1)
    rss = [s[4] for s in samples if s[4]]
    gaps = [b[0] - a[0] for a, b in zip(samples, samples[1:], strict=False)]
    drained = [(a[3], b[3]) for a, b in zip(samples, samples[1:], strict=False)]
    rates = [(b - a) / g for (a, b), g in zip(drained, gaps, strict=False) if g > 0]
    steady = rates[1:-1] or rates

    print("\n" + "=" * 100)
    print(f"RESULTS  slow card ({args.delay * 1000:.0f} ms per signature), {args.messages} "
          f"CDGI401 published at once in {published_s:.1f} s, {args.store}, one daemon")
    print(f"  receipted {got}/{args.messages} in {elapsed:.0f} s = "
          f"{got / elapsed:.2f} msg/s (card bound: {1 / args.delay:.2f} signatures/s); "
          f"receipt codes {codes_seen}")
    print(f"  drain rate per 2 s sample: min {min(steady, default=0):.2f}, max "
          f"{max(steady, default=0):.2f} msg/s (smooth when both sit near the card bound)")
    print(f"  unacked at the broker: max {max_unacked} (prefetch {PREFETCH})   "
          f"{'PASS' if 0 <= max_unacked <= PREFETCH else 'short'}")
    if rss:
        print(f"  daemon RSS: first {rss[0] / 1024:.1f} MiB, min {min(rss) / 1024:.1f}, max "
              f"{max(rss) / 1024:.1f}, last {rss[-1] / 1024:.1f} MiB   "
              f"{'PASS' if max(rss) <= 1.1 * rss[0] + 20 * 1024 else 'short'} (bounded)")
    print(f"  redelivered deliveries (journal events): {redelivered} of {inbound} inbound   "
          f"{'PASS' if redelivered == 0 else 'short'}")
    print(f"  broker connections opened: {connects}; connection trouble lines in the log: "
          f"{len(trouble)}   {'PASS' if connects == 1 and not trouble else 'short'}")
    for r in trouble[:5]:
        print(f"    {r}")
    print(f"  daemon exit code {codes}")
    print("  queue over time (t s: ready / unacked / receipted):")
    step = max(1, len(samples) // 20)
    for s in samples[::step]:
        print(f"    {s[0]:6.1f}: {s[1]:4d} / {s[2]:4d} / {s[3]:4d}")
    print(f"\nreproduce: {command_line()}")


if __name__ == "__main__":
    main()
