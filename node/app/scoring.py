"""`score` transactions: the active model of a model family scores a feature vector.

Which model is active for a name is contract state: the ``models`` registry
contract stores ``active:<name>`` -> ``{"model_id": bytes, "version": int}``
(governance decides it). The artifact itself is not state: nodes keep
artifacts by id (the SHA-256 of their bytes) in their store, fetch missing ones
from peers, and check every artifact against its id before using it.

What a receipt records is exact on every machine: the model id, the integer
path sum of ``ml.score`` (the consensus value), the verdict that compares it
with the model's integer threshold, and the top explaining features with
integer weights. A row judged an outlier also emits a ``flagged`` event. Each
score is also counted in the model's drift histogram (``node/app/drift_state.py``),
whose windows emit a ``drift`` event when their PSI level changes. All
score transactions of a block that use the model active when the block starts
are scored in one kernel call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from consensus.bounded import BoundedMap
from ml.artifact import load as load_artifact
from ml.errors import InputError
from ml.explain import explain_batch
from ml.score import Scorer
from node.app import drift_state, governance
from node.app.charge import ROYALTIES_CONTRACT
from node.app.charge import charge as native_charge
from node.app.contracts import CallContext, ChainHost, ContractRevert, describe, program_for
from node.app.drift_state import DRIFT_EVENT
from node.app.state import CODE, Overlay, Revert, decoded_value, storage_key
from node.app.system import MODELS_CONTRACT
from node.app.types import Event, ScorePayload, Tx
from vm.errors import HostError, HostUnavailable, VMError
from vm.interpreter import execute

SYSTEM_ADDRESS = hashlib.sha256(b"vigil/system").digest()
"""The caller the node presents when it charges royalties itself."""
SYSTEM_ORG = "system"
ACTIVE_PREFIX = "active:"
TOP_FEATURES = 3
"""Explaining features recorded per scored row."""
MAX_LOADED_MODELS = 8
"""Scorers kept in memory by model id."""


class ArtifactMissing(HostUnavailable):
    """This node does not hold the artifact of a model a block uses; fetch it, then retry.

    A HostUnavailable, so a contract's ``ledger.score`` cannot turn it into a
    reverted receipt: the whole block waits for the artifact instead, on every
    node, and every node records the same outcome.
    """

    def __init__(self, model_id: bytes) -> None:
        super().__init__(f"model artifact {model_id.hex()} is not on this node")
        self.model_id = model_id


def active_model(state: Overlay, name: str) -> bytes | None:
    """The id of the model active for ``name``, as the models registry records it."""
    raw = state.get(storage_key(MODELS_CONTRACT, ACTIVE_PREFIX + name))
    if raw is None:
        return None
    try:
        entry = decoded_value(raw)
    except VMError:
        return None
    model_id = entry.get("model_id") if type(entry) is dict else None
    return model_id if type(model_id) is bytes and len(model_id) == 32 else None


class ModelCache:
    """Loaded scorers by model id; artifacts come from ``read_artifact`` and are checked."""

    def __init__(self, read_artifact: Callable[[bytes], bytes | None]) -> None:
        self.read_artifact = read_artifact
        self._scorers: BoundedMap[bytes, Scorer] = BoundedMap(MAX_LOADED_MODELS)

    def scorer(self, model_id: bytes) -> Scorer:
        scorer = self._scorers.get(model_id)
        if scorer is not None:
            self._scorers.move_to_end(model_id)
            return scorer
        data = self.read_artifact(model_id)
        if data is None:
            raise ArtifactMissing(model_id)
        scorer = Scorer(load_artifact(data, expected_id=model_id))
        self._scorers.remember(model_id, scorer)
        return scorer

    def forget(self, model_ids: Sequence[bytes]) -> None:
        """Drop loaded models whose artifacts the node deleted, so nothing reads them again."""
        for model_id in model_ids:
            self._scorers.pop(model_id, None)


@dataclass(frozen=True)
class ScoreReport:
    model_id: bytes
    path_sum: int
    outlier: bool
    top: tuple[tuple[str, int], ...]

    def result(self) -> tuple:
        return (self.model_id, self.path_sum, self.outlier, tuple(list(t) for t in self.top))


def _reports(scorer: Scorer, model_id: bytes, txs: Sequence[Tx]) -> list[ScoreReport]:
    """Score and explain the txs' feature rows in one kernel call each."""
    return score_rows(scorer, model_id, [t.payload.features for t in txs])  # type: ignore[attr-defined]


def score_rows(
    scorer: Scorer, model_id: bytes, features: Sequence[Sequence[float]]
) -> list[ScoreReport]:
    """What a score receipt records for each row: the exact path sum, the verdict and the top
    features. An auditor re-derives a certified score with this and the approved artifact."""
    rows = np.array(features, dtype=np.float64)
    scores = scorer.score_batch(rows)
    explained = explain_batch(scorer, rows, TOP_FEATURES)
    tops = explained.rows(scorer.model.feature_names)
    return [
        ScoreReport(model_id, path_sum, outlier, tuple(top))
        for path_sum, outlier, top in zip(
            scores.path_sums.tolist(), scores.outliers.tolist(), tops, strict=True
        )
    ]


@dataclass
class Scoring:
    """Per-block scoring state: the model cache and reports computed in one batch."""

    models: ModelCache
    precomputed: dict[bytes, ScoreReport] = field(default_factory=dict)
    read: set[bytes] = field(default_factory=set)
    """Every model id this execution asked for (hit or miss): the artifacts replaying the
    block needs, which the node keeps for good once the block commits (node/store.py)."""

    def scorer(self, model_id: bytes) -> Scorer:
        """The loaded model ``model_id`` (ArtifactMissing if this node lacks it), recorded as
        read by this execution."""
        self.read.add(model_id)
        return self.models.scorer(model_id)

    def prepare_block(self, state: Overlay, txs: Sequence[Tx]) -> None:
        """Score, in one kernel call per model, every score tx of the block start's models."""
        groups: dict[bytes, list[Tx]] = {}
        for tx in txs:
            if tx.kind != "score":
                continue
            model_id = active_model(state, tx.payload.model)  # type: ignore[attr-defined]
            if model_id is not None:
                groups.setdefault(model_id, []).append(tx)
        for model_id, group in groups.items():
            scorer = self.scorer(model_id)
            fits = [t for t in group if len(t.payload.features) == scorer.n_features]  # type: ignore[attr-defined]
            if not fits:
                continue
            for tx, report in zip(fits, _reports(scorer, model_id, fits), strict=True):
                self.precomputed[tx.id] = report

    def report(self, model_id: bytes, tx: Tx) -> ScoreReport:
        known = self.precomputed.get(tx.id)
        if known is not None and known.model_id == model_id:
            return known
        return _reports(self.scorer(model_id), model_id, [tx])[0]

    def host_score(self, state: Overlay) -> Callable[[str, list[int]], int]:
        """``ledger.score(model, features)`` for contracts: the path sum under the active model."""

        def score(name: str, features: list[int]) -> int:
            model_id = active_model(state, name)
            if model_id is None:
                raise HostError(f"no active model named {name!r}")
            scorer = self.scorer(model_id)
            if len(features) != scorer.n_features:
                raise HostError(f"model {name!r} takes {scorer.n_features} features")
            try:
                path_sum, _, _ = scorer.score_row(np.array(features, dtype=np.float64))
            except InputError as exc:
                raise HostError(f"cannot score with model {name!r}: {exc}") from None
            return int(path_sum)

        return score


def execute_score(
    state: Overlay, tx: Tx, height: int, ctx: CallContext
) -> tuple[object, list[Event], int]:
    payload = tx.payload
    assert isinstance(payload, ScorePayload)
    scoring: Scoring | None = ctx.scoring
    if scoring is None:
        raise Revert("this node cannot score")
    model_id = active_model(state, payload.model)
    if model_id is None:
        raise Revert(f"no active model named {payload.model!r}")
    scorer = scoring.scorer(model_id)
    if len(payload.features) != scorer.n_features:
        raise Revert(
            f"model {payload.model!r} takes {scorer.n_features} features "
            f"({', '.join(scorer.model.feature_names)}), got {len(payload.features)}"
        )
    try:
        report = scoring.report(model_id, tx)
    except InputError as exc:
        raise Revert(f"cannot score: {exc}") from None
    gas = charge_royalties(state, ctx, governance.org_of(state, tx.sender), payload.model)
    events = [Event(name, data) for name, data in ctx.events]
    if report.outlier:
        events.append(Event("flagged", (payload.reference, model_id, report.path_sum)))
    model = scorer.model
    if model.training_bins is not None:
        change = drift_state.record_score(
            state, model_id, model.training_bins, model.n_trees, report.path_sum, height
        )
        if change is not None:
            level, psi, window = change
            events.append(Event(DRIFT_EVENT, (payload.model, model_id, level, psi, window)))
    return report.result(), events, gas


def charge_royalties(state: Overlay, ctx: CallContext, org: str, model: str) -> int:
    """Charge the scoring organisation the fee, credited to the model's contributors.

    Runs ``royalties.charge(org, model)`` as the system; its failure fails the score.
    While the contracts are the genesis code the node charges natively
    (``node/app/charge.py``: same writes and event, fixed gas); the VM does the rest.
    """
    code = state.get(CODE + ROYALTIES_CONTRACT.encode())
    if code is None:
        raise Revert("the royalties contract is not deployed")
    gas = native_charge(state, ctx, org, model)
    if gas is not None:
        return gas
    return vm_charge(state, ctx, org, model, code)


def vm_charge(state: Overlay, ctx: CallContext, org: str, model: str, code: bytes) -> int:
    """``royalties.charge(org, model)`` run in the VM as the system: the gas it used."""
    host = ChainHost(ctx, ROYALTIES_CONTRACT, SYSTEM_ADDRESS, SYSTEM_ORG, ())
    result = execute(
        program_for(code), "charge", [org, model], host,
        gas_limit=governance.param(state, "max_tx_gas"),
    )  # fmt: skip
    if result.error is not None:
        raise ContractRevert(f"royalties: {describe(result.error)}", result.gas_used)
    return result.gas_used
