"""Client commands: `vigil status`, `vigil anchor`, `vigil verify-file`."""

from __future__ import annotations

import hashlib
import json
import mimetypes
from pathlib import Path
from typing import Any

import click

from cli.client import call, find, node_option
from cli.output import emit, json_flag, say, wants_json
from cli.verify import (
    NOT_VERIFIED,
    VerificationFailed,
    Verifier,
    cross_checked,
    load_genesis,
    verified_text,
    verify_options,
)
from consensus import codec
from consensus.crypto import KeyFileError, PrivateKey
from consensus.record import FieldError
from node.app.anchors import AnchorRecord
from node.app.genesis import Genesis
from node.app.state import ANCHOR, VALIDATORS, storage_key
from node.app.system import MODELS_CONTRACT
from node.app.types import AnchorPayload, Tx
from vm.gas import MAX_STORAGE_VALUE_BYTES
from vm.values import decode_value

DEFAULT_VALIDITY = 100
"""Heights a CLI transaction stays valid for (must not exceed the chain's max_tx_window)."""
READ_CHUNK = 1024 * 1024
WAIT_S = 30
"""How long --wait waits for a commit."""


def _status(url: str, genesis: Genesis | None) -> dict[str, Any]:
    s = call("GET", url, "/v1/status")
    s["verified"] = None
    if genesis is None:
        return s
    if s.get("genesis_hash") != genesis.hash().hex():
        raise VerificationFailed(
            f"verification failed: the node at {url} runs genesis "
            f"{str(s.get('genesis_hash'))[:16]}..., not this genesis file's "
            f"{genesis.hash().hex()[:16]}..."
        )
    if s["height"] > 0:
        verifier = Verifier(url, genesis)
        _, header, cert = verifier.state(VALIDATORS)
        s["verified"] = verifier.verified("latest block", header, cert)
    return s


@click.command()
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print the node's status as JSON.")
def status(node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
           as_json: bool) -> None:  # fmt: skip
    """Show a node's height, view, primary, peers and mempool.

    The latest height is checked: its block's certificate against the
    validator set followed from the genesis file (skip with --no-verify).
    With --quorum, the nodes asked must run the same chain.
    """
    genesis = None if no_verify else load_genesis(genesis_file)
    same_chain = lambda s: (s.get("chain_id"), s.get("genesis_hash"))  # noqa: E731
    s = cross_checked(node, quorum, lambda url: _status(url, genesis), same_chain)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(f"chain      {s['chain_id']}  (genesis {s['genesis_hash'][:16]}...)")
    click.echo(f"height     {s['height']}   state root {s['state_root'][:16]}...")
    change = " (view change under way)" if s["in_view_change"] else ""
    click.echo(f"view       {s['view']}{change}   primary {s['primary'][:16]}...")
    click.echo(f"peers      {len(s['peers'])} of {len(s['validators']) - 1} connected")
    click.echo(f"mempool    {s['mempool']['txs']} txs, {s['mempool']['bytes']} bytes")
    if s["verified"] is not None:
        click.echo(verified_text(s["verified"]))
    elif no_verify:
        click.echo(f"verified: {NOT_VERIFIED}")
    else:
        click.echo("verified: nothing to check yet (no block committed)")


def file_digest(path: Path) -> tuple[bytes, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.digest(), size


def anchor_payload(
    file: Path, parents: tuple[str, ...], meta: tuple[str, ...], media_type: str | None
) -> AnchorPayload:
    """What anchoring FILE records: digest, size, media type, lineage and metadata."""
    digest, size = file_digest(file)
    metadata = {}
    for item in meta:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        metadata[k] = v
    media = media_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    try:
        return AnchorPayload(
            digest, size, media, tuple(sorted({_digest_arg(p) for p in parents})),
            tuple(sorted(metadata.items())),
        )  # fmt: skip
    except FieldError as exc:
        raise click.ClickException(str(exc)) from None


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
@json_flag
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
    payload = anchor_payload(file, parents, meta, media_type)
    digest = payload.digest
    s = call("GET", node, "/v1/status")
    genesis_hash = bytes.fromhex(s["genesis_hash"])
    tx = Tx.create(key, s["chain_id"], genesis_hash, payload, s["height"] + DEFAULT_VALIDITY)
    result = call("POST", node, "/v1/txs", {"tx": tx.encode().hex()})
    answer: dict[str, Any] = {"tx": result["hash"], "digest": digest.hex()}
    say(f"digest {digest.hex()}")
    say(f"tx     {result['hash']}")
    if not wait:
        if wants_json():
            emit(answer)
        return
    info = committed(node, result["hash"])
    receipt = info["receipt"]
    if wants_json():
        emit(answer | {"height": info["height"], "receipt": receipt})
    else:
        click.echo(f"committed at height {info['height']}: {receipt['status']}")
    if receipt["status"] != "ok":
        raise click.ClickException(receipt["error"])


def committed(node: str, tx_hash: str) -> dict[str, Any]:
    """The node's answer for ``tx_hash`` once committed (waits up to WAIT_S)."""
    info = call("GET", node, f"/v1/txs/{tx_hash}?wait={WAIT_S}", timeout=WAIT_S + 10)
    if info["status"] != "committed":
        raise click.ClickException(f"not committed within {WAIT_S} s (still {info['status']})")
    return info


def _wait_and_report(node: str, tx_hash: str) -> None:
    info = committed(node, tx_hash)
    receipt = info["receipt"]
    click.echo(f"committed at height {info['height']}: {receipt['status']}")
    if receipt["status"] != "ok":
        raise click.ClickException(receipt["error"])


def _anchor_answer(url: str, genesis: Genesis | None, digest: bytes) -> dict[str, Any]:
    """One node's record of ``digest``: proven unless ``genesis`` is None (then with the node's
    lineage too, which is not proven)."""
    if genesis is None:
        info = find(url, f"/v1/anchors/{digest.hex()}")
        if info is None:
            return {"digest": digest.hex(), "anchored": False, "anchor": None, "verified": None}
        return {"digest": digest.hex(), "anchored": True, "anchor": info["anchor"],
                "models": info.get("models", []), "ancestors": info["ancestors"],
                "descendants": info["descendants"], "verified": None}  # fmt: skip
    verifier = Verifier(url, genesis)
    value, header, cert = verifier.state(ANCHOR + digest)
    if value is None:
        verified = verifier.verified("absence", header, cert)
        return {"digest": digest.hex(), "anchored": False, "anchor": None, "verified": verified}
    record = AnchorRecord.from_wire(digest, codec.decode(value))
    used, header, cert = verifier.state(storage_key(MODELS_CONTRACT, "trained:" + digest.hex()))
    trained = [] if used is None else decode_value(used, MAX_STORAGE_VALUE_BYTES)
    verified = verifier.verified("anchor record and the models trained on it", header, cert)
    return {"digest": digest.hex(), "anchored": True, "anchor": record.to_json(),
            "models": [{"name": n, "version": v} for n, v in trained],
            "verified": verified}  # fmt: skip


@click.command("verify-file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_file(file: Path, node: str, genesis_file: Path | None, no_verify: bool, quorum: int,
                as_json: bool) -> None:  # fmt: skip
    """Tell whether FILE's digest is anchored, where, and its lineage. Exit 1 if not.

    The anchor record, or its absence, is proven against the latest certified
    block, checked from the genesis file (skip with --no-verify; then the
    node's lineage of the file is listed too, on its word). `vigil proof
    export --anchor DIGEST` proves the lineage as well.
    """
    digest, size = file_digest(file)
    genesis = None if no_verify else load_genesis(genesis_file)
    out = cross_checked(node, quorum, lambda url: _anchor_answer(url, genesis, digest))
    out = {"file": str(file), "size": size, **out}
    if as_json:
        click.echo(json.dumps(out, indent=2))
    elif not out["anchored"]:
        click.echo(f"{file}: digest {digest.hex()} is NOT anchored")
        click.echo(verified_text(out["verified"]))
    else:
        _print_anchor(file, size, out)
    if not out["anchored"]:
        raise SystemExit(1)


def _print_anchor(file: Path, size: int, out: dict[str, Any]) -> None:
    a = out["anchor"]
    click.echo(f"{file}: anchored at height {a['height']} in tx {a['tx']}")
    click.echo(f"  digest {a['digest']}  size {a['size']}  type {a['media_type']}")
    click.echo(f"  by {a['sender']}")
    if a["size"] != size:
        click.echo(f"  warning: anchored size {a['size']} differs from this file's {size}")
    for k, v in a["metadata"].items():
        click.echo(f"  {k} = {v}")
    for parent in a["parents"]:
        click.echo(f"  derives from {parent}")
    for r in out.get("descendants", []):
        click.echo(f"  used by      {r['digest']} (height {r['height']})")
    for m in out.get("models", []):
        click.echo(f"  trained      model {m['name']} version {m['version']}")
    click.echo(verified_text(out["verified"]))
