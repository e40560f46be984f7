"""Client commands: `vigil status`, `vigil anchor`, `vigil verify-file`."""

from __future__ import annotations

import hashlib
import json
import mimetypes
from pathlib import Path

import click

from cli.client import call, find, node_option
from cli.verify import VerificationFailed, Verifier, load_genesis, verify_options
from consensus import codec
from consensus.crypto import KeyFileError, PrivateKey
from consensus.record import FieldError
from node.app.anchors import AnchorRecord
from node.app.state import ANCHOR, VALIDATORS
from node.app.types import AnchorPayload, Tx

DEFAULT_VALIDITY = 100
"""Heights a CLI transaction stays valid for (must not exceed the chain's max_tx_window)."""
READ_CHUNK = 1024 * 1024


@click.command()
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print the node's status as JSON.")
def status(node: str, genesis_file: Path | None, no_verify: bool, as_json: bool) -> None:
    """Show a node's height, view, primary, peers and mempool.

    The latest height is checked: its block's certificate against the
    validator set followed from the genesis file (skip with --no-verify).
    """
    genesis = None if no_verify else load_genesis(genesis_file)
    s = call("GET", node, "/v1/status")
    verified = None
    if genesis is not None:
        if s.get("genesis_hash") != genesis.hash().hex():
            raise VerificationFailed(
                f"verification failed: the node at {node} runs genesis "
                f"{str(s.get('genesis_hash'))[:16]}..., not this genesis file's "
                f"{genesis.hash().hex()[:16]}..."
            )
        if s["height"] > 0:
            verifier = Verifier(node, genesis)
            _, header, cert = verifier.state(VALIDATORS)
            verified = (header.height, verifier.signers(cert))
    if as_json:
        s["verified"] = (
            None if verified is None else {"height": verified[0], "certified_by": verified[1]}
        )
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(f"chain      {s['chain_id']}  (genesis {s['genesis_hash'][:16]}...)")
    click.echo(f"height     {s['height']}   state root {s['state_root'][:16]}...")
    change = " (view change under way)" if s["in_view_change"] else ""
    click.echo(f"view       {s['view']}{change}   primary {s['primary'][:16]}...")
    click.echo(f"peers      {len(s['peers'])} of {len(s['validators']) - 1} connected")
    click.echo(f"mempool    {s['mempool']['txs']} txs, {s['mempool']['bytes']} bytes")
    if verified is not None:
        click.echo(f"verified   height {verified[0]} certified by {verified[1]}")
    elif no_verify:
        click.echo("verified   nothing (--no-verify: this is the node's word)")
    else:
        click.echo("verified   nothing to check yet (no block committed)")


def file_digest(path: Path) -> tuple[bytes, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.digest(), size


def _digest_arg(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{text!r} is not a SHA-256 digest (64 hex digits)")
    return raw


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--parent",
    "parents",
    multiple=True,
    metavar="DIGEST",
    help="Digest this file derives from (repeat).",
)
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE", help="Metadata entry (repeat).")
@click.option("--media-type", default=None, help="Media type (default: guessed from the name).")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="VIGIL_KEY",
    help="An authorised client key (or set VIGIL_KEY).",
)
@node_option
@click.option("--wait", is_flag=True, help="Wait until the anchor is committed.")
def anchor(
    file: Path,
    parents: tuple[str, ...],
    meta: tuple[str, ...],
    media_type: str | None,
    key_file: Path,
    node: str,
    wait: bool,
) -> None:
    """Record FILE's SHA-256 digest, size, type and lineage on the ledger."""  # fmt: skip
    try:
        key = PrivateKey.load(key_file)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    digest, size = file_digest(file)
    metadata = {}
    for item in meta:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        metadata[k] = v
    media = media_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    try:
        payload = AnchorPayload(
            digest, size, media, tuple(sorted({_digest_arg(p) for p in parents})),
            tuple(sorted(metadata.items())),
        )  # fmt: skip
    except FieldError as exc:
        raise click.ClickException(str(exc)) from None
    s = call("GET", node, "/v1/status")
    genesis_hash = bytes.fromhex(s["genesis_hash"])
    tx = Tx.create(key, s["chain_id"], genesis_hash, payload, s["height"] + DEFAULT_VALIDITY)
    result = call("POST", node, "/v1/txs", {"tx": tx.encode().hex()})
    click.echo(f"digest {digest.hex()}")
    click.echo(f"tx     {result['hash']}")
    if wait:
        _wait_and_report(node, result["hash"])


def _wait_and_report(node: str, tx_hash: str) -> None:
    info = call("GET", node, f"/v1/txs/{tx_hash}?wait=30", timeout=40)
    if info["status"] != "committed":
        raise click.ClickException(f"not committed within 30 s (still {info['status']})")
    receipt = info["receipt"]
    click.echo(f"committed at height {info['height']}: {receipt['status']}")
    if receipt["status"] != "ok":
        raise click.ClickException(receipt["error"])


@click.command("verify-file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@verify_options
def verify_file(file: Path, node: str, genesis_file: Path | None, no_verify: bool) -> None:
    """Tell whether FILE's digest is anchored, where, and its lineage. Exit 1 if not.

    The anchor record, or its absence, is proven against the latest certified
    block, checked from the genesis file (skip with --no-verify). The lineage
    listed below it is the node's word.
    """
    digest, size = file_digest(file)
    if no_verify:
        _verify_file_unchecked(file, digest, size, node)
        return
    verifier = Verifier(node, load_genesis(genesis_file))
    value, header, cert = verifier.state(ANCHOR + digest)
    if value is None:
        click.echo(f"{file}: digest {digest.hex()} is NOT anchored")
        click.echo(f"  verified: absence proven at height {header.height}, certified by "
                   f"{verifier.signers(cert)}")  # fmt: skip
        raise SystemExit(1)
    record = AnchorRecord.from_wire(digest, codec.decode(value))
    click.echo(f"{file}: anchored at height {record.height} in tx {record.tx_id.hex()}")
    click.echo(f"  digest {digest.hex()}  size {record.size}  type {record.media_type}")
    click.echo(f"  by {record.sender.hex()}")
    if record.size != size:
        click.echo(f"  warning: anchored size {record.size} differs from this file's {size}")
    for k, v in record.metadata:
        click.echo(f"  {k} = {v}")
    for parent in record.parents:
        click.echo(f"  derives from {parent.hex()}")
    click.echo(f"  verified: anchor record proven at height {header.height}, certified by "
               f"{verifier.signers(cert)}")  # fmt: skip


def _verify_file_unchecked(file: Path, digest: bytes, size: int, node: str) -> None:
    """The node's word: its anchor record and lineage, not checked."""
    info = find(node, f"/v1/anchors/{digest.hex()}")
    if info is None:
        click.echo(f"{file}: digest {digest.hex()} is NOT anchored (node's word, not verified)")
        raise SystemExit(1)
    a = info["anchor"]
    click.echo(f"{file}: anchored at height {a['height']} in tx {a['tx']}")
    click.echo(f"  digest {a['digest']}  size {a['size']}  type {a['media_type']}")
    click.echo(f"  by {a['sender']}")
    if a["size"] != size:
        click.echo(f"  warning: anchored size {a['size']} differs from this file's {size}")
    for k, v in a["metadata"].items():
        click.echo(f"  {k} = {v}")
    for r in info["ancestors"]:
        click.echo(f"  derives from {r['digest']} (height {r['height']})")
    for r in info["descendants"]:
        click.echo(f"  used by      {r['digest']} (height {r['height']})")
    click.echo("  verified: nothing (--no-verify: this is the node's word)")
