"""Hypothesis strategies for Vigil's ledger records, shared by the test modules."""

from __future__ import annotations

import hashlib

from hypothesis import strategies as st

from consensus import codec, merkle
from consensus.certificate import Certificate, Vote, commit_message
from consensus.crypto import DOMAIN_COMMIT, PrivateKey
from node.app.genesis import DEFAULT_PARAMS, ROLES, Client, Genesis, Member
from node.app.types import (
    AnchorPayload,
    Block,
    CallPayload,
    DeployPayload,
    Event,
    Header,
    Receipt,
    ScorePayload,
    Tx,
    tx_root,
)
from vm.gas import MAX_VALUE_BYTES
from vm.values import encode_value

CHAIN = "vigil-test"
CHAIN_HASH = hashlib.sha256(b"vigil-test/genesis").digest()
"""The genesis hash records in these strategies are signed for."""
KEYS = [PrivateKey.from_seed(bytes([i]) * 32) for i in range(1, 8)]

hashes = st.binary(min_size=32, max_size=32)
names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
small_text = st.text(max_size=20)
plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=20)
    | small_text,
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=10,
).map(lambda v: tuple(v) if isinstance(v, list) else v)


def _freeze(v: object) -> object:
    return tuple(_freeze(x) for x in v) if isinstance(v, list | tuple) else v


@st.composite
def anchor_payloads(draw: st.DrawFn) -> AnchorPayload:
    digest = draw(hashes)
    parents = draw(st.lists(hashes.filter(lambda h: h != digest), max_size=4, unique=True))
    metadata = draw(
        st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9._-]{0,8}", fullmatch=True), small_text, max_size=4
        )
    )
    return AnchorPayload(
        digest,
        draw(st.integers(0, 2**40)),
        draw(st.sampled_from(["text/csv", "application/octet-stream", "image/png"])),
        tuple(sorted(parents)),
        tuple(sorted(metadata.items())),
    )


call_payloads = st.builds(
    CallPayload,
    names,
    names,
    st.lists(plain_values, max_size=4).map(lambda a: encode_value(list(a), MAX_VALUE_BYTES)),
)
deploy_payloads = st.builds(DeployPayload, names, st.binary(max_size=200))
score_payloads = st.builds(
    ScorePayload,
    names,
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=8).map(tuple),
    small_text,
)
payloads = anchor_payloads() | call_payloads | deploy_payloads | score_payloads


@st.composite
def txs(draw: st.DrawFn) -> Tx:
    key = draw(st.sampled_from(KEYS))
    return Tx.create(
        key,
        CHAIN,
        CHAIN_HASH,
        draw(payloads),
        draw(st.integers(1, 2**40)),
        nonce=draw(st.binary(min_size=16, max_size=16)),
    )


def headers_for(txs_: tuple[Tx, ...]) -> st.SearchStrategy[Header]:
    return st.builds(
        Header,
        st.just(CHAIN),
        st.integers(1, 2**40),
        hashes,
        st.integers(0, 2**45),
        st.integers(0, 1000),
        st.sampled_from([k.public for k in KEYS]),
        st.just(len(txs_)),
        st.just(tx_root(txs_)),
        hashes,
        hashes,
        hashes,
    )


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    items = draw(st.lists(txs(), max_size=4, unique_by=lambda t: t.id))
    return Block(draw(headers_for(tuple(items))), tuple(items))


headers = headers_for(())

events = st.builds(Event, names, plain_values)
receipts = st.one_of(
    st.builds(
        Receipt,
        hashes,
        st.just("ok"),
        st.integers(0, 10**9),
        plain_values,
        st.lists(events, max_size=3).map(tuple),
        st.just(""),
    ),
    st.builds(
        Receipt,
        hashes,
        st.sampled_from(["reverted", "invalid"]),
        st.integers(0, 10**9),
        st.none(),
        st.just(()),
        st.text(min_size=1, max_size=30),
    ),
)


@st.composite
def certificates(draw: st.DrawFn) -> Certificate:
    height = draw(st.integers(1, 2**40))
    view = draw(st.integers(0, 100))
    block_hash = draw(hashes)
    signers = draw(st.lists(st.sampled_from(KEYS), min_size=1, unique=True))
    msg = commit_message(height, view, block_hash)
    votes = sorted(
        (Vote(k.public, k.sign(DOMAIN_COMMIT, CHAIN_HASH, msg)) for k in signers),
        key=lambda v: v.encode(),
    )
    return Certificate(height, view, block_hash, tuple(votes))


@st.composite
def geneses(draw: st.DrawFn) -> Genesis:
    n = draw(st.integers(1, 4))
    members = [
        Member(
            f"org{i}",
            KEYS[i].public,
            f"127.0.0.1:{26600 + i}",
            f"127.0.0.1:{26700 + i}",
            (KEYS[-1 - i].public,),
        )
        for i in range(n)
    ]
    clients = sorted(
        (
            Client(
                k.public,
                f"org{draw(st.integers(0, n - 1))}",
                tuple(sorted(draw(st.sets(st.sampled_from(ROLES), min_size=1)))),
            )
            for k in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=3))
        ),
        key=lambda c: c.key,
    )
    params = {**DEFAULT_PARAMS, "max_block_txs": draw(st.integers(1, 5000))}
    return Genesis(
        CHAIN,
        draw(st.integers(0, 2**45)),
        tuple(members),
        tuple(clients),
        tuple(sorted(params.items())),
    )


ALL_RECORDS = {
    "tx": txs(),
    "header": headers,
    "block": blocks(),
    "receipt": receipts,
    "certificate": certificates(),
    "genesis": geneses(),
}

__all__ = ["ALL_RECORDS", "CHAIN", "CHAIN_HASH", "KEYS", "codec", "merkle"]
