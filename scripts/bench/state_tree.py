"""What the authenticated state costs: tree updates, proof sizes and verification time.

For each state size (default 1k, 10k, 100k, 1M keys) a sparse Merkle tree
(consensus/smt.py) is built in a real LevelDB (plyvel, as a node stores it),
then measured:

* ``update_ms``: one block's tree update (``--batch`` writes: half changed
  keys, half new ones), nodes read from LevelDB through the ledger's node
  cache (empty at the start of each size), and the synced write batch;
* ``proof_bytes`` and ``verify_us``: a proof of a present key and of an
  absent one, encoded as the API sends it, and the time to check it;
* ratios against the smallest size measured in the same run, and against the
  chained write-set digest that the tree replaced (``chained_digest_ms``).

JSON goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import tempfile
import time

import plyvel

from consensus import codec, smt
from node.app.ledger import MAX_TREE_NODE_CACHE

TREE = b"tree/"


def chained_digest(previous: bytes, writes: dict[bytes, bytes | None]) -> bytes:
    """The state root before the tree: a digest of the sorted write set chained on."""
    ordered = [[k, writes[k]] for k in sorted(writes)]
    return hashlib.sha256(previous + hashlib.sha256(codec.encode(ordered)).digest()).digest()


def key(i: int) -> bytes:
    return b"contract/bench\x00k" + i.to_bytes(8, "big")


def value(i: int, round_: int) -> bytes:
    return hashlib.sha256(f"{i}/{round_}".encode()).digest() * 2


def build(db: plyvel.DB, size: int) -> bytes:
    """Load ``size`` keys into an empty tree in chunks, as blocks would (progress shown)."""
    root, chunk, done = smt.EMPTY, 50_000, 0
    while done < size:
        n = min(chunk, size - done)
        result = smt.update(
            lambda h: db.get(TREE + h), root, {key(i): value(i, 0) for i in range(done, done + n)}
        )
        with db.write_batch() as batch:
            for digest in result.removed:
                batch.delete(TREE + digest)
            for digest, raw in result.added.items():
                batch.put(TREE + digest, raw)
        root, done = result.root, done + n
        print(f"  {size:>9,} keys: loaded {done:,}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return root


def measure(size: int, batch: int, rounds: int, probes: int, rng: random.Random) -> dict:
    with tempfile.TemporaryDirectory(prefix="vigil-smt-") as tmp:
        db = plyvel.DB(tmp, create_if_missing=True)
        try:
            root = build(db, size)
            cache = smt.NodeCache(lambda h: db.get(TREE + h), MAX_TREE_NODE_CACHE)
            read = cache.get
            update_ms, digest_ms, fresh = [], [], size
            written: dict[bytes, bytes | None] = {}
            for r in range(1, rounds + 1):
                writes: dict[bytes, bytes | None] = {
                    key(rng.randrange(size)): value(r, r) for _ in range(batch // 2)
                }
                for _ in range(batch - len(writes)):
                    writes[key(fresh)] = value(fresh, r)
                    fresh += 1
                start = time.perf_counter()
                result = smt.update(read, root, writes)
                with db.write_batch(sync=True) as wb:
                    for digest in result.removed:
                        wb.delete(TREE + digest)
                    for digest, raw in result.added.items():
                        wb.put(TREE + digest, raw)
                cache.add(result.added)
                update_ms.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                chained_digest(root, writes)
                digest_ms.append((time.perf_counter() - start) * 1000)
                root = result.root
                written.update(writes)
            sizes, verify_us, depths = [], [], []
            for n in range(probes):
                present = n % 2 == 0
                i = rng.randrange(size)
                k = key(i) if present else b"absent" + n.to_bytes(4, "big")
                v = written.get(k, value(i, 0)) if present else None
                proof = smt.prove(read, root, k)
                encoded = codec.encode(proof.to_wire())
                sizes.append(len(encoded))
                depths.append(len(proof.siblings))
                start = time.perf_counter()
                smt.verify(root, k, v, proof)
                verify_us.append((time.perf_counter() - start) * 1e6)
        finally:
            db.close()
    update_ms.sort()
    return {
        "keys": size,
        "batch": batch,
        "update_ms_median": round(update_ms[len(update_ms) // 2], 2),
        "update_ms_max": round(update_ms[-1], 2),
        "chained_digest_ms_median": round(sorted(digest_ms)[len(digest_ms) // 2], 3),
        "proof_bytes_mean": round(sum(sizes) / len(sizes), 1),
        "proof_bytes_max": max(sizes),
        "proof_siblings_mean": round(sum(depths) / len(depths), 1),
        "verify_us_mean": round(sum(verify_us) / len(verify_us), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--batch", type=int, default=1000, help="writes per block")
    parser.add_argument("--rounds", type=int, default=5, help="blocks measured per size")
    parser.add_argument("--probes", type=int, default=400, help="proofs measured per size")
    args = parser.parse_args()
    rng = random.Random(7)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"{size:,} keys", file=sys.stderr)
        results.append(measure(size, args.batch, args.rounds, args.probes, rng))
    base = results[0]
    for r in results:
        r["update_vs_smallest"] = round(r["update_ms_median"] / base["update_ms_median"], 2)
        r["update_vs_chained_digest"] = round(
            r["update_ms_median"] / max(r["chained_digest_ms_median"], 1e-3), 1
        )
    out = {
        "benchmark": "state_tree",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "sizes": results,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
