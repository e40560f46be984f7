"""`vigil tx show`: a committed transaction and its receipt, checked from the genesis file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import find, node_option
from cli.render import plain
from cli.verify import Verifier, cross_checked, load_genesis, verified_text, verify_options
from consensus import codec, merkle
from consensus.certificate import Certificate
from consensus.record import FieldError
from node.app.bundle import TxItem
from node.app.genesis import Genesis
from node.app.light import VerificationError
from node.app.types import Header, Receipt, Tx
from vm.errors import VMError
from vm.gas import MAX_VALUE_BYTES
from vm.jsonvalues import to_json
from vm.values import decode_value


@click.group()
def tx() -> None:
    """Transactions: show one with its receipt (verified); sign one offline, send a signed one."""


def _vm_value(data: Any) -> Any:
    """A call's result or a contract event's data: a VM-encoded value, shown decoded."""
    if isinstance(data, bytes) and data:
        try:
            return to_json(decode_value(data, MAX_VALUE_BYTES))
        except VMError:
            return data.hex()
    return plain(data)


def receipt_view(kind: str, receipt: Receipt) -> dict[str, Any]:
    """A proven receipt in the same JSON shape the node's API gives it."""
    result: Any = plain(receipt.result)
    if kind == "call":
        result = _vm_value(receipt.result)
    elif kind == "score" and receipt.status == "ok":
        model_id, path_sum, outlier, top = receipt.result
        result = {"model_id": model_id.hex(), "path_sum": path_sum, "outlier": outlier,
                  "top_features": [{"feature": f, "share_ppm": p} for f, p in top]}  # fmt: skip
    return {
        "tx_hash": receipt.tx_hash.hex(),
        "status": receipt.status,
        "gas_used": receipt.gas_used,
        "result": result,
        "events": [{"name": e.name, "data": _vm_value(e.data)} for e in receipt.events],
        "error": receipt.error,
    }


def checked_tx(
    verifier: Verifier, tx_hash: bytes, info: dict
) -> tuple[TxItem, Header, Certificate]:
    """The node's answer for a committed transaction, proven: what a proof bundle carries."""
    try:
        part = info["verify"]
        header = Header.decode(bytes.fromhex(part["header"]))
        cert = Certificate.decode(bytes.fromhex(part["certificate"]))
        tx = Tx.decode(bytes.fromhex(info["raw"]))
        receipt = Receipt.decode(bytes.fromhex(part["receipt"]))
        tx_proof = merkle.Proof.from_wire(codec.decode(bytes.fromhex(part["tx_proof"])))
        receipt_proof = merkle.Proof.from_wire(codec.decode(bytes.fromhex(part["receipt_proof"])))
    except (KeyError, TypeError, ValueError, codec.CodecError, FieldError) as exc:
        raise verifier.fail(VerificationError("transaction answer", f"malformed: {exc}")) from None
    if tx.id != tx_hash:
        raise verifier.fail(
            VerificationError("transaction answer", "the node showed another transaction")
        )
    if receipt.tx_hash != tx_hash or receipt_proof.index != tx_proof.index:
        raise verifier.fail(
            VerificationError("receipt answer", "the receipt is not this transaction's")
        )
    verifier.follow_changes()
    try:
        verifier.light.verify_tx(header, cert, tx, tx_proof)
        verifier.light.verify_receipt(header, cert, receipt, receipt_proof)
    except VerificationError as exc:
        raise verifier.fail(exc) from None
    return TxItem(header.height, tx, tx_proof, receipt, receipt_proof), header, cert


def _answer(url: str, genesis: Genesis | None, tx_hash: str) -> dict[str, Any]:
    """What one node says about ``tx_hash``, proven unless ``genesis`` is None."""
    info = find(url, f"/v1/txs/{tx_hash}")
    if info is None or info.get("status") != "committed":
        status = "unknown" if info is None else "pending"
        return {"tx": tx_hash, "status": status, "verified": None}
    if genesis is None:
        return {"tx": tx_hash, "status": "committed", "height": info["height"],
                "index": info["index"], "kind": info["tx"]["kind"],
                "sender": info["tx"]["sender"], "receipt": info["receipt"],
                "verified": None}  # fmt: skip
    verifier = Verifier(url, genesis)
    item, header, cert = checked_tx(verifier, bytes.fromhex(tx_hash), info)
    return {
        "tx": tx_hash,
        "status": "committed",
        "height": header.height,
        "index": item.tx_proof.index,
        "kind": item.tx.kind,
        "sender": item.tx.sender.hex(),
        "receipt": receipt_view(item.tx.kind, item.receipt),
        "verified": verifier.verified("transaction and receipt", header, cert),
    }


@tx.command("show")
@click.argument("tx_hash", metavar="HASH")
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(tx_hash: str, node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
         as_json: bool) -> None:  # fmt: skip
    """Show a committed transaction and its receipt; exit 1 if it is not committed.

    The transaction and its receipt are proven in their block, and the block's
    certificate against the validators followed from the genesis file (skip
    with --no-verify).
    """
    try:
        wanted = bytes.fromhex(tx_hash)
    except ValueError:
        wanted = b""
    if len(wanted) != 32:
        raise click.BadParameter("a transaction hash is 64 hex digits", param_hint="HASH")
    genesis = None if no_verify else load_genesis(genesis_file)
    out = cross_checked(node, quorum, lambda url: _answer(url, genesis, wanted.hex()))
    if as_json:
        click.echo(json.dumps(out, indent=2))
    elif out["status"] != "committed":
        state = "not committed (and not pending on this node)" if out["status"] == "unknown" else (
            "pending, not committed yet")  # fmt: skip
        click.echo(f"{out['tx']}: {state}")
    else:
        _print_tx(out)
    if out["status"] != "committed":
        raise SystemExit(1)


def _print_tx(out: dict[str, Any]) -> None:
    receipt = out["receipt"]
    click.echo(f"tx        {out['tx']}")
    click.echo(f"kind      {out['kind']}   sender {out['sender']}")
    click.echo(f"height    {out['height']}  (index {out['index']})")
    click.echo(f"status    {receipt['status']}   gas {receipt.get('gas_used', 0)}")
    if receipt.get("error"):
        click.echo(f"error     {receipt['error']}")
    if receipt.get("result") is not None:
        click.echo(f"result    {json.dumps(plain(receipt['result']))}")
    for event in receipt.get("events", []):
        click.echo(f"event     {event['name']} {json.dumps(plain(event['data']))}")
    click.echo(verified_text(out["verified"]))
