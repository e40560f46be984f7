"""The simulated consortium's client traffic: every transaction kind, and governance stories.

Background traffic, drawn from the seed: anchors with lineage, parameter
proposals and votes, ``score`` transactions, and calls to a deployed contract
(scoring through ``ledger.score``, gas-heavy loops, some past ``max_tx_gas``,
and bulky notes that fill blocks to ``max_block_bytes``).

Governance stories, each carried through proposal and votes the way members
would (the client reads committed state from the most advanced honest node,
as the CLI reads a node): allow the contract's code and deploy it; approve the
model and activate it (its artifact is "published" when approval is proposed
and reaches each node at its own, seeded time, some of them late); in seeds
with validator-set changes, add the spare node as a member and later remove
one of the original members, so the validator set follows governance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from consensus.crypto import PrivateKey
from ml.forest import Model
from ml.train import TrainParams, train
from node.app.contracts import CODE
from node.app.state import Overlay, storage_key
from node.app.types import (
    NONCE_BYTES,
    AnchorPayload,
    CallPayload,
    DeployPayload,
    ScorePayload,
    Tx,
)
from vm.bytecode import code_hash
from vm.compiler import compile_to_bytes
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value, encode_value

CONTRACT = "screen"
CONTRACT_SOURCE = """
def check(name, features):
    return ledger.score(name, features)


def spin(n):
    total = 0
    for i in range(n):
        total = total + i
    return total


def note(blob):
    ledger.put("last_note", len(blob))
    return len(blob)
"""
MODEL_NAME = "fraud"
FEATURES = ("amount", "hour", "country")
SPIN_STEPS = (10, 300, 3_000, 1_000_000)
"""Loop lengths for ``spin``: the last is far past ``max_tx_gas`` and runs out of gas."""
NOTE_BYTES = (512, 4_096, 9_000)
"""Blob sizes for ``note``: a few of the largest fill a block to ``max_block_bytes``."""
REPROPOSE_TICKS = 12
"""Ticks to wait for a proposal to appear in state before proposing it again."""
MAX_PROPOSALS_READ = 8
"""New proposals the client reads from state per tick (a bound on the client's work)."""


@lru_cache(maxsize=1)
def sim_model() -> Model:
    """A small real model (trained once per process): the artifact every seed scores with."""
    rng = np.random.default_rng(11)
    data = rng.normal(0, 1, size=(200, len(FEATURES)))
    return train(data, FEATURES, TrainParams(n_estimators=8)).model


@lru_cache(maxsize=1)
def contract_code() -> bytes:
    return compile_to_bytes(CONTRACT_SOURCE, f"{CONTRACT}.py")


@dataclass
class Story:
    """One governance action to carry through: propose once, then gather votes."""

    kind: str
    args: dict
    after: str | None = None
    """The story (by kind) that must be done first; the others run side by side."""
    pid: int | None = None
    proposed_at: int = -REPROPOSE_TICKS
    done: bool = False
    voted: set[str] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    """Its proposals that were rejected or expired."""


def _read(state: Overlay, contract: str, key: str) -> Any:
    raw = state.get(storage_key(contract, key))
    return None if raw is None else decode_value(raw, MAX_VALUE_BYTES)


class Workload:
    """Makes the next signed request; the kit calls it once per client tick."""

    def __init__(self, chain_id: str, genesis_hash: bytes, client: PrivateKey) -> None:
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.client = client
        self.anchors: list[bytes] = []
        self.param_proposals = 0
        self.ticks = 0
        self.stories: list[Story] = []
        self.seen_proposals = 0
        self.proposed: list[tuple[int, str, Any]] = []
        """(id, kind, args) of proposals of the stories' kinds seen in committed state."""
        self.deploy_sent = -REPROPOSE_TICKS
        self.published_at: int | None = None
        """Virtual time the model artifact was first published (approval proposed)."""

    def plan(self, members: dict[str, bytes], spare: tuple[str, bytes] | None, victim: str) -> None:
        """The governance stories of one seed, in order."""
        model = sim_model()
        self.stories = [
            Story("allow_deploy", {"name": CONTRACT, "code_hash": code_hash(contract_code())}),
            Story(
                "approve_model",
                {
                    "name": MODEL_NAME,
                    "model_id": model.model_id,
                    "size": len(model.data),
                    "contributors": {org: 1 for org in sorted(members)[:2]},
                    "anchors": [hashlib.sha256(b"vigil-sim/training").digest()],
                },
            ),
            Story("activate_model", {"name": MODEL_NAME, "version": 1}, after="approve_model"),
        ]
        if spare is not None:
            org, key = spare
            self.stories.append(
                Story(
                    "add_member",
                    {
                        "org": org,
                        "node_key": key,
                        "peer": "127.0.0.1:7999",
                        "api": "127.0.0.1:8999",
                        "admins": [key],
                    },
                )
            )
            self.stories.append(Story("remove_member", {"org": victim}, after="add_member"))

    # ------------------------------------------------------------ one tick

    def next_requests(
        self,
        rng: Any,
        now: int,
        view: tuple[Overlay, int],
        admins: dict[str, PrivateKey],
        until: int,
    ) -> list[bytes]:
        """One tick's requests: a background transaction and the current story's next step
        (a proposal, or the votes of every member that has not voted yet).

        ``view`` is committed state and its height, read from the most advanced honest node.
        """
        self.ticks += 1
        steps = [self._background(rng, admins)]
        steps += self._story_steps(rng, now, view, admins)
        return [self._sign(key, payload, until, rng) for key, payload in steps]

    def _sign(self, key: PrivateKey, payload: Any, until: int, rng: Any) -> bytes:
        nonce = rng.randbytes(NONCE_BYTES)
        return Tx.create(key, self.chain_id, self.genesis_hash, payload, until, nonce).encode()

    def _call(self, method: str, args: list, contract: str = "governance") -> CallPayload:
        return CallPayload(contract, method, encode_value(args, MAX_VALUE_BYTES))

    def _story_steps(
        self, rng: Any, now: int, view: tuple[Overlay, int], admins: dict[str, PrivateKey]
    ) -> list[tuple[PrivateKey, Any]]:
        state, _ = view
        self._scan(state)
        steps: list[tuple[PrivateKey, Any]] = []
        allowed = self.stories and self.stories[0].done
        deployable = allowed and state.get(CODE + CONTRACT.encode()) is None
        if deployable and self.ticks - self.deploy_sent >= REPROPOSE_TICKS:
            self.deploy_sent = self.ticks
            steps.append((self.client, DeployPayload(CONTRACT, contract_code())))
        done = {story.kind for story in self.stories if story.done}
        for story in self.stories:
            if not story.done and admins and (story.after is None or story.after in done):
                steps += self._advance(story, rng, now, view, admins)
        return steps

    def _advance(
        self,
        story: Story,
        rng: Any,
        now: int,
        view: tuple[Overlay, int],
        admins: dict[str, PrivateKey],
    ) -> list[tuple[PrivateKey, Any]]:
        """Propose the story's action, or cast the votes it still lacks."""
        steps: list[tuple[PrivateKey, Any]] = []
        self._follow(story, view)
        if story.done:
            return steps
        if story.pid is None:
            if self.ticks - story.proposed_at >= REPROPOSE_TICKS:
                story.proposed_at = self.ticks
                if story.kind == "approve_model" and self.published_at is None:
                    self.published_at = now
                org = rng.choice(sorted(admins))
                steps.append((admins[org], self._call("propose", [story.kind, story.args])))
            return steps
        voters = [org for org in sorted(admins) if org not in story.voted]
        if not voters and self.ticks - story.proposed_at >= REPROPOSE_TICKS:
            story.voted.clear()  # votes may have been lost or expired: cast them again
            story.proposed_at = self.ticks
        for org in voters:
            story.voted.add(org)
            steps.append((admins[org], self._call("vote", [story.pid, True])))
        return steps

    def _scan(self, state: Overlay) -> None:
        """Read proposals made since the last tick (at most MAX_PROPOSALS_READ)."""
        kinds = {story.kind for story in self.stories}
        last = _read(state, "governance", "next_proposal") or 1
        end = min(last, self.seen_proposals + 1 + MAX_PROPOSALS_READ)
        for pid in range(self.seen_proposals + 1, end):
            self.seen_proposals = pid
            proposal = _read(state, "governance", f"proposal:{pid}")
            if proposal is not None and proposal["kind"] in kinds:
                self.proposed.append((pid, proposal["kind"], proposal["args"]))

    def _follow(self, story: Story, view: tuple[Overlay, int]) -> None:
        """Find the story's proposal in committed state and whether it executed."""
        state, height = view
        if story.pid is None:
            story.pid = next(
                (
                    pid
                    for pid, kind, args in self.proposed
                    if kind == story.kind and args == story.args and pid not in story.failed
                ),
                None,
            )
        if story.pid is None:
            return
        proposal = _read(state, "governance", f"proposal:{story.pid}")
        if proposal["status"] == "executed":
            story.done = True
        elif proposal["status"] != "open" or height >= proposal["expires"]:
            story.failed.add(story.pid)
            story.pid, story.voted = None, set()

    def _background(self, rng: Any, admins: dict[str, PrivateKey]) -> tuple[PrivateKey, Any]:
        roll = rng.random()
        if roll < 0.45 or not admins:
            digest = hashlib.sha256(rng.randbytes(32)).digest()
            parents = tuple(sorted(set(rng.sample(self.anchors, min(2, len(self.anchors))))))
            self.anchors.append(digest)
            size = 100 + len(self.anchors)
            return self.client, AnchorPayload(digest, size, "text/csv", parents, ())
        if roll < 0.55:
            features = tuple(rng.randint(-9, 9) / 2 for _ in FEATURES)
            return self.client, ScorePayload(MODEL_NAME, features, f"r{self.ticks}")
        if roll < 0.75:
            method = rng.choice(("check", "spin", "note"))
            if method == "check":
                args: list = [MODEL_NAME, [rng.randint(-4, 4) for _ in FEATURES]]
            elif method == "spin":
                args = [rng.choice(SPIN_STEPS)]
            else:
                args = [rng.randbytes(rng.choice(NOTE_BYTES))]
            return self.client, self._call(method, args, CONTRACT)
        org = rng.choice(sorted(admins))
        if roll < 0.85 or self.param_proposals == 0:
            self.param_proposals += 1
            change = {"name": "max_block_txs", "value": rng.randint(16, 64)}
            return admins[org], self._call("propose", ["set_param", change])
        pid = rng.randint(1, max(1, self.seen_proposals))
        return admins[org], self._call("vote", [pid, rng.random() < 0.8])
