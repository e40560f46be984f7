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
from cli.ledger_cmds import DEFAULT_VALIDITY, committed
from cli.output import emit, json_flag, say, wants_json
from cli.render import plain, show
from cli.verify import Verifier, cross_checked, load_genesis, verified_text, verify_options
from consensus.crypto import KeyFileError, PrivateKey
from node.app.genesis import Genesis
from node.app.types import CallPayload, DeployPayload, Tx
from vm.errors import CompileError
from vm.gas import MAX_VALUE_BYTES
from vm.jsonvalues import JSONValueError, from_json, to_json
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
    answer: dict[str, Any] = {"tx": result["hash"]}
    say(f"tx {result['hash']}")
    if wait:
        info = committed(node, result["hash"])
        receipt = info["receipt"]
        answer |= {"height": info["height"], "receipt": receipt}
        if wants_json():
            emit(answer)
        else:
            click.echo(f"committed at height {info['height']}: {receipt['status']}")
            click.echo(f"gas used {receipt['gas_used']}")
            click.echo(f"result   {json.dumps(_plain_vm(receipt['result']))}")
            for event in receipt["events"]:
                click.echo(f"event    {event['name']} {json.dumps(_plain_vm(event['data']))}")
        if receipt["status"] != "ok":
            raise click.ClickException(receipt["error"])
    elif wants_json():
        emit(answer)


def _plain_vm(value: Any) -> Any:
    """A receipt value from the node (VM JSON convention) for a person: bytes as hex."""
    try:
        return plain(from_json(value))
    except JSONValueError:
        return value


KeyOption = click.option(
    "--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
    envvar="VIGIL_KEY",
    help="An authorised client key, or set VIGIL_KEY (deploying needs the admin role).",
)  # fmt: skip


def WaitOption(f):  # type: ignore[no-untyped-def]
    """``--wait`` for the receipt, and ``--json``."""
    f = json_flag(f)
    return click.option("--wait", is_flag=True, help="Wait for the commit and show the receipt.")(f)


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
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def query(contract: str, method: str, args: str, node: str, genesis_file: Path | None,
          no_verify: bool, quorum: int, as_json: bool) -> None:  # fmt: skip
    """Run CONTRACT.METHOD on committed state, keeping nothing (no transaction).

    The node proves every state key the method reads; the method then runs
    here over those values only, at the latest certified height, checked from
    the genesis file (skip with --no-verify). The result shown is this run's.
    """
    parsed = _args(args)
    genesis = None if no_verify else load_genesis(genesis_file)

    def answer(url: str) -> dict[str, Any]:
        value, verified = queried(url, genesis, contract, method, parsed)
        return {"result": to_json(value), "verified": verified}

    out = cross_checked(node, quorum, answer)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(show(from_json(out["result"])))
    click.echo(verified_text(out["verified"]))


def queried(
    node: str,
    genesis: Genesis | None,
    contract: str,
    method: str,
    args: list[Any],
    verifier: Verifier | None = None,
) -> tuple[Any, dict[str, Any] | None]:
    """A query's value and its ``verified`` part (None without a genesis: the node's word)."""
    if genesis is None:
        body = {"method": method, "args": to_json(args)}
        answer = http("POST", node, f"/v1/contracts/{contract}/query", body)
        try:
            return from_json(answer["result"]), None
        except (KeyError, TypeError, JSONValueError) as exc:
            raise click.ClickException(f"the node's answer is malformed: {exc}") from None
    verifier = verifier or Verifier(node, genesis)
    run, header, cert, _ = verifier.query(contract, method, args)
    return run.value, verifier.verified(f"{contract}.{method} over its state", header, cert)
