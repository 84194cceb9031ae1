"""One measured run of the business mix through running daemons (``cdgi run`` subprocesses).

Used by ``throughput.py``, ``journal.py`` and ``soak.py``: a fresh store and broker prefix,
the partners registered, N daemons started, the mix published wave by wave (as fast as the
broker takes it, or at a fixed rate), every receipt timed at the partner's side, everything
removed afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    Collector,
    CpuSnapshot,
    Publisher,
    cpu_lines,
    cpu_snapshot,
    create_database,
    declare,
    drop_database,
    percentile,
    register_partners,
    remove_broker_names,
    rss_kib,
    start_daemons,
    stop_daemons,
)
from bench.mix import PARTIES, Message, Mix


@dataclass
class RunResult:
    """What one run measured."""

    store: str
    processes: int
    sent: int
    receipted: int
    elapsed_s: float
    codes: Counter[str]
    outbound: int
    latencies_ms: list[float] = field(default_factory=list)
    rate_target: float | None = None
    exit_codes: list[int | None] = field(default_factory=list)
    rss_kib: list[tuple[float, int]] = field(default_factory=list)
    barrier: bool = False
    follow: bool = False
    broker_restarts: int = 0  # connection losses of the bench's own publisher or collector
    cpu: tuple[CpuSnapshot, CpuSnapshot] | None = None  # from the first message to the last receipt

    @property
    def rate(self) -> float:
        return self.receipted / self.elapsed_s if self.elapsed_s else 0.0

    def cpu_lines(self) -> list[str]:
        """Where the CPU went, a message (see ``bench.common.cpu_snapshot``)."""
        return cpu_lines(*self.cpu, self.receipted) if self.cpu else []

    @property
    def refused(self) -> int:
        return sum(n for code, n in self.codes.items() if code != "0000")

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def run_mix(mixes: list[Mix], *, token_env: dict[str, str], store: str, processes: int,
            tmp: Path, rate: float | None = None, url: str | None = None,
            timeout_s: float = 1200, progress: bool = False,
            on_tick: Callable[[list[int]], None] | None = None,
            runner: list[str] | None = None, barrier: bool = False,
            follow: bool = False) -> RunResult:
    """Publish ``mixes`` (one after the other) to ``processes`` fresh daemons; time receipts.

    ``rate`` publishes at that many messages per second (latency); without it, as fast as the
    broker takes them (throughput). ``url`` runs on a prepared store instead of a fresh one.
    ``on_tick`` is called about every 3 s with the daemons' pids (memory sampling).
    ``barrier`` waits for every receipt of a wave before publishing the next (for mixes whose
    waves are too small to keep competing daemons from reordering dependent messages).
    ``follow`` publishes each enterprise's next step once the receipts of its previous one
    came, as partners do (a partner answers what it has heard of): competing daemons can then
    never take a message before the one it depends on, and the queue stays full.
    """
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    dbname = None
    if url is None:
        url, dbname = create_database(store, tmp)
    register_partners(url, mixes[0].partners)
    declare(prefix, PARTIES)
    collector = Collector(prefix, PARTIES).start()
    procs = start_daemons(processes, prefix=prefix, url=url, token_env=token_env, tmp=tmp,
                          runner=runner)
    pids = [p.proc.pid for p in procs]
    publisher = Publisher(prefix)
    sent_at: dict[str, float] = {}
    samples: list[tuple[float, int]] = []
    last_tick = 0.0
    result: RunResult
    try:
        cpu_first = cpu_snapshot(pids)
        start = time.perf_counter()

        def tick() -> None:
            nonlocal last_tick
            now = time.perf_counter()
            if now - last_tick >= 3.0:
                last_tick = now
                samples.append((now - start, sum(rss_kib(pid) or 0 for pid in pids)))
                if on_tick is not None:
                    on_tick(pids)

        k = 0
        if follow:
            for mix in mixes:
                k += _follow(mix, publisher, collector, sent_at, tick)
        for mix in mixes if not follow else []:
            for wave in mix.waves:
                for m in wave:
                    if rate is not None:
                        due = start + k / rate
                        while (now := time.perf_counter()) < due:
                            time.sleep(min(0.002, due - now))
                    sent_at[m.message_id] = time.perf_counter()
                    publisher.send(m.sender, m.body)
                    k += 1
                    if k % 200 == 0:
                        publisher.pump()
                        tick()
                if barrier:
                    while any(m.message_id not in collector.receipts for m in wave):
                        publisher.pump()
                        tick()
                        time.sleep(0.01)
            if len(mixes) > 1:
                # A long run: keep at most one mix ahead of the daemons.
                while sum(1 for i in sent_at if i not in collector.receipts) > len(mix.messages):
                    publisher.pump()
                    tick()
                    time.sleep(0.5)
                if progress:
                    print(f"    ... {len(collector.receipts)}/{k} receipted, "
                          f"{time.perf_counter() - start:.0f} s", flush=True)
        ids = list(sent_at)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(i in collector.receipts for i in ids):
                break
            publisher.pump()
            tick()
            time.sleep(0.05)
        cpu_last = cpu_snapshot(pids)
        done = [collector.receipts[i] for i in ids if i in collector.receipts]
        end = max((t for t, _ in done), default=time.perf_counter())
        time.sleep(1.0)  # the last forwards and notices follow their receipts
        result = RunResult(
            store=store, processes=processes, sent=len(ids), receipted=len(done),
            elapsed_s=end - start, codes=Counter(code for _, code in done),
            outbound=collector.total, rate_target=rate,
            latencies_ms=[(collector.receipts[i][0] - sent_at[i]) * 1000 for i in ids
                          if i in collector.receipts],
            rss_kib=samples, barrier=barrier, follow=follow,
            broker_restarts=collector.restarts + publisher.restarts,
            cpu=(cpu_first, cpu_last),
        )
    finally:
        publisher.close()
        codes = stop_daemons(procs)
        collector.stop()
        remove_broker_names(prefix, PARTIES)
        drop_database(dbname)
    result.exit_codes = codes
    return result


def _follow(mix: Mix, publisher: Publisher, collector: Collector, sent_at: dict[str, float],
            tick: Callable[[], None]) -> int:
    """Publish ``mix`` enterprise by enterprise, each step once the previous step's receipts
    came (see ``run_mix``); returns how many messages were published."""
    steps: dict[int, dict[int, list[Message]]] = {}
    for wave in mix.waves:
        for m in wave:
            steps.setdefault(m.enterprise, {}).setdefault(m.wave, []).append(m)
    chains = {e: [group for _, group in sorted(waves.items())] for e, waves in steps.items()}
    at: dict[int, int] = {}

    def send(group: list[Message]) -> None:
        for m in group:
            sent_at[m.message_id] = time.perf_counter()
            publisher.send(m.sender, m.body)

    for enterprise, chain in chains.items():
        send(chain[0])
        at[enterprise] = 0
    publisher.pump()
    while at:
        moved = False
        for enterprise in list(at):
            chain, i = chains[enterprise], at[enterprise]
            if all(m.message_id in collector.receipts for m in chain[i]):
                if i + 1 == len(chain):
                    del at[enterprise]
                else:
                    send(chain[i + 1])
                    at[enterprise] = i + 1
                moved = True
        publisher.pump()
        tick()
        if not moved:
            time.sleep(0.005)
    return sum(len(group) for chain in chains.values() for group in chain)
