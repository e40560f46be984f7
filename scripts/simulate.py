"""Run many seeded PBFT schedules in parallel; replay one with a readable trace.

    scripts/simulate --seeds 10000 [--start S] [--nodes N] [--byzantine K] [--jobs J]
    scripts/simulate --replay SEED --nodes N --byzantine K
    scripts/simulate --app ledger ...     (the real application: node/sim/ledger_kit.py)

Without --nodes, each seed picks its own size from 1, 4 and 7 replicas and,
without --byzantine, its own number of Byzantine replicas from 0 to f. The
last line is always ``N passed, M failed``; each failure prints its seed and
the command that replays it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

from consensus.certificate import max_faulty
from consensus.sim.simulator import SimConfig, SimResult, Simulation

SIZES = (4, 4, 4, 7, 1)


def shape(seed: int, nodes: int | None, byzantine: int | None) -> tuple[int, int]:
    """The (n, Byzantine count) a seed runs with."""
    n = SIZES[seed % len(SIZES)] if nodes is None else nodes
    k = (seed // len(SIZES)) % (max_faulty(n) + 1) if byzantine is None else byzantine
    return n, k


def config(seed: int, n: int, k: int, app: str, *, trace: bool = False) -> SimConfig:
    """The simulator's configuration for one seed of the toy or the real application."""
    if app == "ledger":
        from node.sim.ledger_kit import ledger_config

        return ledger_config(seed, n, k, trace=trace)
    return SimConfig(seed=seed, nodes=n, byzantine=k, trace=trace)


def run_one(args: tuple[int, int | None, int | None, str]) -> tuple[int, int, int, bool, str]:
    seed, nodes, byzantine, app = args
    n, k = shape(seed, nodes, byzantine)
    result = Simulation(config(seed, n, k, app)).run()
    return seed, n, k, result.ok, result.summary()


def replay_command(seed: int, n: int, k: int, app: str = "toy") -> str:
    flag = " --app ledger" if app == "ledger" else ""
    return f"scripts/simulate{flag} --replay {seed} --nodes {n} --byzantine {k}"


def replay(seed: int, nodes: int | None, byzantine: int | None, app: str = "toy") -> int:
    n, k = shape(seed, nodes, byzantine)
    result: SimResult = Simulation(config(seed, n, k, app, trace=True)).run()
    print(f"seed {seed}: n={n}, byzantine={k}, schedule={result.schedule}")
    for line in result.trace:
        print(line)
    print(f"heights: {result.heights}")
    print(f"stats: {result.stats}")
    print(result.summary())
    print(f"{int(result.ok)} passed, {int(not result.ok)} failed")
    return 0 if result.ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--nodes", type=int, default=None, help="replicas (default: per seed)")
    parser.add_argument(
        "--byzantine",
        type=int,
        default=None,
        help="Byzantine replicas (default: per seed, up to f)",
    )
    parser.add_argument(
        "--app",
        choices=("toy", "ledger"),
        default="toy",
        help="the application: the toy ledger (fast) or the real one on in-memory storage",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument(
        "--replay", type=int, default=None, metavar="SEED", help="run one seed with a full trace"
    )
    args = parser.parse_args()
    if (
        args.nodes is not None
        and args.byzantine is not None
        and args.byzantine > max_faulty(args.nodes)
    ):
        parser.error(
            f"--byzantine {args.byzantine} exceeds f = {max_faulty(args.nodes)} "
            f"for {args.nodes} nodes"
        )
    if args.replay is not None:
        return replay(args.replay, args.nodes, args.byzantine, args.app)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    work = [
        (s, args.nodes, args.byzantine, args.app)
        for s in range(args.start, args.start + args.seeds)
    ]
    passed = failed = 0
    started = time.monotonic()
    tty = sys.stderr.isatty()
    with multiprocessing.get_context("fork").Pool(max(1, args.jobs)) as pool:
        for done, (seed, n, k, ok, summary) in enumerate(
            pool.imap_unordered(run_one, work, chunksize=8), 1
        ):
            if ok:
                passed += 1
            else:
                failed += 1
                print(
                    f"\nFAILED {summary}\n  replay: {replay_command(seed, n, k, args.app)}",
                    flush=True,
                )
            if tty or done % max(1, args.seeds // 20) == 0 or done == args.seeds:
                rate = done / max(time.monotonic() - started, 1e-9)
                end = "\r" if tty and done < args.seeds else "\n"
                print(
                    f"[{done}/{args.seeds}] {passed} passed, {failed} failed, {rate:.1f} seeds/s",
                    end=end,
                    file=sys.stderr,
                    flush=True,
                )
    print(f"elapsed {time.monotonic() - started:.1f} s", file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
