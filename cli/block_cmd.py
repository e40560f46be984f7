"""`vigil block show`: a whole committed block, checked from the genesis file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import call, node_option
from cli.verify import Verifier, cross_checked, load_genesis, verified_text, verify_options
from consensus.certificate import Certificate
from consensus.record import FieldError
from node.app.genesis import Genesis
from node.app.light import VerificationError
from node.app.types import Block, Receipt


@click.group()
def block() -> None:
    """Committed blocks, verified."""


def _parts(verifier: Verifier, answer: dict) -> tuple[Block, Certificate, list[Receipt]]:
    try:
        part = answer["verify"]
        found = Block.decode(bytes.fromhex(part["block"]))
        cert = Certificate.decode(bytes.fromhex(part["certificate"]))
        receipts = [Receipt.decode(bytes.fromhex(r)) for r in part["receipts"]]
    except (KeyError, TypeError, ValueError, FieldError) as exc:
        raise verifier.fail(VerificationError("block answer", f"malformed: {exc}")) from None
    return found, cert, receipts


def _summary(found: Block, receipts: list[Receipt]) -> dict[str, Any]:
    h = found.header
    return {
        "height": h.height,
        "hash": found.hash().hex(),
        "prev_hash": h.prev_hash.hex(),
        "timestamp_ms": h.timestamp_ms,
        "view": h.view,
        "proposer": h.proposer.hex(),
        "state_root": h.state_root.hex(),
        "txs": [
            {"tx": tx.id.hex(), "kind": tx.kind, "sender": tx.sender.hex(), "status": r.status}
            for tx, r in zip(found.txs, receipts, strict=True)
        ],
    }


def _answer(url: str, genesis: Genesis | None, height: str) -> dict[str, Any]:
    answer = call("GET", url, f"/v1/blocks/{height}?raw=1")
    if genesis is None:
        return {
            "height": answer["height"],
            "hash": None,
            "txs": [
                {"tx": t, "status": r["status"]}
                for t, r in zip(answer["txs"], answer["receipts"], strict=False)
            ],
            "verified": None,
        }
    verifier = Verifier(url, genesis)
    verifier.follow_changes()
    found, cert, receipts = _parts(verifier, answer)
    if height != "latest" and found.header.height != int(height):
        raise verifier.fail(
            VerificationError("block answer", f"asked for block {height}, got another")
        )
    try:
        verifier.light.verify_block(found, cert, receipts)
    except VerificationError as exc:
        raise verifier.fail(exc) from None
    what = f"block {found.header.height} and all its transactions ({len(found.txs)}) and receipts"
    return {**_summary(found, receipts), "verified": verifier.verified(what, found.header, cert)}


@block.command("show")
@click.argument("height", default="latest")
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(height: str, node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
         as_json: bool) -> None:  # fmt: skip
    """Show block HEIGHT (default: the latest) with its transactions and their outcomes.

    Verified: the block's certificate against the validators followed from
    the genesis file, its transactions against tx_root and tx_count, and its
    receipts against receipts_root, so nothing was added, left out or changed
    (skip with --no-verify).
    """
    if height != "latest" and not (height.isdigit() and int(height) >= 1):
        raise click.BadParameter("a height (1, 2, ...) or 'latest'", param_hint="HEIGHT")
    genesis = None if no_verify else load_genesis(genesis_file)
    summary = cross_checked(node, quorum, lambda url: _answer(url, genesis, height))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"block     {summary['height']}" + (f"  hash {summary['hash']}" if summary["hash"]
                                                      else ""))  # fmt: skip
    if "timestamp_ms" in summary:
        click.echo(f"time      {summary['timestamp_ms']} ms   view {summary['view']}   "
                   f"proposer {summary['proposer'][:16]}...")  # fmt: skip
        click.echo(f"state     {summary['state_root']}")
    click.echo(f"txs       {len(summary['txs'])}")
    for t in summary["txs"]:
        kind = f"{t['kind']:<7} " if "kind" in t else ""
        click.echo(f"  {t['tx']}  {kind}{t['status']}")
    click.echo(verified_text(summary["verified"]))
