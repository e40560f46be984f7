"""Checking an offline proof bundle, and the facts it proves in words. No I/O.

:func:`verify` follows the bundle's validator-set changes from the genesis
file, checks each block's certificate, each item's proof against its block,
and then derives the facts from the checked items alone, by subject. The
items must be exactly the ones the subject calls for, in order: a bundle for
an anchor holds the anchor's record and then its ancestors' records, nearest
first; one for a model holds the version record, the proposal that approved
it and the active version. So nothing in a bundle goes unchecked, and the
exporter (the CLI) writes the facts with this same code.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from consensus import codec
from consensus.crypto import key_hex, sha256
from ml.errors import ModelError
from ml.score import score_from_path_sum
from node.app.anchors import AnchorRecord
from node.app.bundle import (
    MAX_BUNDLE_ITEMS,
    SUBJECTS,
    Bundle,
    Certified,
    Item,
    QueryItem,
    StateItem,
    TxItem,
    bundle_error,
    decode,
    storage_value,
)
from node.app.genesis import Genesis
from node.app.light import LightClient, ValidatorChange, VerificationError
from node.app.state import ANCHOR, storage_key
from node.app.types import AnchorPayload, CallPayload, DeployPayload, ScorePayload
from vm.errors import VMError
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value

MAX_LINEAGE = 32
"""Ancestors of an anchored dataset a bundle proves (breadth first, nearest first)."""
assert MAX_LINEAGE + 1 <= MAX_BUNDLE_ITEMS  # the anchor and its ancestors fit in one bundle


class Checked:
    """A bundle's items, each checked against its certified header on request."""

    def __init__(self, bundle: Bundle, genesis: Genesis) -> None:
        self.bundle = bundle
        self.light = LightClient(genesis)
        self.orgs = {m.node_key: m.org for m in genesis.members}
        self.blocks: dict[int, Certified] = {}
        self.artifacts = {sha256(a): a for a in bundle.artifacts}
        self.used_artifacts: set[bytes] = set()

    def check_frame(self) -> None:
        b, light = self.bundle, self.light
        if b.chain_id != light.chain_id or b.genesis_hash != light.genesis_hash:
            raise bundle_error(
                f"it is for chain {b.chain_id!r} (genesis {b.genesis_hash.hex()[:16]}...), not "
                f"this genesis file's {light.chain_id!r} ({light.genesis_hash.hex()[:16]}...)"
            )
        ascending([c.header.height for c in b.changes], "validator-set changes")
        ascending([c.header.height for c in b.blocks], "blocks")
        ascending(list(self.artifacts), "artifacts (by id)")
        if len(self.artifacts) != len(b.artifacts):
            raise bundle_error("an artifact appears twice")
        if b.changes and b.blocks and b.changes[-1].header.height >= b.blocks[-1].header.height:
            raise bundle_error("carries a validator-set change no block needs")
        light.follow_all(b.changes)
        for block in b.blocks:
            light.verify_header(block.header, block.certificate)
            self.blocks[block.header.height] = block

    def block(self, height: int) -> Certified:
        found = self.blocks.get(height)
        if found is None:
            raise bundle_error(f"an item names height {height}, whose block is not in the bundle")
        return found

    def tx(self, item: TxItem) -> None:
        b = self.block(item.height)
        self.light.verify_tx(b.header, b.certificate, item.tx, item.tx_proof)
        if item.receipt.tx_hash != item.tx.id or item.receipt_proof.index != item.tx_proof.index:
            raise VerificationError("receipt proof", "the receipt is not this transaction's")
        self.light.verify_receipt(b.header, b.certificate, item.receipt, item.receipt_proof)

    def state(self, item: StateItem) -> bytes | None:
        b = self.block(item.height)
        r = item.read
        self.light.verify_state(b.header, b.certificate, r.key, r.value, r.proof)
        return r.value

    def query(self, item: QueryItem) -> Any:
        b = self.block(item.height)
        ascending([r.key for r in item.reads], "a query's reads")
        try:
            run = self.light.verify_query(
                b.header, b.certificate, item.contract, item.method, item.args, item.reads
            )
        except VMError as exc:
            raise VerificationError(
                "query", f"{item.contract}.{item.method} fails: {exc}"
            ) from None
        return run.value

    def artifact(self, model_id: bytes) -> bytes | None:
        data = self.artifacts.get(model_id)
        if data is not None:
            self.used_artifacts.add(model_id)
        return data

    def certified(self, height: int) -> str:
        cert = self.block(height).certificate
        names = sorted(
            self.orgs.get(v.validator, "node " + key_hex(v.validator)[:12]) for v in cert.votes
        )
        total = len(self.light.validators_at(height))
        return f"certified by {', '.join(names)} ({len(names)} of {total} validators)"


def ascending(values: Sequence[Any], what: str) -> None:
    if any(a >= b for a, b in itertools.pairwise(values)):
        raise bundle_error(f"{what} must be distinct and in ascending order")


def verify(
    data: bytes, genesis: Genesis, artifact: bytes | None = None
) -> tuple[Bundle, list[str]]:
    """Check every byte of a bundle against ``genesis``; the facts it proves, in words.

    With ``artifact`` (a score's model, held by the auditor) the certified score is also
    re-derived from it, which adds one fact. Raises VerificationError naming the step that
    failed.
    """
    bundle = decode(data)
    facts = derive(bundle, genesis)
    if tuple(facts) != bundle.facts:
        raise bundle_error("its fact lines differ from what its proofs show")
    if artifact is not None:
        facts = [*facts, rederive_with(bundle, artifact)]
    return bundle, facts


def derive(bundle: Bundle, genesis: Genesis) -> list[str]:
    """The facts a bundle's items prove (its own fact lines are not read)."""
    checked = Checked(bundle, genesis)
    checked.check_frame()
    kind = bundle.subject[0] if bundle.subject else None
    derivers: dict[Any, Callable[[Checked], list[str]]] = {
        "tx": tx_facts,
        "anchor": anchor_facts,
        "model": model_facts,
        "state": state_facts,
    }
    if kind not in derivers:
        raise bundle_error(f"unknown subject {kind!r}; one of {', '.join(SUBJECTS)}")
    facts = derivers[kind](checked)
    unused = set(checked.artifacts) - checked.used_artifacts
    if unused:
        raise bundle_error(f"carries artifact {min(unused).hex()[:16]}... that no fact needs")
    if set(checked.blocks) != {item.height for item in bundle.items}:
        raise bundle_error("carries a block no item needs")
    return facts


def build(
    genesis: Genesis,
    subject: tuple[Any, ...],
    changes: Sequence[ValidatorChange],
    blocks: dict[int, Certified],
    items: Sequence[Item],
    artifacts: Sequence[bytes] = (),
) -> tuple[Bundle, list[str]]:
    """Assemble a bundle from checked parts (the exporter's side) and write its facts with
    the code :func:`verify` runs: only the blocks and changes its items need go in."""
    heights = sorted({item.height for item in items})
    top = heights[-1] if heights else 0
    draft = Bundle(
        genesis.chain_id,
        genesis.hash(),
        subject,
        tuple(sorted((c for c in changes if c.header.height < top), key=lambda c: c.header.height)),
        tuple(blocks[h] for h in heights),
        tuple(items),
        tuple(sorted(set(artifacts), key=sha256)),
        (),
    )
    facts = derive(draft, genesis)
    return dataclasses.replace(draft, facts=tuple(facts)), facts


# ---------------------------------------------------------------- facts by subject


def _subject(checked: Checked, n: int, types: tuple[type, ...]) -> tuple[Any, ...]:
    subject = checked.bundle.subject
    if len(subject) != n or any(type(v) is not t for v, t in zip(subject[1:], types, strict=True)):
        raise bundle_error(f"a {subject[0]} subject is malformed")
    return subject


def _items(checked: Checked, kinds: Sequence[type]) -> list[Any]:
    items = checked.bundle.items
    if len(items) != len(kinds) or any(
        not isinstance(i, k) for i, k in zip(items, kinds, strict=True)
    ):
        raise bundle_error(f"a {checked.bundle.subject[0]} bundle holds other items than it needs")
    return list(items)


def _shown(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(plain(k)): plain(x) for k, x in v.items()}
        return v

    return json.dumps(plain(value), sort_keys=True)


def _expect_query(item: Any, contract: str, method: str, args: list[Any]) -> None:
    if (item.contract, item.method, item.args) != (contract, method, args):
        raise bundle_error(
            f"expected the query {contract}.{method}{_shown(args)}, found "
            f"{item.contract}.{item.method}{_shown(item.args)}"
        )


def tx_facts(checked: Checked) -> list[str]:
    _, tx_hash = _subject(checked, 2, (bytes,))
    items = checked.bundle.items
    kinds: list[type] = [TxItem] + ([QueryItem] if len(items) == 2 else [])
    found = _items(checked, kinds)
    item: TxItem = found[0]
    if item.tx.id != tx_hash:
        raise bundle_error("its transaction is not the one it names")
    checked.tx(item)
    tx, receipt = item.tx, item.receipt
    facts = [
        f"transaction {tx.id.hex()} ({tx.kind}, signed by {tx.sender.hex()[:16]}...) is "
        f"transaction {item.tx_proof.index + 1} of block {item.height}, "
        + checked.certified(item.height),
        f"its receipt: {receipt.status}"
        + (f" ({receipt.error})" if receipt.error else "")
        + f", gas used {receipt.gas_used}",
    ]
    if receipt.status == "ok":
        facts += _payload_facts(checked, tx.payload, receipt.result, found[1:])
    elif len(found) > 1:
        raise bundle_error("a failed transaction's bundle holds a query it does not need")
    facts += [f"event {e.name}: {_shown(_event_data(e.data))}" for e in receipt.events]
    return facts


def _event_data(data: Any) -> Any:
    """Contract events carry a VM-encoded value; the ledger's own events plain values."""
    if isinstance(data, bytes):
        try:
            return decode_value(data, MAX_VALUE_BYTES)
        except VMError:
            return data
    return data


def _payload_facts(checked: Checked, payload: Any, result: Any, rest: list[Any]) -> list[str]:
    if isinstance(payload, ScorePayload):
        return _score_facts(checked, payload, result, rest)
    if rest:
        raise bundle_error("only a score's bundle holds a query")
    if isinstance(payload, AnchorPayload):
        return [
            f"it anchors dataset {payload.digest.hex()} ({payload.size} bytes, "
            f"{payload.media_type})",
            *[f"dataset {payload.digest.hex()[:16]}... derives from {p.hex()}"
              for p in payload.parents],
        ]  # fmt: skip
    if isinstance(payload, CallPayload):
        args = decode_value(payload.args, MAX_VALUE_BYTES)
        value = decode_value(result, MAX_VALUE_BYTES) if isinstance(result, bytes) else result
        return [f"it calls {payload.contract}.{payload.method}{_shown(args)} and returns "
                f"{_shown(value)}"]  # fmt: skip
    if isinstance(payload, DeployPayload):
        return [f"it deploys contract {payload.name} (code hash {result[0].hex()})"]
    return []


def _score_facts(checked: Checked, payload: ScorePayload, result: Any, rest: list) -> list[str]:
    model_id, path_sum, outlier, top = result
    version = "(version not in the bundle)"
    if rest:
        _expect_query(rest[0], "models", "find", [payload.model, model_id])
        number = checked.query(rest[0])
        version = f"v{number}" if number is not None else "(not a registered version)"
    artifact = checked.artifact(model_id)
    if artifact is None:
        score = f"with path sum {path_sum} (the model's artifact is not in the bundle)"
    else:
        score = rederive(artifact, payload, result)
    verdict = "flagged as an outlier" if outlier else "not flagged"
    shares = ", ".join(f"{name} {ppm / 10_000:.0f}%" for name, ppm in top)
    row = repr(payload.reference) if payload.reference else "the row"
    return [
        f"{row} was scored {score} by model {payload.model} {version} "
        f"(id {model_id.hex()[:16]}...), {verdict}",
        f"features {_shown(list(payload.features))}; top contributions: {shares or 'none'}",
    ]


def rederive(artifact: bytes, payload: ScorePayload, result: Any) -> str:
    """Score the signed features again with ``artifact`` and demand the certified receipt's
    exact integers: path sum, verdict and top features (the score in words if they agree).

    ``artifact`` must be the model the receipt names (its SHA-256 is the model id)."""
    from ml.artifact import load
    from ml.score import Scorer
    from node.app.scoring import score_rows

    model_id, path_sum, outlier, top = result
    given = sha256(artifact)
    if given != model_id:
        raise VerificationError(
            "artifact",
            f"{given.hex()[:16]}... is not the model that scored this transaction "
            f"({model_id.hex()[:16]}...)",
        )
    try:
        model = load(artifact, expected_id=model_id)
    except ModelError as exc:
        raise bundle_error(f"its model artifact does not load: {exc}") from None
    if len(payload.features) != model.n_features:
        raise bundle_error(f"the model takes {model.n_features} features, the row has "
                           f"{len(payload.features)}")  # fmt: skip
    [again] = score_rows(Scorer(model), model_id, [payload.features])
    recorded = (path_sum, bool(outlier), [list(t) for t in top])
    if (again.path_sum, again.outlier, [list(t) for t in again.top]) != recorded:
        raise VerificationError(
            "score",
            f"the artifact gives path sum {again.path_sum} (outlier {again.outlier}) for the "
            f"signed features, the certified receipt records {path_sum} (outlier {outlier})",
        )
    return (
        f"{score_from_path_sum(path_sum, model.n_trees):.6f} (re-derived bit for bit from the "
        "signed features and the artifact)"
    )


def rederive_with(bundle: Bundle, artifact: bytes) -> str:
    """For a checked score bundle: re-derive its certified score with an artifact the
    auditor holds (a bundle exported without one). The fact line it proves."""
    item = bundle.items[0] if bundle.items else None
    if (
        bundle.subject[:1] != ("tx",)
        or not isinstance(item, TxItem)
        or not isinstance(item.tx.payload, ScorePayload)
        or item.receipt.status != "ok"
    ):
        raise VerificationError(
            "artifact", "only a committed score's bundle has a score to re-derive"
        )
    score = rederive(artifact, item.tx.payload, item.receipt.result)
    model_id = item.receipt.result[0]  # rederive showed the artifact's id is this one
    return f"re-derived: the artifact {model_id.hex()[:16]}... scores the row {score}"


def anchor_facts(checked: Checked) -> list[str]:
    _, digest = _subject(checked, 2, (bytes,))
    items = checked.bundle.items
    if not items or not all(isinstance(i, StateItem) for i in items):
        raise bundle_error("an anchor bundle holds only state reads")
    expected = [digest]
    facts: list[str] = []
    for n, item in enumerate(items):
        if n >= len(expected) or item.read.key != ANCHOR + expected[n]:
            raise bundle_error("its state reads are not the anchor and its lineage, in order")
        value = checked.state(item)
        wanted = expected[n]
        where = f"proven at height {item.height}, {checked.certified(item.height)}"
        if value is None:
            facts.append(f"dataset {wanted.hex()} is NOT anchored; {where}")
            continue
        record = AnchorRecord.from_wire(wanted, codec.decode(value))
        facts.append(
            f"dataset {wanted.hex()} ({record.size} bytes, {record.media_type}) was anchored at "
            f"height {record.height} in transaction {record.tx_id.hex()} by "
            f"{record.sender.hex()[:16]}...; {where}"
        )
        facts += [f"  {k} = {v}" for k, v in record.metadata]
        facts += [f"  it derives from {p.hex()}" for p in record.parents]
        for p in record.parents:
            if p not in expected and len(expected) <= MAX_LINEAGE:
                expected.append(p)
    if len(items) != len(expected):
        raise bundle_error("its lineage is incomplete")
    return facts


def model_facts(checked: Checked) -> list[str]:
    """Items: the version record (models.version, or models.active for the active one), the
    proposal that approved it (governance.get) if there is one, then models.active unless the
    first query was already that."""
    _, name, version = _subject(checked, 3, (str, int))
    items = checked.bundle.items
    if not items or not all(isinstance(i, QueryItem) for i in items):
        raise bundle_error("a model bundle holds only contract queries")
    first = items[0]
    _expect_query(first, "models", *(("active", [name]) if version == 0 else
                                      ("version", [name, version])))  # fmt: skip
    record = checked.query(first)
    wanted = 1 + (record is not None) + (version != 0)
    if len(items) != wanted:
        raise bundle_error(f"a model bundle here holds {wanted} queries, not {len(items)}")
    where = _proven(checked, first)
    if record is None:
        missing = "no active version" if version == 0 else f"no version {version}"
        facts = [f"model {name} has {missing}; {where}"]
    else:
        facts = _approval_facts(checked, name, record, items[1], first.height)
    if version == 0:
        if record is not None:
            facts.append(f"it is the active version of {name} at height {first.height}")
        return facts
    return facts + _active_fact(checked, items[-1], name)


def _approval_facts(
    checked: Checked, name: str, record: dict, item: QueryItem, height: int
) -> list[str]:
    """The approval of ``record`` (proven at ``height``) by the proposal ``item`` reads."""
    where = f"proven at height {height}, " + checked.certified(height)
    if item.height != height:
        where += f"; the proposal {_proven(checked, item)}"
    if item.contract != "governance" or item.method != "get" or len(item.args) != 1:
        raise bundle_error("a model bundle's second query must be governance.get(proposal)")
    proposal = checked.query(item)
    args = proposal.get("args", {}) if isinstance(proposal, dict) else {}
    if not (
        isinstance(proposal, dict)
        and proposal.get("kind") == "approve_model"
        and args.get("name") == name
        and args.get("model_id") == record["model_id"]
        and proposal.get("status") == "executed"
        and proposal.get("executed_at") == record["approved_at"]
    ):
        raise bundle_error(f"proposal {item.args[0]} is not the one that approved this model")
    yes = sorted(org for org, v in proposal["votes"].items() if v)
    no = sorted(org for org, v in proposal["votes"].items() if not v)
    weights = ", ".join(f"{org}={w}" for org, w in sorted(record["contributors"].items()))
    anchors = [a.hex() for a in record["anchors"]]
    return [
        f"model {name} v{record['version']} (id {record['model_id'].hex()}, {record['size']} "
        f"bytes) was approved at height {record['approved_at']} by {', '.join(yes)} "
        f"(proposal {proposal['id']} by {proposal['proposer']}; against: "
        f"{', '.join(no) or 'none'}); {where}",
        f"royalty weights: {weights}",
        f"trained on {len(anchors)} anchored dataset(s)"
        + (": " if anchors else "")
        + ", ".join(anchors),
    ]


def _proven(checked: Checked, item: QueryItem) -> str:
    return f"proven at height {item.height}, {checked.certified(item.height)}"


def _active_fact(checked: Checked, item: QueryItem, name: str) -> list[str]:
    _expect_query(item, "models", "active", [name])
    active = checked.query(item)
    now = f"v{active['version']}" if active else "none"
    return [f"active version of {name}: {now}; {_proven(checked, item)}"]


def state_facts(checked: Checked) -> list[str]:
    _, contract, key = _subject(checked, 3, (str, str))
    [item] = _items(checked, [StateItem])
    if item.read.key != storage_key(contract, key):
        raise bundle_error("its state read is not the key it names")
    value = checked.state(item)
    where = f"proven at height {item.height}, {checked.certified(item.height)}"
    if value is None:
        return [f"contract {contract} has no value under {key!r}; {where}"]
    return [f"contract {contract}: {key!r} = {_shown(storage_value(value))}; {where}"]


__all__ = ["MAX_LINEAGE", "Checked", "build", "derive", "verify"]
