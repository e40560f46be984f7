"""`vigil proof export` and `vigil proof verify`: facts an auditor checks with no network.

Export asks one node, checks every answer from the genesis file (as every
verified read does), and writes one file holding the validator-set changes,
certified headers and proofs the fact needs, with the fact in words
(node/app/bundle.py). Verify reads only that file and the genesis file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import NodeError, call, find, node_option
from cli.model import _write
from cli.tx_cmd import checked_tx
from cli.verify import VerificationFailed, Verifier, load_genesis
from ml.limits import MAX_ARTIFACT_BYTES
from node.app import bundle_check
from node.app.bundle import MAX_BUNDLE_BYTES, Certified, Item, QueryItem, StateItem
from node.app.light import VerificationError
from node.app.state import ANCHOR, storage_key
from node.app.types import ScorePayload
from vm.jsonvalues import to_json

MAX_PROPOSAL_PAGES = 200
"""Pages of 50 proposals searched for the one that approved a model (10,000 proposals)."""
PROPOSAL_PAGE = 50


def _genesis_option(f):  # type: ignore[no-untyped-def]
    return click.option(
        "--genesis",
        "genesis_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The chain's genesis file, the root of every check (or set VIGIL_GENESIS).",
    )(f)


@click.group()
def proof() -> None:
    """Offline proof bundles: export a proven fact to a file; verify one with no network."""


class _Export:
    """Items gathered from one node, each checked as it arrives."""

    def __init__(self, node: str, genesis_file: Path | None) -> None:
        self.node = node
        self.genesis = load_genesis(genesis_file)
        self.verifier = Verifier(node, self.genesis)
        self.verifier.follow_changes()
        self.blocks: dict[int, Certified] = {}
        self.items: list[Item] = []
        self.artifacts: list[bytes] = []

    def state(self, key: bytes) -> bytes | None:
        read, header, cert = self.verifier.state_read(key)
        self.blocks.setdefault(header.height, Certified(header, cert))
        self.items.append(StateItem(header.height, read))
        return read.value

    def query(self, contract: str, method: str, args: list[Any]) -> Any:
        run, header, cert, reads = self.verifier.query(contract, method, args)
        self.blocks.setdefault(header.height, Certified(header, cert))
        self.items.append(QueryItem(header.height, contract, method, args, tuple(reads)))
        return run.value

    def tx(self, tx_hash: bytes, with_artifact: bool) -> None:
        info = find(self.node, f"/v1/txs/{tx_hash.hex()}")
        if info is None or info.get("status") != "committed":
            raise click.ClickException(f"transaction {tx_hash.hex()} is not committed")
        item, header, cert = checked_tx(self.verifier, tx_hash, info)
        self.blocks.setdefault(header.height, Certified(header, cert))
        self.items.append(item)
        payload = item.tx.payload
        if isinstance(payload, ScorePayload) and item.receipt.status == "ok":
            model_id = item.receipt.result[0]
            self.query("models", "find", [payload.model, model_id])
            if with_artifact:
                self._artifact(model_id)

    def _artifact(self, model_id: bytes) -> None:
        from cli.client import call_bytes

        try:
            self.artifacts.append(call_bytes("GET", self.node, f"/v1/models/{model_id.hex()}"))
        except NodeError as exc:
            if exc.code != "not_found":
                raise
            click.echo("note: the node does not hold the model's artifact; the bundle shows "
                       "the recorded path sum instead of the score", err=True)  # fmt: skip

    def anchor(self, digest: bytes) -> None:
        from consensus import codec
        from node.app.anchors import AnchorRecord

        queue = [digest]
        for wanted in queue:
            value = self.state(ANCHOR + wanted)
            if value is None:
                continue
            for parent in AnchorRecord.from_wire(wanted, codec.decode(value)).parents:
                if parent not in queue and len(queue) <= bundle_check.MAX_LINEAGE:
                    queue.append(parent)

    def model(self, name: str, version: int) -> None:
        first = ("active", [name]) if version == 0 else ("version", [name, version])
        record = self.query("models", *first)
        if record is not None:
            self.query("governance", "get", [self._approval(name, record)])
        if version != 0:
            self.query("models", "active", [name])

    def _approval(self, name: str, record: dict) -> int:
        """The id of the proposal that approved ``record`` (searched on the node; proven by
        the bundle's governance.get query, which must match)."""
        for page in range(MAX_PROPOSAL_PAGES):
            body = {"method": "proposals", "args": [page * PROPOSAL_PAGE + 1, PROPOSAL_PAGE]}
            found = call("POST", self.node, "/v1/contracts/governance/query", body)["result"]
            for p in found:
                if p.get("kind") == "approve_model" and self._approves(p, record):
                    return int(p["id"])
            if len(found) < PROPOSAL_PAGE:
                break
        raise click.ClickException(
            f"no executed proposal approved model {name} v{record['version']} at height "
            f"{record['approved_at']} (searched {MAX_PROPOSAL_PAGES * PROPOSAL_PAGE} proposals)"
        )

    def _approves(self, summary: dict, record: dict) -> bool:
        if summary.get("executed_at") != record["approved_at"]:
            return False
        body = {"method": "get", "args": [summary.get("id")]}
        full = call("POST", self.node, "/v1/contracts/governance/query", body)["result"]
        args = full.get("args", {}) if isinstance(full, dict) else {}
        return isinstance(args, dict) and args.get("model_id") == to_json(record["model_id"])

    def write(self, subject: tuple[Any, ...], out: Path, force: bool) -> list[str]:
        try:
            bundle, facts = bundle_check.build(
                self.genesis, subject, self.verifier.changes, self.blocks, self.items,
                self.artifacts,
            )  # fmt: skip
        except VerificationError as exc:
            raise self.verifier.fail(exc) from None
        _write(out, bundle.encode(), force)
        return facts


def _hex32(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{text!r} is not 64 hex digits", param_hint=what)
    return raw


def _model_spec(text: str) -> tuple[str, int]:
    name, sep, version = text.partition("@")
    if not name or (sep and (not version.isdigit() or int(version) < 1)):
        raise click.BadParameter(f"{text!r} is not NAME or NAME@VERSION", param_hint="--model")
    return name, int(version) if sep else 0


@proof.command("export")
@click.option("--tx", "tx_hash", metavar="HASH", help="A committed transaction and receipt.")
@click.option("--anchor", "digest", metavar="DIGEST", help="An anchored dataset and lineage.")
@click.option(
    "--model",
    "model_spec",
    metavar="NAME[@VERSION]",
    help="A model version (default: the active one), its approval and training data.",
)
@click.option("--state", "state", nargs=2, metavar="CONTRACT KEY", default=None,
              help="One contract storage value, or its absence.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option(
    "--no-artifact",
    is_flag=True,
    help="Leave a score's model artifact out (the fact shows the recorded path sum).",
)
@node_option
@_genesis_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def export(tx_hash: str | None, digest: str | None, model_spec: str | None,
           state: tuple[str, str] | None, out: Path, force: bool, no_artifact: bool, node: str,
           genesis_file: Path | None, as_json: bool) -> None:  # fmt: skip
    """Write one self-contained proof of a fact to --out, checked before it is written.

    The file holds the certified headers, the validator-set changes from
    genesis to them, the proofs, and the facts in words; `vigil proof verify`
    checks it with the genesis file and no network.
    """
    chosen = [x for x in (tx_hash, digest, model_spec, state) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --tx, --anchor, --model, --state")
    export = _Export(node, genesis_file)
    if tx_hash:
        wanted = _hex32(tx_hash, "--tx")
        export.tx(wanted, not no_artifact)
        subject: tuple[Any, ...] = ("tx", wanted)
    elif digest:
        wanted = _hex32(digest, "--anchor")
        export.anchor(wanted)
        subject = ("anchor", wanted)
    elif model_spec:
        name, version = _model_spec(model_spec)
        export.model(name, version)
        subject = ("model", name, version)
    else:
        assert state is not None
        contract, key = state
        export.state(storage_key(contract, key))
        subject = ("state", contract, key)
    facts = export.write(subject, out, force)
    size = out.stat().st_size
    if as_json:
        click.echo(json.dumps({"file": str(out), "bytes": size, "facts": facts}, indent=2))
        return
    for fact in facts:
        click.echo(fact)
    click.echo(f"written {out} ({size} bytes); check it anywhere with: "
               f"vigil proof verify {out} --genesis GENESIS")  # fmt: skip


@proof.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_genesis_option
@click.option(
    "--artifact",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A score bundle's model artifact: re-derive the certified score from the signed "
    "features with it, bit for bit (it must be the model the chain approved).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify(file: Path, genesis_file: Path | None, artifact: Path | None, as_json: bool) -> None:
    """Check a proof bundle against the genesis file alone (no network); print its facts.

    A score's bundle carries its model artifact unless it was exported with --no-artifact;
    then --artifact MODEL.vmodel re-derives the score with the auditor's own copy.
    Exit 3 with the failing step if anything in FILE does not check out.
    """
    genesis = load_genesis(genesis_file)
    model = None
    if artifact is not None:
        if artifact.stat().st_size > MAX_ARTIFACT_BYTES:
            raise click.ClickException(f"{artifact}: over {MAX_ARTIFACT_BYTES} bytes")
        model = artifact.read_bytes()
    try:
        if file.stat().st_size > MAX_BUNDLE_BYTES:
            raise VerificationFailed(
                f"verification failed: bundle: {file} is over {MAX_BUNDLE_BYTES} bytes"
            )
        data = file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{file}: cannot read: {exc.strerror}") from None
    try:
        bundle, facts = bundle_check.verify(data, genesis, model)
    except VerificationError as exc:
        raise VerificationFailed(f"verification failed: {exc} (in {file})") from None
    if as_json:
        subject = [x.hex() if isinstance(x, bytes) else x for x in bundle.subject]
        click.echo(json.dumps({"subject": to_json(subject), "facts": facts,
                               "verified": True}, indent=2))  # fmt: skip
        return
    for fact in facts:
        click.echo(fact)
    click.echo(
        f"verified: every proof in {file} checks out against the genesis file of chain "
        f"{genesis.chain_id!r}; no node was asked"
    )
