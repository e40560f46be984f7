"""`vigil gov ...` and `vigil model propose/list`: governance through the system contracts.

Every change to membership, client keys, parameters, models or deployments is a
proposal to the `governance` contract that member organisations vote on (one
vote per organisation, cast with any of its admin keys). These commands build
the contract calls; the node and the contract do the checking.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import node_option
from cli.contract_node import KeyOption, WaitOption, _key, _submit, queried
from cli.render import show as show_value
from cli.verify import Verifier, cross_checked, load_genesis, verified_text, verify_options
from consensus.crypto import parse_key_hex
from node.app.genesis import Genesis
from node.app.types import CallPayload
from vm.gas import MAX_VALUE_BYTES
from vm.jsonvalues import from_json, to_json
from vm.values import encode_value


def _pubkey(text: str, what: str, *, allow_weak: bool = False) -> bytes:
    try:
        return parse_key_hex(text, allow_weak=allow_weak)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def _propose(node: str, key_file: Path, kind: str, args: dict[str, Any], wait: bool) -> None:
    payload = CallPayload("governance", "propose", encode_value([kind, args], MAX_VALUE_BYTES))
    _submit(node, _key(key_file), payload, wait)


@click.group()
def gov() -> None:
    """Propose, vote on and inspect governance proposals."""


@gov.group()
def propose() -> None:
    """Propose a change; members vote on it with `vigil gov vote`."""


def _proposal_command(fn):  # type: ignore[no-untyped-def]
    return propose.command()(KeyOption(node_option(WaitOption(fn))))


@_proposal_command
@click.argument("org")
@click.option("--node-key", required=True, help="The new member's node public key (hex).")
@click.option("--peer", required=True, metavar="HOST:PORT")
@click.option("--api", "api_address", required=True, metavar="HOST:PORT")
@click.option("--admin", "admins", multiple=True, required=True, help="Admin public key (hex).")
def add_member(org: str, node_key: str, peer: str, api_address: str, admins: tuple[str, ...],
               key_file: Path, node: str, wait: bool) -> None:  # fmt: skip
    """Add ORG as a member; its node joins the validators at the next height."""
    args = {
        "org": org,
        "node_key": _pubkey(node_key, "--node-key"),
        "peer": peer,
        "api": api_address,
        "admins": sorted(_pubkey(a, "--admin") for a in admins),
    }
    _propose(node, key_file, "add_member", args, wait)


@_proposal_command
@click.argument("org")
def remove_member(org: str, key_file: Path, node: str, wait: bool) -> None:
    """Remove ORG; its node leaves the validators at the next height."""
    _propose(node, key_file, "remove_member", {"org": org}, wait)


@_proposal_command
@click.argument("client_key")
@click.option("--org", required=True)
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["admin", "audit", "score", "submit"]))  # fmt: skip
def authorize_client(client_key: str, org: str, roles: tuple[str, ...], key_file: Path, node: str,
                     wait: bool) -> None:  # fmt: skip
    """Authorise CLIENT_KEY (hex) for ORG with the given roles."""
    args = {"key": _pubkey(client_key, "CLIENT_KEY"), "org": org, "roles": sorted(set(roles))}
    _propose(node, key_file, "authorize_client", args, wait)


@_proposal_command
@click.argument("client_key")
def revoke_client(client_key: str, key_file: Path, node: str, wait: bool) -> None:
    """Revoke CLIENT_KEY (hex)."""
    # A weak key may be revoked (the contract allows it); it can never be authorised.
    key = _pubkey(client_key, "CLIENT_KEY", allow_weak=True)
    _propose(node, key_file, "revoke_client", {"key": key}, wait)


@_proposal_command
@click.argument("name")
@click.argument("value", type=int)
def set_param(name: str, value: int, key_file: Path, node: str, wait: bool) -> None:
    """Set chain parameter NAME to VALUE."""
    _propose(node, key_file, "set_param", {"name": name, "value": value}, wait)


@_proposal_command
@click.argument("name")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def allow_deploy(name: str, source: Path, key_file: Path, node: str, wait: bool) -> None:
    """Allow deploying (or upgrading) contract NAME with the code compiled from SOURCE."""
    from vm.bytecode import code_hash
    from vm.compiler import compile_to_bytes
    from vm.errors import CompileError

    try:
        code = compile_to_bytes(source.read_text(encoding="utf-8"), str(source))
    except CompileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"code hash {code_hash(code).hex()}")
    _propose(node, key_file, "allow_deploy", {"name": name, "code_hash": code_hash(code)}, wait)


@_proposal_command
@click.argument("name")
@click.argument("version", type=int)
def activate_model(name: str, version: int, key_file: Path, node: str, wait: bool) -> None:
    """Make approved VERSION the active model of family NAME."""
    _propose(node, key_file, "activate_model", {"name": name, "version": version}, wait)


@_proposal_command
@click.argument("name")
@click.argument("version", type=int)
def rollback_model(name: str, version: int, key_file: Path, node: str, wait: bool) -> None:
    """Go back to an earlier approved VERSION of model family NAME."""
    _propose(node, key_file, "rollback_model", {"name": name, "version": version}, wait)


@gov.command()
@click.argument("proposal", type=int)
@click.argument("decision", type=click.Choice(["yes", "no"]))
@KeyOption
@node_option
@WaitOption
def vote(proposal: int, decision: str, key_file: Path, node: str, wait: bool) -> None:
    """Vote on PROPOSAL for your organisation (with one of its admin keys)."""
    args = encode_value([proposal, decision == "yes"], MAX_VALUE_BYTES)
    _submit(node, _key(key_file), CallPayload("governance", "vote", args), wait)


MAX_LISTED = 50
"""Proposals one `gov list` shows, and model versions one `model list` shows (the contract's
MAX_LIST)."""


def _answered(
    node: str,
    genesis_file: Path | None,
    no_verify: bool,
    quorum: int,
    contract: str,
    method: str,
    args: list[Any],
) -> tuple[Any, dict[str, Any] | None]:
    """A (verified) query's value, asked of ``quorum`` nodes that must agree."""
    genesis = None if no_verify else load_genesis(genesis_file)

    def answer(url: str) -> dict[str, Any]:
        value, verified = queried(url, genesis, contract, method, args)
        return {"result": to_json(value), "verified": verified}

    out = cross_checked(node, quorum, answer)
    return from_json(out["result"]), out["verified"]


def _print(value: Any, verified: dict[str, Any] | None, as_json: bool, human: list[str]) -> None:
    if as_json:
        click.echo(json.dumps({"result": to_json(value), "verified": verified}, indent=2))
        return
    for line in human:
        click.echo(line)
    click.echo(verified_text(verified))


@gov.command("list")
@node_option
@verify_options
@click.option("--first", default=1, show_default=True, help="First proposal id.")
@click.option("--count", default=MAX_LISTED, show_default=True,
              type=click.IntRange(1, MAX_LISTED), help=f"At most {MAX_LISTED}.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(node: str, genesis_file: Path | None, no_verify: bool, quorum: int, first: int,
             count: int, as_json: bool) -> None:  # fmt: skip
    """List proposals with their status and votes (verified: the governance contract's
    `proposals` method run here over proven state; skip with --no-verify)."""
    found, verified = _answered(node, genesis_file, no_verify, quorum, "governance", "proposals",
                                [first, count])  # fmt: skip
    human = [
        f"#{p['id']:<4} {p['kind']:<17} {p['status']:<9} yes {p['yes']} no {p['no']}  "
        f"by {p['proposer']} at {p['created']}"
        + (f", executed at {p['executed_at']}" if p["executed_at"] is not None else "")
        for p in found
    ] or [f"no proposals from #{first} on"]
    _print(found, verified, as_json, human)


@gov.command()
@click.argument("proposal", type=int)
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(proposal: int, node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
         as_json: bool) -> None:  # fmt: skip
    """Show one proposal: its action, dry run, votes and outcome. Exit 1 if there is none.

    Verified: the governance contract's `get` method runs here over state the
    node proves, checked from the genesis file (skip with --no-verify).
    """
    record, verified = _answered(node, genesis_file, no_verify, quorum, "governance", "get",
                                 [proposal])  # fmt: skip
    human = [f"no proposal {proposal}"] if record is None else show_value(record).splitlines()
    _print(record, verified, as_json, human)
    if record is None:
        raise SystemExit(1)


@click.command("propose")
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model family, e.g. fraud.")
@click.option("--contributor", "contributors", multiple=True, metavar="ORG=WEIGHT",
              help="An org whose data trained the model, with its share (repeat). Leave it out "
                   "on a chain that requires anchored training data: the weights are then the "
                   "training rows each member anchored, as the artifact records them.")  # fmt: skip
@KeyOption
@node_option
@WaitOption
def model_propose(artifact: Path, name: str, contributors: tuple[str, ...], key_file: Path,
                  node: str, wait: bool) -> None:  # fmt: skip
    """Upload ARTIFACT to the nodes and propose it as a new version of model family NAME.

    The chain reads the artifact itself: its size, and its training datasets, which must be
    anchored by members (unless governance turned require_anchored_training off). The
    proposal's dry run lists each dataset and the royalty weights the version will get.
    """
    from ml.artifact import load
    from ml.errors import ModelError

    data = artifact.read_bytes()
    try:
        model = load(data)
    except ModelError as exc:
        raise click.ClickException(f"{artifact}: {exc}") from None
    weights: dict[str, int] = {}
    for item in contributors:
        org, _, weight = item.partition("=")
        if not org or not weight.isdigit() or int(weight) <= 0:
            raise click.BadParameter(f"{item!r} is not ORG=WEIGHT", param_hint="--contributor")
        weights[org] = int(weight)
    from cli.upload_cmd import uploaded

    uploaded(node, artifact, key_file)
    anchors = sorted({a for sub in model.contributors for a in sub.anchors})
    if not anchors:
        raise click.ClickException(
            f"{artifact} names no training datasets; train it with `vigil model train FILE...` "
            "(which records each file's digest and rows), and anchor those files with "
            "`vigil anchor FILE`"
        )
    args = {
        "name": name,
        "model_id": model.model_id,
        "size": len(data),
        "contributors": dict(sorted(weights.items())),
        "anchors": anchors,
    }
    _propose(node, key_file, "approve_model", args, wait)


@click.command("list")
@click.argument("name")
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def model_list(name: str, node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
               as_json: bool) -> None:  # fmt: skip
    """Show the versions of model family NAME and which one is active.

    Verified: the models contract's methods run here over state the node
    proves, checked from the genesis file (skip with --no-verify).
    """
    genesis = None if no_verify else load_genesis(genesis_file)
    out = cross_checked(node, quorum, lambda url: _model_records(url, genesis, name))
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    active = from_json(out["active"])
    now = f"active v{active['version']}" if active else "no active version"
    click.echo(f"model {name}: {out['versions']} version(s), {now}")
    for r in (from_json(x) for x in out["records"]):
        weights = ", ".join(f"{org}={w}" for org, w in sorted(r["contributors"].items()))
        mark = "*" if active and active["version"] == r["version"] else " "
        click.echo(f" {mark}v{r['version']:<3} id {r['model_id'].hex()[:16]}...  approved at "
                   f"height {r['approved_at']}  contributors {weights}  "
                   f"{len(r['anchors'])} training anchor(s)")  # fmt: skip
    click.echo(verified_text(out["verified"]))


def _model_records(node: str, genesis: Genesis | None, name: str) -> dict[str, Any]:
    verifier = None if genesis is None else Verifier(node, genesis)

    def ask(method: str, args: list[Any]) -> tuple[Any, dict[str, Any] | None]:
        return queried(node, genesis, "models", method, args, verifier)

    count, verified = ask("versions", [name])
    active, _ = ask("active", [name])
    first = max(1, count - MAX_LISTED + 1)
    records = [ask("version", [name, v])[0] for v in range(first, count + 1)]
    if verified is not None:
        verified["what"] = f"model {name}'s records ({len(records) + 2} queries)"
    return {"name": name, "versions": count, "active": to_json(active),
            "records": [to_json(r) for r in records], "verified": verified}  # fmt: skip
