"""`vigil tx show`: a committed transaction and its receipt, checked from the genesis file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import find, node_option
from cli.verify import Verifier, load_genesis, verify_options
from consensus import codec, merkle
from consensus.certificate import Certificate
from consensus.record import FieldError
from node.app.light import VerificationError
from node.app.types import Header, Receipt, Tx
from vm.errors import VMError
from vm.gas import MAX_VALUE_BYTES
from vm.jsonvalues import to_json
from vm.values import decode_value


@click.group()
def tx() -> None:
    """Transactions: show one with its receipt, verified."""


def _shown(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def _result(kind: str, receipt: Receipt) -> str:
    if kind == "call" and receipt.result:
        try:
            return json.dumps(to_json(decode_value(receipt.result, MAX_VALUE_BYTES)))
        except VMError:
            return (
                receipt.result.hex()
                if isinstance(receipt.result, bytes)
                else _shown(receipt.result)
            )
    return _shown(receipt.result)


def _checked(
    verifier: Verifier, tx_hash: bytes, info: dict
) -> tuple[Tx, Receipt, Header, Certificate]:
    """The transaction and receipt the node showed, proven under a certified header."""
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
    return tx, receipt, header, cert


@tx.command("show")
@click.argument("tx_hash", metavar="HASH")
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(
    tx_hash: str, node: str, genesis_file: Path | None, no_verify: bool, as_json: bool
) -> None:
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
    info = find(node, f"/v1/txs/{tx_hash}")
    if info is None:
        click.echo(f"{tx_hash}: not committed (and not pending on this node)")
        raise SystemExit(1)
    if info.get("status") != "committed":
        click.echo(f"{tx_hash}: pending, not committed yet")
        raise SystemExit(1)
    if genesis is None:
        if as_json:
            click.echo(json.dumps({**info, "verified": None}, indent=2))
            return
        receipt = info["receipt"]
        click.echo(f"tx        {tx_hash}")
        click.echo(f"kind      {info['tx']['kind']}   sender {info['tx']['sender']}")
        click.echo(f"height    {info['height']}  (index {info['index']})")
        click.echo(f"status    {receipt['status']}   gas {receipt.get('gas_used', 0)}")
        click.echo("verified  nothing (--no-verify: this is the node's word)")
        return
    verifier = Verifier(node, genesis)
    tx_, receipt, header, cert = _checked(verifier, wanted, info)
    signers = verifier.signers(cert)
    if as_json:
        click.echo(
            json.dumps(
                {**info, "verified": {"height": header.height, "certified_by": signers}}, indent=2
            )
        )
        return
    click.echo(f"tx        {tx_hash}")
    click.echo(f"kind      {tx_.kind}   sender {tx_.sender.hex()}")
    click.echo(f"height    {header.height}  (index {info['index']})")
    click.echo(f"status    {receipt.status}   gas {receipt.gas_used}")
    if receipt.error:
        click.echo(f"error     {receipt.error}")
    if receipt.result is not None:
        click.echo(f"result    {_result(tx_.kind, receipt)}")
    for event in receipt.events:
        click.echo(f"event     {event.name} {_shown(event.data)}")
    click.echo(
        f"verified  transaction and receipt proven in block {header.height}, certified by {signers}"
    )
