"""`vigil contract deploy/call/query`: contracts on a running chain, through a node's API.

Arguments are a JSON list in the VM's JSON convention (``vm/jsonvalues.py``):
bytes as ``{"$bytes": "<hex>"}``, tuples as ``{"$tuple": [...]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import call as http
from cli.client import node_option
from cli.ledger_cmds import DEFAULT_VALIDITY, _wait_and_report
from consensus.crypto import KeyFileError, PrivateKey
from node.app.types import CallPayload, DeployPayload, Tx
from vm.errors import CompileError
from vm.gas import MAX_VALUE_BYTES
from vm.jsonvalues import JSONValueError, from_json
from vm.values import encode_value


def _args(text: str) -> list[Any]:
    try:
        value = from_json(json.loads(text))
    except (json.JSONDecodeError, JSONValueError) as exc:
        raise click.BadParameter(
            f"not a JSON list of VM values: {exc}", param_hint="ARGS"
        ) from None
    if type(value) is not list:
        raise click.BadParameter("must be a JSON list, e.g. '[1, \"x\"]'", param_hint="ARGS")
    return value


def _key(path: Path) -> PrivateKey:
    try:
        return PrivateKey.load(path)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None


def _submit(node: str, key: PrivateKey, payload: CallPayload | DeployPayload, wait: bool) -> None:
    status = http("GET", node, "/v1/status")
    genesis_hash = bytes.fromhex(status["genesis_hash"])
    tx = Tx.create(
        key, status["chain_id"], genesis_hash, payload, status["height"] + DEFAULT_VALIDITY
    )
    result = http("POST", node, "/v1/txs", {"tx": tx.encode().hex()})
    click.echo(f"tx {result['hash']}")
    if wait:
        _wait_and_report(node, result["hash"])
        info = http("GET", node, f"/v1/txs/{result['hash']}")
        receipt = info["receipt"]
        click.echo(f"gas used {receipt['gas_used']}")
        click.echo(f"result   {json.dumps(receipt['result'])}")
        for event in receipt["events"]:
            click.echo(f"event    {event['name']} {json.dumps(event['data'])}")


KeyOption = click.option(
    "--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
    envvar="VIGIL_KEY",
    help="An authorised client key, or set VIGIL_KEY (deploying needs the admin role).",
)  # fmt: skip
WaitOption = click.option("--wait", is_flag=True, help="Wait for the commit and show the receipt.")


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The contract's name on the chain.")
@KeyOption
@node_option
@WaitOption
def deploy(source: Path, name: str, key_file: Path, node: str, wait: bool) -> None:
    """Compile SOURCE and deploy it under NAME."""
    from vm.compiler import compile_to_bytes

    try:
        code = compile_to_bytes(source.read_text(encoding="utf-8"), str(source))
    except CompileError as exc:
        raise click.ClickException(str(exc)) from None
    _submit(node, _key(key_file), DeployPayload(name, code), wait)


@click.command("call")
@click.argument("contract")
@click.argument("method")
@click.argument("args", default="[]")
@KeyOption
@node_option
@WaitOption
def call_cmd(contract: str, method: str, args: str, key_file: Path, node: str, wait: bool) -> None:
    """Call CONTRACT.METHOD with ARGS (a JSON list) in a transaction."""
    payload = CallPayload(contract, method, encode_value(_args(args), MAX_VALUE_BYTES))
    _submit(node, _key(key_file), payload, wait)


@click.command()
@click.argument("contract")
@click.argument("method")
@click.argument("args", default="[]")
@node_option
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
def query(contract: str, method: str, args: str, node: str, as_json: bool) -> None:
    """Run CONTRACT.METHOD on a node's committed state, keeping nothing (no transaction)."""
    body = {"method": method, "args": json.loads(args) if args else []}
    _args(args)
    answer = http("POST", node, f"/v1/contracts/{contract}/query", body)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(json.dumps(answer["result"]))
