"""`vigil fl`: federated rounds coordinated on chain (docs/governance.md, "Federated rounds").

Members train locally on their own anchored data, submit the local models, and the chain
computes the id of their deterministic merge when the round closes; `vigil fl merge`
builds exactly that merge from the submitted artifacts and proposes it for approval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.client import call as http
from cli.client import call_bytes, node_option
from cli.contract_node import KeyOption, WaitOption, _key, _submit
from cli.gov_cmd import _answered, _print, _propose
from cli.model import _write
from cli.verify import verify_options
from node.app.system import MODELS_CONTRACT
from node.app.types import CallPayload
from vm.gas import MAX_VALUE_BYTES
from vm.values import encode_value


@click.group()
def fl() -> None:
    """Federated rounds: open, submit, close, status, merge.

    \b
      vigil fl open fraud --features amount,hour,risk --deadline-in 50 --min-members 2
      vigil fl submit 1 local.vmodel          each member, once, its own anchored data
      vigil fl close 1                        after the deadline: the chain merges the ids
      vigil fl status 1                       submissions, rows, the merge id (verified)
      vigil fl merge 1 --out merged.vmodel    build that merge, upload it, propose it
    """


@fl.command("open")
@click.argument("name")
@click.option("--features", required=True, help="The round's feature schema, comma-separated.")
@click.option("--deadline-in", type=click.IntRange(1), required=True,
              help="Heights until submissions close (the chain allows 1..10^6).")  # fmt: skip
@click.option("--min-members", type=click.IntRange(2, 32), default=2, show_default=True)
@KeyOption
@node_option
@WaitOption
def open_round(name: str, features: str, deadline_in: int, min_members: int, key_file: Path,
               node: str, wait: bool) -> None:  # fmt: skip
    """Propose opening a round for model family NAME (members vote on it)."""
    names = [f.strip() for f in features.split(",") if f.strip()]
    if not names:
        raise click.BadParameter("give at least one feature name", param_hint="--features")
    height = http("GET", node, "/v1/status")["height"]
    args = {"name": name, "features": names, "deadline": height + deadline_in,
            "min_members": min_members}  # fmt: skip
    _propose(node, key_file, "open_round", args, wait)


def _call(node: str, key_file: Path, method: str, args: list[Any], wait: bool) -> None:
    payload = CallPayload(MODELS_CONTRACT, method, encode_value(args, MAX_VALUE_BYTES))
    _submit(node, _key(key_file), payload, wait)


@fl.command()
@click.argument("round_id", metavar="ROUND", type=click.IntRange(1))
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@KeyOption
@node_option
@WaitOption
def submit(round_id: int, artifact: Path, key_file: Path, node: str, wait: bool) -> None:
    """Upload your local model and submit it to ROUND (once per member). It must be trained
    on the round's features and only on datasets your organisation anchored."""
    from cli.upload_cmd import uploaded

    info = uploaded(node, artifact, key_file)
    _call(node, key_file, "submit", [round_id, bytes.fromhex(info["model_id"])], wait)


@fl.command()
@click.argument("round_id", metavar="ROUND", type=click.IntRange(1))
@KeyOption
@node_option
@WaitOption
def close(round_id: int, key_file: Path, node: str, wait: bool) -> None:
    """Close ROUND after its deadline: the chain computes the merge id of the submissions."""
    _call(node, key_file, "close_round", [round_id], wait)


def _round(node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
           round_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    found, verified = _answered(node, genesis_file, no_verify, quorum, MODELS_CONTRACT,
                                "get_round", [round_id])  # fmt: skip
    if found is None:
        raise click.ClickException(f"no round {round_id}")
    return found, verified


@fl.command()
@click.argument("round_id", metavar="ROUND", type=click.IntRange(1))
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(round_id: int, node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
           as_json: bool) -> None:  # fmt: skip
    """Show ROUND: its schema, deadline, submissions with rows, and the merge id (verified)."""
    r, verified = _round(node, genesis_file, no_verify, quorum, round_id)
    human = [
        f"round {r['id']} for model {r['name']}: {r['status']} "
        f"(submissions until height {r['deadline']}, at least {r['min_members']} members)",
        f"  features {', '.join(r['features'])}",
    ]
    for org, sub in sorted(r["submissions"].items()):
        human.append(f"  {org:<10} model {sub['model_id'].hex()}  {sub['rows']} rows")
    if r["merged"] is not None:
        human.append(f"  merge     {r['merged'].hex()} (the only model approve_round accepts)")
    _print(r, verified, as_json, human)


@fl.command()
@click.argument("round_id", metavar="ROUND", type=click.IntRange(1))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@KeyOption
@node_option
@verify_options
@WaitOption
def merge(round_id: int, out: Path, force: bool, key_file: Path, node: str,
          genesis_file: Path | None, no_verify: bool, quorum: int, wait: bool) -> None:  # fmt: skip
    """Build the merge of a closed ROUND from the submitted artifacts (each checked against
    its id), check it is the id the chain computed, upload it and propose approve_round."""
    from cli.upload_cmd import uploaded
    from ml.artifact import load
    from ml.errors import ModelError
    from ml.merge import merge as merge_models

    r, _ = _round(node, genesis_file, no_verify, quorum, round_id)
    if r["status"] != "closed":
        raise click.ClickException(f"round {round_id} is {r['status']}, not closed")
    models = []
    for org, sub in sorted(r["submissions"].items()):
        data = call_bytes("GET", node, f"/v1/models/{sub['model_id'].hex()}")
        try:
            models.append(load(data, expected_id=sub["model_id"]))
        except ModelError as exc:
            raise click.ClickException(f"{org}'s submitted artifact: {exc}") from None
    merged = merge_models(models)
    if merged.model_id != r["merged"]:
        raise click.ClickException(
            f"the merge here is {merged.model_id.hex()}, the chain computed {r['merged'].hex()}"
        )
    _write(out, merged.data, force)
    uploaded(node, out, key_file)
    args = {"round": round_id, "model_id": merged.model_id, "size": len(merged.data)}
    _propose(node, key_file, "approve_round", args, wait)
