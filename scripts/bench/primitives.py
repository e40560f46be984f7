"""Throughput of signatures, the codec and Merkle roots; JSON on stdout, progress on stderr.

Baselines are measured in the same run: thread-pool verification is compared
with one thread, and our canonical codec with plain msgpack (no checks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable

import msgpack

from consensus import codec, merkle
from consensus.crypto import DOMAIN_TX, VERIFY_THREADS, PrivateKey, SignedItem, verify_batch
from node.app.types import AnchorPayload, Tx


def rate(label: str, fn: Callable[[], object], min_seconds: float, ops: int = 1) -> float:
    """Operations per second of ``fn``, which does ``ops`` operations per call."""
    fn()  # warm up caches and the thread pool
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds:
        fn()
        done += ops
    per_second = done / elapsed
    print(f"  {label:<34} {per_second:>12,.0f} /s", file=sys.stderr)
    return per_second


BENCH_GENESIS = bytes(32)
"""A stand-in genesis hash to sign for."""


def typical_tx(key: PrivateKey) -> Tx:
    payload = AnchorPayload(
        digest=os.urandom(32),
        size=1_048_576,
        media_type="text/csv",
        parents=tuple(sorted(os.urandom(32) for _ in range(2))),
        metadata=(("dataset", "payments-2026-q3"), ("owner", "bank-a")),
    )
    return Tx.create(key, "vigil-bench", BENCH_GENESIS, payload, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum time per figure")
    args = parser.parse_args()
    s = args.seconds
    key = PrivateKey.generate()
    message = os.urandom(200)
    signature = key.sign(DOMAIN_TX, BENCH_GENESIS, message)
    batch = [SignedItem(key.public, DOMAIN_TX, BENCH_GENESIS, message, signature)] * 2048
    tx = typical_tx(key)
    raw = tx.encode()
    wire = tx.to_wire()
    leaves = [os.urandom(200) for _ in range(1000)]

    print("vigil primitives benchmark", file=sys.stderr)
    n = len(batch)
    sign = rate("ed25519 sign", lambda: key.sign(DOMAIN_TX, BENCH_GENESIS, message), s)
    verify_1 = rate("ed25519 verify, 1 thread", lambda: verify_batch(batch, threads=1), s, n)
    pool_label = f"ed25519 verify, pool of {VERIFY_THREADS}"
    verify_pool = rate(pool_label, lambda: verify_batch(batch), s, n)
    enc = rate("tx encode (Vigil record)", tx.encode, s)
    dec = rate("tx decode (canonical, validated)", lambda: Tx.decode(raw), s)
    raw_enc = rate("tx encode (plain msgpack)", lambda: msgpack.packb(wire), s)
    raw_dec = rate("tx decode (plain msgpack)", lambda: msgpack.unpackb(raw), s)
    canon_dec = rate("tx decode (codec only)", lambda: codec.decode(raw, allow_float=True), s)
    roots = rate("merkle root of 1,000 leaves", lambda: merkle.root(leaves), s)

    result = {
        "benchmark": "primitives",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "ed25519": {
            "sign_per_s": round(sign),
            "verify_per_s_1_thread": round(verify_1),
            "verify_per_s_pool": round(verify_pool),
            "pool_threads": VERIFY_THREADS,
            "pool_vs_1_thread": round(verify_pool / verify_1, 2),
        },
        "tx_codec": {
            "tx_bytes": len(raw),
            "encode_per_s": round(enc),
            "decode_per_s": round(dec),
            "codec_only_decode_per_s": round(canon_dec),
            "baseline_plain_msgpack_encode_per_s": round(raw_enc),
            "baseline_plain_msgpack_decode_per_s": round(raw_dec),
            "decode_vs_plain_msgpack": round(dec / raw_dec, 3),
        },
        "merkle": {
            "leaves": len(leaves),
            "roots_per_s": round(roots),
            "ms_per_root": round(1000 / roots, 3),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
