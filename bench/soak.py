"""Resident memory of the daemon across a long run of the business mix.

    python bench/soak.py [--soak 100000] [--enterprises 100] [--store sqlite]

Builds generations of the business mix (fresh enterprises each, ``--enterprises`` per
generation, about 19.5 messages each) until ``--soak`` messages, publishes them to one daemon
(at most one generation ahead of its receipts), and samples the daemon's VmRSS from
/proc/<pid>/status every 3 s. Prints the first sample, the one after warm-up (10% of the
run), the last, min and max, and whether the run stayed within +-10% of the warmed-up value.
Progress is printed per generation. 100,000 messages take about 22 minutes on 2 cores
(SQLite, 80 msg/s on average as the store grows); ``--soak 5000`` is a quick look.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import command_line  # noqa: E402
from bench.daemonrun import run_mix  # noqa: E402
from bench.mix import build  # noqa: E402
from tests.support.softhsm import make_token  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", type=int, default=100_000, help="messages to publish")
    parser.add_argument("--enterprises", type=int, default=100, help="per generation")
    parser.add_argument("--store", default="sqlite")
    args = parser.parse_args()
    first = build(args.enterprises)
    per = len(first.messages)
    generations = max(1, round(args.soak / per))
    print(f"{generations} generations of {per} messages ({args.enterprises} enterprises each)",
          flush=True)
    mixes = [first]
    for g in range(1, generations):
        mixes.append(build(args.enterprises, partners=first.partners,
                           tag=f"{first.tag[:2]}{g:04d}", offset=g * args.enterprises))
        print(f"  built generation {g + 1}/{generations}", flush=True)
    total = sum(len(m.messages) for m in mixes)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cdgi-bench-") as tmpdir:
        tmp = Path(tmpdir)
        token = make_token(tmp / "card", token_label="CDGI-BENCH", key_label="bench")
        r = run_mix(mixes, token_env=token.env, store=args.store, processes=1, tmp=tmp,
                    progress=True, timeout_s=3600 + total)
    took = time.perf_counter() - started
    samples = r.rss_kib
    print("\n" + "=" * 100)
    print(f"RESULTS  soak: {r.receipted}/{total} messages receipted in {took:.0f} s "
          f"({r.rate:.1f} msg/s), {args.store}, one daemon; non-0000 receipts {r.refused}; "
          f"exit {r.exit_codes}; broker connection losses seen by the bench {r.broker_restarts}")
    if samples:
        warm_index = next((i for i, (t, _) in enumerate(samples) if t >= 0.1 * samples[-1][0]),
                          0)
        warm = samples[warm_index][1]
        values = [v for _, v in samples[warm_index:]]
        lo, hi = min(values), max(values)
        ok = lo >= 0.9 * warm and hi <= 1.1 * warm
        print(f"  RSS first {samples[0][1] / 1024:.1f} MiB (t={samples[0][0]:.0f} s), after "
              f"warm-up {warm / 1024:.1f} MiB (t={samples[warm_index][0]:.0f} s), last "
              f"{samples[-1][1] / 1024:.1f} MiB; after warm-up min {lo / 1024:.1f}, max "
              f"{hi / 1024:.1f} MiB ({hi / warm - 1:+.1%})   target within +-10%   "
              f"{'PASS' if ok else 'short'}")
        step = max(1, len(samples) // 15)
        print("  RSS over time: " + ", ".join(f"{t:.0f}s {v / 1024:.0f}MiB"
                                              for t, v in samples[::step]))
    print(f"\nreproduce: {command_line()}")


if __name__ == "__main__":
    main()
