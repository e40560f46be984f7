"""The application's CPU per score transaction, phase by phase, against one signature check.

Every node must verify every client signature once, and must also run the
application on every transaction: decode it, admit it, digest and validate
(execute) the block that holds it, commit it. ``scripts/bench/localnet``
divides the pool's verification rate by the nodes to get its ceiling, so a
network whose nodes spent nothing on the event loop, the peers, the API or
thread hand-offs would still only reach
``ratio_bound = verify_us / (verify_us + app_us)`` of that ceiling. This
benchmark measures both terms in one process, on one thread (CPU time of that
thread), on a real ledger over LevelDB: a primary builds each block of
pre-signed score transactions, a replica, timed, does what every other node
does with it. The baseline is one thread's signature check, measured in the
same run. Each phase's figure is its best block (this machine's neighbours
move single runs by tens of percent), so ``ratio_bound`` errs high, as a bound
should. JSON goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from localnet import (  # the sibling script
    MODEL_NAME,
    TX_EXPIRY_BLOCKS,
    model_training_data,
    score_tx,
    train_model,
)

from consensus.certificate import Certificate, Vote, commit_message
from consensus.crypto import DOMAIN_COMMIT, DOMAIN_TX, PrivateKey, SignedItem, verify_batch
from node.app.genesis import DEFAULT_PARAMS, Client, Genesis, Member
from node.app.ledger import Ledger
from node.app.types import Block, CallPayload, Receipt, Tx
from node.store import Store
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value, encode_value

CHAIN_ID = "vigil-bench"
MEMBERS = [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(4)]
CLIENT = PrivateKey.from_seed(b"b" * 32)
PHASES = ("decode", "admit", "digest", "validate", "commit")
MAX_BLOCK = int(DEFAULT_PARAMS["max_block_txs"])
"""A block holds at most this many transactions under the default parameters."""
T = TypeVar("T")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def genesis() -> Genesis:
    members = tuple(
        Member(f"org{i}", k.public, f"127.0.0.1:{100 + i}", f"127.0.0.1:{200 + i}", (k.public,))
        for i, k in enumerate(MEMBERS)
    )
    client = Client(CLIENT.public, "org0", ("admin", "score", "submit"))
    return Genesis(CHAIN_ID, 0, members, (client,), tuple(sorted(DEFAULT_PARAMS.items())))


class Chain:
    """A primary that builds and a replica that follows, on one genesis, certified by 3 of 4."""

    def __init__(self, directory: Path) -> None:
        self.genesis = genesis()
        self.hash = self.genesis.hash()
        self.primary = self._ledger(directory / "primary")
        self.replica = self._ledger(directory / "replica")

    def _ledger(self, path: Path) -> Ledger:
        # the ledger's clock is fixed, as in a replay: blocks carry no wall-clock surprises
        return Ledger(Store(path, create=True), self.genesis, clock_ms=lambda: 1_000)

    def sign(self, payload: Any, key: PrivateKey = CLIENT) -> Tx:
        return Tx.create(key, CHAIN_ID, self.hash, payload, TX_EXPIRY_BLOCKS)

    def propose(self, txs: list[Tx]) -> tuple[int, bytes, Certificate]:
        """The primary admits and builds the next block; its certificate."""
        self.primary.admit_many(txs)
        height = self.primary.height + 1
        validators = self.primary.validators(height)
        block = self.primary.build(height, 0, validators[height % len(validators)], txs).block
        digest = Block.decode(block).hash()
        message = commit_message(height, 0, digest)
        votes = sorted((Vote(k.public, k.sign(DOMAIN_COMMIT, self.hash, message))
                        for k in MEMBERS[:3]), key=lambda v: v.encode())  # fmt: skip
        return height, block, Certificate(height, 0, digest, tuple(votes))

    def commit_both(self, txs: list[Tx]) -> list[Receipt]:
        """Set-up: one block committed on both ledgers; its receipts, each of which must be ok."""
        height, block, cert = self.propose(txs)
        self.primary.commit(block, cert)
        self.replica.commit(block, cert)
        receipts = [Receipt.decode(r) for r in self.replica.store.receipts(height) or []]
        failed = [r.error for r in receipts if r.status != "ok"]
        if len(receipts) != len(txs) or failed:
            raise SystemExit(f"set-up block {height} failed: {failed or 'transactions missing'}")
        return receipts

    def govern(self, kind: str, args: dict) -> None:
        """org0's member proposes; three members vote yes."""
        propose = CallPayload("governance", "propose", encode_value([kind, args], MAX_VALUE_BYTES))
        [receipt] = self.commit_both([self.sign(propose, MEMBERS[0])])
        pid = decode_value(receipt.result, MAX_VALUE_BYTES)
        vote = encode_value([pid, True], MAX_VALUE_BYTES)
        ballot = CallPayload("governance", "vote", vote)
        self.commit_both([self.sign(ballot, k) for k in MEMBERS[:3]])


def set_up(chain: Chain) -> None:
    """What the network benchmark sets up for scores: anchored training data, then a model
    approved and activated by governance, its artifact on both nodes."""
    data, anchor = model_training_data()
    chain.commit_both([chain.sign(anchor)])
    model = train_model(data, anchor)
    for ledger in (chain.primary, chain.replica):
        ledger.store.put_artifact(model.model_id, model.data)
    anchors = sorted({a for sub in model.contributors for a in sub.anchors})
    chain.govern("approve_model", {"name": MODEL_NAME, "model_id": model.model_id,
                                   "size": len(model.data), "contributors": {},
                                   "anchors": anchors})  # fmt: skip
    chain.govern("activate_model", {"name": MODEL_NAME, "version": 1})


def timed(spent: dict[str, float], phase: str, fn: Callable[[], T]) -> T:
    started = time.thread_time()
    result = fn()
    spent[phase] += time.thread_time() - started
    return result


def replica_round(chain: Chain, txs: list[Tx], spent: dict[str, float]) -> None:
    """One block of ``txs``: the primary builds it; the replica's phases are timed."""
    raws = [t.encode() for t in txs]
    height, block, cert = chain.propose([Tx.decode(r) for r in raws])
    if len(Block.decode(block).txs) != len(txs):
        raise SystemExit(f"the primary left transactions out of block {height}")
    replica = chain.replica
    decoded = timed(spent, "decode", lambda: [Tx.decode(r) for r in raws])
    replica.signatures.verify(decoded)  # the baseline's work, not timed: admission finds it done
    refused = timed(spent, "admit", lambda: replica.admit_many(decoded))
    timed(spent, "digest", lambda: replica.block_digest(block))
    problem = timed(spent, "validate", lambda: replica.validate(height, block))
    timed(spent, "commit", lambda: replica.commit(block, cert))
    chain.primary.commit(block, cert)
    receipts = [Receipt.decode(r) for r in replica.store.receipts(height) or []]
    failed = [r.error for r in receipts if r.status != "ok"]
    if any(refused) or problem is not None or failed or len(receipts) != len(txs):
        refusals = [r for r in refused if r]
        raise SystemExit(f"block {height} did not go through cleanly: refused {refusals}, "
                         f"invalid: {problem}, failed: {failed}")  # fmt: skip


def verify_us(chain: Chain, txs: list[Tx], repeats: int = 5) -> float:
    """One thread's CPU per signature check of these transactions (the best of ``repeats``)."""
    items = [SignedItem(t.sender, DOMAIN_TX, chain.hash, t.body_bytes(), t.signature) for t in txs]
    best = float("inf")
    for _ in range(repeats):
        started = time.thread_time()
        verdicts = verify_batch(items, threads=1)
        best = min(best, time.thread_time() - started)
        if not all(verdicts):
            raise SystemExit("a benchmark transaction's signature did not verify")
    return 1e6 * best / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=int, default=250,
                        help="score transactions per block (the network benchmark's blocks "
                             "hold about 250)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=8, help="blocks; the first warms up")
    args = parser.parse_args()
    if not 1 <= args.block <= MAX_BLOCK:
        parser.error(f"--block must be 1..{MAX_BLOCK} (max_block_txs), got {args.block}")
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2 (the first warms up), got {args.rounds}")
    with tempfile.TemporaryDirectory(prefix="vigil-app-bench-") as tmp:
        chain = Chain(Path(tmp))
        log("vigil application benchmark: setting up a model by governance")
        set_up(chain)
        rng = np.random.default_rng(1)
        blocks = [[score_tx(CLIENT, CHAIN_ID, chain.hash, r * args.block + i, rng)
                   for i in range(args.block)] for r in range(args.rounds)]  # fmt: skip
        best = dict.fromkeys(PHASES, float("inf"))
        for r, txs in enumerate(blocks):
            spent = dict.fromkeys(PHASES, 0.0)
            replica_round(chain, txs, spent)
            if r > 0:  # the first block warms up (caches, the scoring kernel)
                best = {phase: min(best[phase], spent[phase]) for phase in PHASES}
            log(f"  block {r + 1}/{args.rounds} of {args.block} scores committed")
        verify = verify_us(chain, [t for txs in blocks for t in txs][:2_000])
    per_tx = {phase: round(1e6 * seconds / args.block, 1) for phase, seconds in best.items()}
    app = round(sum(per_tx.values()), 1)
    result = {
        "benchmark": "app",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "kind": "score",
        "block_txs": args.block,
        "rounds": args.rounds - 1,
        "us_per_tx": per_tx,
        "app_us_per_tx": app,
        "verify_us_per_tx": round(verify, 1),
        "app_to_verify": round(app / verify, 3),
        "ratio_bound": round(verify / (verify + app), 3),
    }
    log(f"  application {app} us a transaction, a signature check {verify:.1f} us: "
        f"at most {result['ratio_bound']} of the ceiling")  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
