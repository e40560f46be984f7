"""`vigil score` and `vigil model upload`: score transactions and model artifacts on a chain."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.client import call as http
from cli.client import node_option
from cli.ledger_cmds import DEFAULT_VALIDITY
from consensus.crypto import KeyFileError, PrivateKey
from consensus.record import FieldError
from node.app.types import ScorePayload, Tx

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
        for h in hashes:
            click.echo(f"tx {h}")
        return
    flagged = 0
    for h in hashes:
        info = http("GET", node, f"/v1/txs/{h}?wait={WAIT_S}", timeout=WAIT_S + 10)
        if info["status"] != "committed":
            raise click.ClickException(f"{h} not committed within {WAIT_S} s")
        receipt = info["receipt"]
        ref = info["tx"]["payload"]["reference"]
        if receipt["status"] != "ok":
            click.echo(f"{ref or '-'}: {receipt['status']}: {receipt['error']} tx {h}")
            continue
        r = receipt["result"]
        flagged += bool(r["outlier"])
        top = ", ".join(f"{t['feature']} {t['share_ppm'] / 10_000:.0f}%" for t in r["top_features"])
        verdict = "OUTLIER" if r["outlier"] else "normal"
        where = f"height {info['height']}; {top}"
        click.echo(f"{ref or '-'}: score {r['score']:.6f} {verdict} ({where}) tx {h}")
    if len(hashes) > 1:
        click.echo(f"{len(hashes)} scored, {flagged} flagged")


@click.command()
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
def upload(artifact: Path, node: str) -> None:
    """Give a node a model artifact; it checks it and passes it to the other nodes."""
    info = http("POST", node, "/v1/models", data=artifact.read_bytes())
    click.echo(json.dumps(info, indent=2))


@click.command()
@click.option("--since", default=1, show_default=True, help="First height to look at.")
@node_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def anomalies(since: int, node: str, as_json: bool) -> None:
    """List score transactions the active models flagged, from height --since on."""
    found: list[dict] = []
    height = max(1, since)
    top = http("GET", node, "/v1/status")["height"]
    while height <= top:
        answer = http("GET", node, f"/v1/anomalies?since={height}")
        found += answer["anomalies"]
        if answer["next"] <= height:
            break
        height = answer["next"]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for a in found:
        score = "?" if a["score"] is None else f"{a['score']:.6f}"
        click.echo(f"height {a['height']:>6}  score {score}  {a['reference'] or '-'}  tx {a['tx']}")
    click.echo(f"{len(found)} flagged since height {since}")
