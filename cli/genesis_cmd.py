"""`vigil genesis`: write the genesis file that starts a chain."""

from __future__ import annotations

import time
from pathlib import Path

import click

from cli.output import emit, json_flag, wants_json
from consensus.crypto import key_hex
from consensus.record import FieldError
from node.app.genesis import DEFAULT_PARAMS, ROLES, Genesis

DEFAULT_CLIENT_ROLES = ("score", "submit")


def _split(text: str, sep: str, what: str, form: str) -> tuple[str, str]:
    left, found, right = text.partition(sep)
    if not found or not left or not right:
        raise click.BadParameter(f"{text!r}: expected {form}", param_hint=what)
    return left.strip(), right.strip()


def _parse_member(text: str) -> dict:
    form = "ORG=PUBKEY@PEERHOST:PORT,APIHOST:PORT"
    org, rest = _split(text, "=", "--member", form)
    key, addresses = _split(rest, "@", "--member", form)
    peer, api = _split(addresses, ",", "--member", form)
    return {"org": org, "node_key": key, "peer": peer, "api": api, "admins": []}


@click.command()
@click.option("--chain-id", required=True, help="Name of the chain, e.g. vigil-banks.")
@click.option(
    "--member",
    "members",
    multiple=True,
    required=True,
    metavar="ORG=PUBKEY@PEERHOST:PORT,APIHOST:PORT",
    help="A member organisation and its node (repeat per member).",
)
@click.option(
    "--admin",
    "admins",
    multiple=True,
    metavar="ORG=PUBKEY",
    help="An admin key of a member (repeat; every member needs one).",
)
@click.option(
    "--client",
    "clients",
    multiple=True,
    metavar="ORG=PUBKEY[:ROLE,...]",
    help=f"An authorised client key of a member; roles from {', '.join(ROLES)} "
    f"(default {','.join(DEFAULT_CLIENT_ROLES)}).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=INT",
    help=f"Override a chain parameter ({', '.join(sorted(DEFAULT_PARAMS))}).",
)
@click.option("--time-ms", type=int, default=None, help="Genesis time in ms (default: now).")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write genesis.json.",
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
@json_flag
def genesis(
    chain_id: str,
    members: tuple[str, ...],
    admins: tuple[str, ...],
    clients: tuple[str, ...],
    params: tuple[str, ...],
    time_ms: int | None,
    out: Path,
    force: bool,
) -> None:
    """Write a genesis file and print its hash.

    \b
    Example:
      vigil genesis --chain-id vigil-banks \\
        --member bank-a=<hex>@10.0.0.1:26601,10.0.0.1:26701 --admin bank-a=<hex> \\
        --member bank-b=<hex>@10.0.0.2:26601,10.0.0.2:26701 --admin bank-b=<hex> \\
        --client bank-a=<hex>:submit,score --out genesis.json
    """
    by_org: dict[str, dict] = {}
    for text in members:
        member = _parse_member(text)
        if member["org"] in by_org:
            raise click.BadParameter(f"org {member['org']!r} given twice", param_hint="--member")
        by_org[member["org"]] = member
    for text in admins:
        org, key = _split(text, "=", "--admin", "ORG=PUBKEY")
        if org not in by_org:
            raise click.BadParameter(f"{org!r} is not a --member org", param_hint="--admin")
        by_org[org]["admins"].append(key)
    for org, member in by_org.items():
        if not member["admins"]:
            raise click.UsageError(f"member {org!r} has no admin key; add --admin {org}=PUBKEY")
    client_objs = []
    for text in clients:
        org, rest = _split(text, "=", "--client", "ORG=PUBKEY[:ROLE,...]")
        key, _, roles = rest.partition(":")
        role_list = [r.strip() for r in roles.split(",")] if roles else list(DEFAULT_CLIENT_ROLES)
        client_objs.append({"key": key, "org": org, "roles": role_list})
    param_values: dict[str, int] = {}
    for text in params:
        name, value = _split(text, "=", "--param", "NAME=INT")
        try:
            param_values[name] = int(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an integer", param_hint="--param") from None
    obj = {
        "chain_id": chain_id,
        "genesis_time_ms": int(time.time() * 1000) if time_ms is None else time_ms,
        "members": list(by_org.values()),
        "clients": client_objs,
        "params": param_values,
    }
    try:
        doc = Genesis.from_json_obj(obj)
        doc.save(out, overwrite=force)
    except FieldError as exc:
        raise click.ClickException(f"invalid genesis: {exc}") from None
    except FileExistsError as exc:
        raise click.ClickException(f"{exc} (use --force to replace it)") from None
    if wants_json():
        emit({"file": str(out), "chain_id": doc.chain_id, "members": len(doc.members),
              "genesis_hash": key_hex(doc.hash())})  # fmt: skip
        return
    click.echo(f"wrote {out}: chain {doc.chain_id}, {len(doc.members)} member(s)")
    click.echo(f"genesis hash {key_hex(doc.hash())}")
