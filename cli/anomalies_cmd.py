"""`vigil anomalies`: flagged scores, each proven in its certified block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import NodeError, call, node_option
from cli.tx_cmd import checked_tx
from cli.verify import NOT_VERIFIED, Verifier, cross_checked, load_genesis, verify_options
from node.app.genesis import Genesis
from node.app.light import VerificationError

MAX_LISTED = 1_000
"""Flagged scores one `vigil anomalies` lists (and, verified, proves one by one)."""


class _Trees:
    """Tree counts of models, from artifacts checked against their ids (the score needs them)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.known: dict[bytes, int | None] = {}

    def of(self, model_id: bytes) -> int | None:
        if model_id not in self.known:
            self.known[model_id] = self._fetch(model_id)
        return self.known[model_id]

    def _fetch(self, model_id: bytes) -> int | None:
        from cli.client import call_bytes
        from consensus.crypto import sha256
        from ml.artifact import load
        from ml.errors import ModelError

        try:
            data = call_bytes("GET", self.node, f"/v1/models/{model_id.hex()}")
        except NodeError as exc:
            if exc.code == "not_found":
                return None
            raise
        if sha256(data) != model_id:
            raise click.ClickException(f"the node served another artifact for {model_id.hex()}")
        try:
            return load(data).n_trees
        except ModelError as exc:
            raise click.ClickException(f"model {model_id.hex()[:16]}: {exc}") from None


def _listed(node: str, since: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    height = max(1, since)
    top = call("GET", node, "/v1/status")["height"]
    while height <= top and len(found) < MAX_LISTED:
        answer = call("GET", node, f"/v1/anomalies?since={height}")
        found += answer["anomalies"]
        if answer["next"] <= height:
            break
        height = answer["next"]
    return found[:MAX_LISTED]


def _proven(verifier: Verifier, trees: _Trees, claimed: dict[str, Any]) -> dict[str, Any]:
    """One listed anomaly, replaced by what its proven receipt says."""
    from ml.score import score_from_path_sum

    try:
        tx_hash = bytes.fromhex(claimed["tx"])
    except (KeyError, TypeError, ValueError):
        raise verifier.fail(
            VerificationError("anomaly", "a listed anomaly has no tx hash")
        ) from None
    info = call("GET", verifier.node, f"/v1/txs/{claimed['tx']}")
    item, header, cert = checked_tx(verifier, tx_hash, info)
    flagged = [e for e in item.receipt.events if e.name == "flagged"]
    if item.tx.kind != "score" or item.receipt.status != "ok" or not flagged:
        raise verifier.fail(
            VerificationError("anomaly", f"transaction {claimed['tx']} is not a flagged score")
        )
    reference, model_id, path_sum = flagged[0].data
    n_trees = trees.of(model_id)
    return {
        "height": header.height,
        "tx": claimed["tx"],
        "reference": reference,
        "model_id": model_id.hex(),
        "path_sum": path_sum,
        "score": None if n_trees is None else score_from_path_sum(path_sum, n_trees),
        "certified_by": verifier.signer_orgs(cert),
    }


def _answer(url: str, genesis: Genesis | None, since: int) -> dict[str, Any]:
    listed = _listed(url, since)
    if genesis is None:
        return {"anomalies": listed, "verified": None}
    verifier = Verifier(url, genesis)
    trees = _Trees(url)
    rows = [_proven(verifier, trees, a) for a in listed]
    what = f"each of the {len(rows)} flagged scores, in its certified block"
    return {"anomalies": rows, "verified": {"what": what, "complete": False}}


def _facts(answer: dict[str, Any]) -> Any:
    """What two nodes must agree on: the flagged transactions and their scores."""
    return [(a["tx"], a["height"], a["path_sum"]) for a in answer["anomalies"]]


@click.command()
@click.option("--since", default=1, show_default=True, help="First height to look at.")
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def anomalies(since: int, node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
              as_json: bool) -> None:  # fmt: skip
    """List score transactions the active models flagged, from height --since on.

    Verified: each listed score is proven in its certified block (transaction,
    receipt and its flagged event), and its score computed here from the
    model artifact checked against its id. That no flagged score was left out
    of the list is the node's word: --quorum K asks K nodes for their lists
    (skip all checks with --no-verify).
    """
    genesis = None if no_verify else load_genesis(genesis_file)
    out = cross_checked(node, quorum, lambda url: _answer(url, genesis, since), _facts)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for a in out["anomalies"]:
        score = "?" if a["score"] is None else f"{a['score']:.6f}"
        click.echo(f"height {a['height']:>6}  score {score}  {a['reference'] or '-'}  tx {a['tx']}")
    click.echo(f"{len(out['anomalies'])} flagged since height {since}")
    verified = out["verified"]
    if verified is None:
        click.echo(f"verified: {NOT_VERIFIED}")
    else:
        agreed = verified.get("agreed_by")
        also = f"; the same list from {len(agreed)} nodes" if agreed else ""
        click.echo(f"verified: {verified['what']} (that none is missing is the node's word{also})")
