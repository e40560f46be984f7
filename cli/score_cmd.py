"""`vigil score` and `vigil model upload`: score transactions and model artifacts on a chain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.client import NodeError, call_bytes, node_option
from cli.client import call as http
from cli.ledger_cmds import DEFAULT_VALIDITY
from cli.output import emit, json_flag, say, wants_json
from consensus.crypto import KeyFileError, PrivateKey
from consensus.record import FieldError
from node.app.types import ScorePayload, Tx

if TYPE_CHECKING:
    from ml.forest import Model

MAX_BATCH = 1_000
"""Transactions per submission (the node's MAX_SUBMIT_BATCH)."""
WAIT_S = 30


def _rows(features: str | None, csv: Path | None) -> list[tuple[float, ...]]:
    if (features is None) == (csv is None):
        raise click.UsageError("give either --features or --csv")
    if features is not None:
        try:
            return [tuple(float(x) for x in features.split(","))]
        except ValueError:
            raise click.BadParameter(
                "a comma-separated list of numbers", param_hint="--features"
            ) from None
    from ml.dataset import parse_csv
    from ml.errors import ModelError

    assert csv is not None
    try:
        data = parse_csv(csv.read_bytes())
    except (ModelError, OSError) as exc:
        raise click.ClickException(f"{csv}: {exc}") from None
    return [tuple(float(x) for x in row) for row in data.matrix]


def _active_model(node: str, active: Any) -> Model | None:
    """The active model's artifact from the node, checked against the id the chain records.

    None when the node does not hold the artifact (it fetches one only when it
    needs it, so that is not an error).
    """
    from ml.artifact import load
    from ml.errors import ModelError
    from vm.jsonvalues import JSONValueError, from_json

    try:
        model_id = from_json(active)["model_id"]
    except (JSONValueError, KeyError, TypeError):
        model_id = None
    if type(model_id) is not bytes or len(model_id) != 32:
        raise click.ClickException("the node's record of the active model has no model id")
    try:
        data = call_bytes("GET", node, f"/v1/models/{model_id.hex()}")
    except NodeError as exc:
        if exc.code == "not_found":
            return None
        raise
    try:
        model = load(data)
    except ModelError as exc:
        raise click.ClickException(f"model {model_id.hex()[:16]}: {exc}") from None
    if model.model_id != model_id:
        raise click.ClickException(
            f"the node served another model's artifact (id {model.model_id.hex()[:16]}..., "
            f"not {model_id.hex()[:16]}...): nothing was submitted"
        )
    return model


def _check_width(node: str, model_name: str, active: Any, rows: list[tuple[float, ...]]) -> None:
    """Refuse rows the active model cannot score, before anything is submitted.

    A row of the wrong width would be committed only to revert, a transaction
    each; checked here against the artifact itself, the first such row is named
    and none of the rows is submitted.
    """
    model = _active_model(node, active)
    if model is None:
        click.echo(
            f"warning: the node does not hold model {model_name}'s artifact, so the rows' "
            "width is not checked before submitting",
            err=True,
        )
        return
    version = active.get("version", "?") if isinstance(active, dict) else "?"
    for i, row in enumerate(rows):
        if len(row) != model.n_features:
            raise click.ClickException(
                f"row {i + 1} has {len(row)} features; model {model_name} v{version} expects "
                f"{model.n_features} ({', '.join(model.feature_names)}) (nothing was submitted)"
            )


@click.command()
@click.option("--model", "model_name", required=True, help="Model family, e.g. fraud.")
@click.option("--features", default=None, metavar="X,Y,...", help="One row of features.")
@click.option("--csv", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A CSV with a header; every row is scored in its own transaction.")  # fmt: skip
@click.option("--reference", default="", help="Your reference for the row(s) (CSV rows get #n).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              envvar="VIGIL_KEY",
              help="A client key with the score role (or set VIGIL_KEY).")  # fmt: skip
@node_option
@click.option("--wait", is_flag=True, help="Wait for the scores.")
@json_flag
def score(
    model_name: str,
    features: str | None,
    csv: Path | None,
    reference: str,
    key_file: Path,
    node: str,
    wait: bool,
) -> None:
    """Score rows with the chain's active model; every score is agreed by all nodes."""  # fmt: skip
    rows = _rows(features, csv)
    try:
        key = PrivateKey.load(key_file)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    status = http("GET", node, "/v1/status")
    chain_id, genesis_hash = status["chain_id"], bytes.fromhex(status["genesis_hash"])
    active = http("POST", node, "/v1/contracts/models/query",
                  {"method": "active", "args": [model_name]})["result"]  # fmt: skip
    if active is None:
        raise click.ClickException(
            f"no active model named {model_name!r} on this chain: nothing was submitted "
            "(a model is approved and activated by governance first)"
        )
    _check_width(node, model_name, active, rows)
    txs = []
    for i, row in enumerate(rows):
        ref = reference if len(rows) == 1 else f"{reference}#{i + 1}"
        try:
            payload = ScorePayload(model_name, row, ref)
        except FieldError as exc:
            raise click.ClickException(str(exc)) from None
        until = status["height"] + DEFAULT_VALIDITY
        txs.append(Tx.create(key, chain_id, genesis_hash, payload, until))
    hashes: list[str] = []
    for start in range(0, len(txs), MAX_BATCH):
        chunk = txs[start : start + MAX_BATCH]
        answer = http("POST", node, "/v1/txs", {"txs": [t.encode().hex() for t in chunk]})
        for tx, item in zip(chunk, answer["results"], strict=True):
            if "error" in item:
                ref = tx.payload.reference  # type: ignore[attr-defined]
                err = item["error"]
                raise click.ClickException(f"{ref or 'row'}: {err['code']}: {err['message']}")
            hashes.append(item["hash"])
    if not wait:
        if wants_json():
            emit({"txs": hashes} if len(hashes) > 1 else {"tx": hashes[0]})
            return
        for h in hashes:
            click.echo(f"tx {h}")
        return
    flagged = 0
    scored: list[dict[str, Any]] = []
    for h in hashes:
        info = http("GET", node, f"/v1/txs/{h}?wait={WAIT_S}", timeout=WAIT_S + 10)
        if info["status"] != "committed":
            raise click.ClickException(f"{h} not committed within {WAIT_S} s")
        receipt = info["receipt"]
        ref = info["tx"]["payload"]["reference"]
        scored.append({"tx": h, "reference": ref, "height": info["height"], "receipt": receipt})
        if receipt["status"] != "ok":
            say(f"{ref or '-'}: {receipt['status']}: {receipt['error']} tx {h}")
            continue
        r = receipt["result"]
        flagged += bool(r["outlier"])
        top = ", ".join(f"{t['feature']} {t['share_ppm'] / 10_000:.0f}%" for t in r["top_features"])
        verdict = "OUTLIER" if r["outlier"] else "normal"
        where = f"height {info['height']}; {top}"
        say(f"{ref or '-'}: score {r['score']:.6f} {verdict} ({where}) tx {h}")
    if wants_json():
        emit(scored[0] if len(scored) == 1 else {"txs": scored, "flagged": flagged})
    elif len(hashes) > 1:
        click.echo(f"{len(hashes)} scored, {flagged} flagged")
