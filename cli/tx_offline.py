"""`vigil tx sign` and `vigil tx send`: sign on an air-gapped machine, submit from another.

A key that never touches a networked machine can still sign: a signature is
bound to the chain id and the genesis hash, both in the genesis file, so
`tx sign` needs no node. What it cannot learn offline is the chain's height,
so the signer chooses the height the transaction stays valid until. The
signed transaction travels as a small JSON file a person can read (see
FORMAT); `tx send` carries it to a node from any machine, without the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import call, node_option
from cli.contract_node import _args
from cli.ledger_cmds import anchor_payload, committed
from cli.model import _write
from cli.output import emit, json_flag, say, wants_json
from cli.verify import load_genesis
from consensus import codec
from consensus.crypto import KeyFileError, PrivateKey
from consensus.record import FieldError, Record
from node.app.types import CallPayload, Tx
from vm.errors import VMError
from vm.gas import MAX_VALUE_BYTES
from vm.values import encode_value

FORMAT = "vigil-signed-tx/1"
"""The ``format`` of a signed-transaction file: a JSON object whose ``tx`` is the hex of the
canonical transaction; ``hash``, ``chain_id``, ``genesis_hash``, ``valid_until``, ``kind`` and
``sender`` repeat what the transaction says, for a person, and are checked against it."""


def _call_payload(contract: str, method: str, args: str) -> CallPayload:
    """The payload `vigil contract call CONTRACT METHOD ARGS` submits."""
    try:
        return CallPayload(contract, method, encode_value(_args(args), MAX_VALUE_BYTES))
    except (FieldError, VMError) as exc:
        raise click.ClickException(str(exc)) from None


def _document(tx: Tx, genesis_hash: bytes) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "tx": tx.encode().hex(),
        "hash": tx.id.hex(),
        "chain_id": tx.chain_id,
        "genesis_hash": genesis_hash.hex(),
        "valid_until": tx.valid_until_height,
        "kind": tx.kind,
        "sender": tx.sender.hex(),
    }


@click.command("sign")
@click.option(
    "--genesis",
    "genesis_file",
    required=True,
    envvar="VIGIL_GENESIS",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The chain's genesis file: its chain id and hash are what the signature "
    "is bound to (or set VIGIL_GENESIS).",
)
@click.option(
    "--key",
    "key_file",
    required=True,
    envvar="VIGIL_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An authorised client key (or set VIGIL_KEY).",
)
@click.option(
    "--valid-until",
    "valid_until",
    required=True,
    type=click.IntRange(min=1),
    metavar="HEIGHT",
    help="The last height the transaction may commit at. No node is asked, so "
    "choose it for when you send it: above the chain's height then, and at most "
    "the chain's max_tx_window parameter above it; nodes refuse it otherwise.",
)
@click.option(
    "--anchor",
    "anchor_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign an anchor of this file's digest, as `vigil anchor FILE` submits.",
)
@click.option(
    "--parent",
    "parents",
    multiple=True,
    metavar="DIGEST",
    help="With --anchor: a digest the file derives from (repeat).",
)
@click.option(
    "--meta",
    "meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --anchor: a metadata entry (repeat).",
)
@click.option(
    "--media-type",
    default=None,
    help="With --anchor: the media type (default: guessed from the name).",
)
@click.option(
    "--call",
    "call_args",
    nargs=3,
    default=None,
    metavar="CONTRACT METHOD ARGS",
    help="Sign a call of CONTRACT.METHOD with ARGS (a JSON list, e.g. '[41]'), as "
    "`vigil contract call` submits.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The signed-transaction file to write.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@json_flag
def tx_sign(genesis_file: Path, key_file: Path, valid_until: int, anchor_file: Path | None,
            parents: tuple[str, ...], meta: tuple[str, ...], media_type: str | None,
            call_args: tuple[str, str, str] | None, out: Path, force: bool) -> None:  # fmt: skip
    """Sign a transaction without a node, for a key kept off the network.

    Give exactly one of --anchor FILE or --call CONTRACT METHOD ARGS. The
    transaction is written to --out as a small JSON file; carry it to a
    networked machine and submit it with `vigil tx send FILE` before height
    --valid-until passes.
    """
    if (anchor_file is None) == (call_args is None):
        raise click.UsageError("give exactly one of --anchor FILE or --call CONTRACT METHOD ARGS")
    if anchor_file is None and (parents or meta or media_type is not None):
        raise click.UsageError("--parent, --meta and --media-type go with --anchor")
    genesis = load_genesis(genesis_file)
    try:
        key = PrivateKey.load(key_file)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    payload: Record
    if anchor_file is not None:
        payload = anchor_payload(anchor_file, parents, meta, media_type)
    else:
        assert call_args is not None
        payload = _call_payload(*call_args)
    genesis_hash = genesis.hash()
    try:
        tx = Tx.create(key, genesis.chain_id, genesis_hash, payload, valid_until)
    except FieldError as exc:
        raise click.ClickException(str(exc)) from None
    if len(tx.encode()) > Tx.MAX_BYTES:
        raise click.ClickException(
            f"the transaction is {len(tx.encode())} bytes, over the limit of {Tx.MAX_BYTES}"
        )
    text = json.dumps(_document(tx, genesis_hash), indent=2) + "\n"
    _write(out, text.encode(), force)
    say(f"tx {tx.id.hex()}")
    say(f"written {out}")
    if wants_json():
        emit({"tx": tx.id.hex(), "file": str(out)})


def _bad(file: Path, what: str) -> click.ClickException:
    return click.ClickException(f"{file}: {what}; nothing was sent")


def read_signed(file: Path) -> tuple[Tx, bytes]:
    """The transaction in a `vigil tx sign` file and the genesis hash it is signed for.

    Everything in the file is checked before anything is sent: the readable
    fields must say what the transaction says, and the signature must verify
    for the genesis hash the file names (so that hash is the tx's chain's).
    """
    try:
        doc = json.loads(file.read_bytes())
    except OSError as exc:
        raise click.ClickException(f"{file}: cannot read: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise _bad(file, "not a signed transaction file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise _bad(file, f"not a signed transaction file (format {found!r}, expected {FORMAT!r})")
    try:
        raw = bytes.fromhex(doc["tx"])
        genesis_hash = bytes.fromhex(doc["genesis_hash"])
    except (KeyError, TypeError, ValueError):
        raise _bad(file, "its tx and genesis_hash fields must be hex") from None
    try:
        tx = Tx.decode(raw)
    except (FieldError, codec.CodecError, ValueError) as exc:
        raise _bad(file, f"the transaction does not decode: {exc}") from None
    said = {
        "hash": tx.id.hex(),
        "chain_id": tx.chain_id,
        "valid_until": tx.valid_until_height,
        "kind": tx.kind,
        "sender": tx.sender.hex(),
    }
    for field, actual in said.items():
        if doc.get(field) != actual:
            raise _bad(
                file, f"its {field} field says {doc.get(field)!r} but the transaction's is "
                f"{actual!r}: the file was edited or damaged",
            )  # fmt: skip
    if len(genesis_hash) != 32 or not tx.verify_signature(genesis_hash):
        raise _bad(file, f"the signature does not verify for genesis {genesis_hash.hex()}")
    return tx, genesis_hash


@click.command("send")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@click.option("--wait", is_flag=True, help="Wait until the transaction is committed.")
@json_flag
def tx_send(file: Path, node: str, wait: bool) -> None:
    """Submit a transaction signed with `vigil tx sign`; no key is needed.

    The file is checked first, and the node must run the chain the
    transaction is signed for (its chain id and genesis hash); otherwise
    nothing is sent.
    """
    tx, genesis_hash = read_signed(file)
    s = call("GET", node, "/v1/status")
    if (s.get("chain_id"), s.get("genesis_hash")) != (tx.chain_id, genesis_hash.hex()):
        raise click.ClickException(
            f"the node runs chain {s.get('chain_id')!r} (genesis {s.get('genesis_hash')}), "
            f"but the transaction is signed for chain {tx.chain_id!r} (genesis "
            f"{genesis_hash.hex()}); nothing was sent"
        )
    result = call("POST", node, "/v1/txs", {"tx": tx.encode().hex()})
    answer: dict[str, Any] = {"tx": result["hash"]}
    say(f"tx {result['hash']}")
    if not wait:
        if wants_json():
            emit(answer)
        return
    info = committed(node, result["hash"])
    receipt = info["receipt"]
    if wants_json():
        emit(answer | {"height": info["height"], "status": receipt["status"]})
    else:
        click.echo(f"committed at height {info['height']}: {receipt['status']}")
    if receipt["status"] != "ok":
        raise click.ClickException(receipt["error"])
