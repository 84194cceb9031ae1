"""End-to-end throughput and latency of the running daemon on the business mix, beside its limit.

    python bench/throughput.py [--enterprises 400] [--latency-enterprises 40]
                               [--stores sqlite,postgresql] [--sample 400]

In one run:
1. builds the business-lifecycle mix (``bench/mix.py``: every message pre-built and pre-signed);
2. measures the physical limit of that mix (``bench/limits.py``: consume, parse, validate,
   verify, sign x signatures per message, store and publish, each alone) and a
   straightforward one-message-at-a-time pipeline;
3. runs ``cdgi run`` daemons (subprocesses) on SQLite and PostgreSQL, one process and two
   competing ones, publishing the whole mix wave by wave and timing from the first publish to
   the last receipt at the partners;
4. publishes a part of the mix at a fixed rate of half the measured maximum (one process) and
   reports the latency from each publish to its receipt at the partner, p50 and p99.

Every figure is printed beside its limit and target (PASS or short). Everything made has names
of its own (token directory, broker prefix, databases) and is removed afterwards.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import command_line, create_database, drop_database, verdict  # noqa: E402
from bench.daemonrun import RunResult, run_mix  # noqa: E402
from bench.limits import measure, open_card, straightforward  # noqa: E402
from bench.mix import build  # noqa: E402
from tests.support.softhsm import make_token  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=400,
                        help="enterprises in the mix (about 19.5 messages each)")
    parser.add_argument("--latency-enterprises", type=int, default=40,
                        help="enterprises published at half the maximum rate")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--sample", type=int, default=400, help="messages for the limits")
    args = parser.parse_args()
    stores = args.stores.split(",")
    head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
                          capture_output=True, text=True, check=False).stdout.strip()
    print(f"commit {head}")

    mix = build(args.enterprises)
    print(mix.composition())
    smallest = min(map(len, mix.waves))
    print(f"  smallest wave {smallest} messages; the daemon runs publish each enterprise's next "
          "step once the receipts of its previous step came (as partners answer)", flush=True)
    sample = mix.sample(args.sample)

    with tempfile.TemporaryDirectory(prefix="cdgi-bench-") as tmpdir:
        tmp = Path(tmpdir)
        token = make_token(tmp / "card", token_label="CDGI-BENCH", key_label="bench")
        card = open_card(token.env)
        urls: dict[str, str] = {}
        names: list[str | None] = []
        try:
            for kind in stores:
                url, name = create_database(kind, tmp)
                urls[kind] = url
                names.append(name)
            print("\nmeasuring the stages alone ...", flush=True)
            limits = measure(mix, sample, card, urls)
            print("measuring the straightforward pipeline ...", flush=True)
            plain = straightforward(mix, sample[:200], card, urls[stores[0]])
        finally:
            card.close()
            for name in names:
                drop_database(name)
        print(limits.table(stores), flush=True)
        print(f"straightforward pipeline ({stores[0]}): {plain:.1f} msg/s", flush=True)

        runs: dict[tuple[str, int], RunResult] = {}
        for kind in stores:
            for procs in (1, 2):
                print(f"\ndaemon run: {kind}, {procs} process(es), {len(mix.messages)} messages "
                      "...", flush=True)
                # Each enterprise's next step once its previous step was receipted: competing
                # daemons cannot take a message before its cause (a wave-size rule could not
                # promise that when one daemon waits for the other's lock).
                r = run_mix([mix], token_env=token.env, store=kind, processes=procs, tmp=tmp,
                            follow=True)
                runs[(kind, procs)] = r
                print(f"  {r.rate:.1f} msg/s, {r.receipted}/{r.sent} receipted, refused "
                      f"{r.refused}, outbound {r.outbound}, exit {r.exit_codes}", flush=True)
                print("\n".join("  " + line for line in r.cpu_lines()), flush=True)
        latency: dict[str, RunResult] = {}
        sub = mix.subset(args.latency_enterprises)
        for kind in stores:
            rate = 0.5 * runs[(kind, 1)].rate
            print(f"\nlatency run: {kind}, {len(sub.messages)} messages at {rate:.1f} msg/s ...",
                  flush=True)
            latency[kind] = run_mix([sub], token_env=token.env, store=kind, processes=1,
                                    tmp=tmp, rate=rate)

    print("\n" + "=" * 100)
    print(f"RESULTS  ({len(mix.messages)} messages of the business mix, "
          f"{mix.signatures_per_message:.2f} signatures per message; 2 cores)")
    print(f"{'figure':<44} {'value':>10} {'limit/base':>11} {'ratio':>7} {'target':>8}  verdict")
    for kind in stores:
        lim = limits.limit(kind)
        one, two = runs[(kind, 1)], runs[(kind, 2)]
        print(f"{kind + ' physical limit (card.sign_envelope)':<44} {lim:10.1f}")
        print(f"{kind + ' physical limit (raw PKCS#11 sign)':<44} "
              f"{limits.limit(kind, raw_sign=True):10.1f}")
        print(f"{kind + ' 1 process, msg/s':<44} {one.rate:10.1f} {lim:11.1f} "
              f"{one.rate / lim:7.3f} {'>= 0.85':>8}  {verdict(one.rate / lim, 0.85)}")
        print(f"{kind + ' 1 process vs straightforward':<44} {one.rate:10.1f} {plain:11.1f} "
              f"{one.rate / plain:7.2f} {'>= 4':>8}  {verdict(one.rate / plain, 4)}")
        print(f"{kind + ' 2 processes, msg/s':<44} {two.rate:10.1f} {one.rate:11.1f} "
              f"{two.rate / one.rate:7.2f} {'>= 1.7':>8}  {verdict(two.rate / one.rate, 1.7)}")
        print(f"{kind + ' 2 processes vs 1-process limit':<44} {two.rate:10.1f} {lim:11.1f} "
              f"{two.rate / lim:7.3f}")
        lat = latency[kind]
        print(f"{kind + ' latency p50 at 0.5 x max (ms)':<44} {lat.p(50):10.0f} "
              f"{'rate ' + format(lat.rate_target or 0, '.1f'):>11} "
              f"{'(achieved ' + format(lat.rate, '.1f') + '/s)':>16}")
        print(f"{kind + ' latency p99 at 0.5 x max (ms)':<44} {lat.p(99):10.0f}")
        for label, r in (("1p", one), ("2p", two), ("latency", lat)):
            print(f"  {kind} {label}: receipted {r.receipted}/{r.sent}, non-0000 receipts "
                  f"{r.refused} {dict(r.codes)}, outbound received {r.outbound} (expected "
                  f"{round(r.sent * mix.signatures_per_message)}), exit codes {r.exit_codes}"
                  + (", each enterprise's step published once its previous one was receipted"
                     if r.follow else ""))
    print(f"\nreproduce: {command_line()}")


if __name__ == "__main__":
    main()
