"""Verified reads for the CLI: a node's answers checked from the genesis file alone.

The checking is :mod:`node.app.light` (no I/O); this module fetches what it
needs over the node's API, turns a failed check into exit code 3 with the step
that failed, and names who certified an answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.client import MAX_NODES, NodeUnreachable, call, nodes_of
from consensus import codec, smt
from consensus.certificate import Certificate
from consensus.crypto import key_hex
from consensus.record import FieldError
from node.app.genesis import Genesis
from node.app.light import LightClient, QueryRun, StateRead, ValidatorChange, VerificationError
from node.app.types import Header
from vm.errors import VMError
from vm.jsonvalues import to_json

EXIT_VERIFICATION_FAILED = 3
MAX_CHANGE_PAGES = 1_000
"""Pages of validator-set changes the CLI follows before giving up (64 changes a page)."""


class VerificationFailed(click.ClickException):
    """A node's answer did not check out against the genesis file (exit code 3)."""

    exit_code = EXIT_VERIFICATION_FAILED


def verify_options(f):  # type: ignore[no-untyped-def]
    """``--genesis FILE`` (or VIGIL_GENESIS), ``--no-verify`` and ``--quorum K``."""
    f = quorum_option(f)
    f = click.option(
        "--no-verify",
        is_flag=True,
        help="Trust the node's answer instead of checking it against the genesis file.",
    )(f)
    return click.option(
        "--genesis",
        "genesis_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The chain's genesis file, the root of every check (or set VIGIL_GENESIS).",
    )(f)


def load_genesis(genesis_file: Path | None) -> Genesis:
    path = genesis_file or (
        Path(os.environ["VIGIL_GENESIS"]) if os.environ.get("VIGIL_GENESIS") else None
    )
    if path is None:
        raise click.UsageError(
            "checking the node's answer needs the chain's genesis file: pass --genesis FILE or "
            "set VIGIL_GENESIS (or --no-verify to trust the node)"
        )
    try:
        return Genesis.load(path)
    except (OSError, ValueError, FieldError) as exc:
        raise click.UsageError(f"cannot read the genesis file {path}: {exc}") from None


class Verifier:
    """One node's answers, checked: follows validator-set changes once, then reads."""

    def __init__(self, node: str, genesis: Genesis) -> None:
        self.node = node
        self.genesis = genesis
        self.light = LightClient(genesis)
        self.orgs = {m.node_key: m.org for m in genesis.members}
        self._followed = False
        self.changes: list[ValidatorChange] = []
        """The validator-set changes followed (a proof bundle carries them)."""

    def fail(self, exc: VerificationError) -> VerificationFailed:
        return VerificationFailed(f"verification failed: {exc} (answer from {self.node})")

    def follow_changes(self) -> None:
        if self._followed:
            return
        after = 0
        for _ in range(MAX_CHANGE_PAGES):
            page = call("GET", self.node, f"/v1/light/changes?after={after}")
            try:
                changes = [
                    ValidatorChange.parse(
                        bytes.fromhex(c["header"]),
                        bytes.fromhex(c["certificate"]),
                        [bytes.fromhex(v) for v in c["validators"]],
                        bytes.fromhex(c["proof"]),
                    )
                    for c in page["changes"]
                ]
                self.light.follow_all(changes)
                self.changes += changes
                complete = page.get("complete") is True
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise self.fail(
                    VerificationError("validator-set change", f"malformed answer: {exc}")
                ) from None
            except VerificationError as exc:
                raise self.fail(exc) from None
            if complete or not changes:
                self._followed = True
                return
            after = changes[-1].header.height
        raise self.fail(VerificationError("validator-set change", "too many changes to follow"))

    def state(self, key: bytes) -> tuple[bytes | None, Header, Certificate]:
        """``key``'s value (None: proven absent) at the node's latest height, checked."""
        read, header, cert = self.state_read(key)
        return read.value, header, cert

    def state_read(self, key: bytes) -> tuple[StateRead, Header, Certificate]:
        """``key``'s value with its proof, checked against the certified header it came with."""
        self.follow_changes()
        answer = call("GET", self.node, f"/v1/state/{key.hex()}")
        try:
            header = Header.decode(bytes.fromhex(answer["header"]))
            cert = Certificate.decode(bytes.fromhex(answer["certificate"]))
            proof = smt.Proof.from_wire(codec.decode(bytes.fromhex(answer["proof"])))
            value = None if answer["value"] is None else bytes.fromhex(answer["value"])
            answered_for = bytes.fromhex(answer["key"])
        except (KeyError, TypeError, ValueError, codec.CodecError, FieldError) as exc:
            raise self.fail(VerificationError("state answer", f"malformed: {exc}")) from None
        if answered_for != key:
            raise self.fail(VerificationError("state answer", "the node answered for another key"))
        try:
            self.light.verify_state(header, cert, key, value, proof)
        except VerificationError as exc:
            raise self.fail(exc) from None
        return StateRead(key, value, proof), header, cert

    def query(
        self, contract: str, method: str, args: list[Any]
    ) -> tuple[QueryRun, Header, Certificate, list[StateRead]]:
        """Run ``contract.method(args)`` here over the state the node proves it reads.

        A VMError from the run is the query's own failure (the node's proofs checked out).
        """
        self.follow_changes()
        body = {"method": method, "args": to_json(args), "prove": True}
        answer = call("POST", self.node, f"/v1/contracts/{contract}/query", body)
        try:
            part = answer["proof"]
            header = Header.decode(bytes.fromhex(part["header"]))
            cert = Certificate.decode(bytes.fromhex(part["certificate"]))
            reads = [
                StateRead(
                    bytes.fromhex(r["key"]),
                    None if r["value"] is None else bytes.fromhex(r["value"]),
                    smt.Proof.from_wire(codec.decode(bytes.fromhex(r["proof"]))),
                )
                for r in part["reads"]
            ]
        except (KeyError, TypeError, ValueError, codec.CodecError, FieldError) as exc:
            raise self.fail(VerificationError("query answer", f"malformed: {exc}")) from None
        try:
            run = self.light.verify_query(header, cert, contract, method, args, reads)
        except VerificationError as exc:
            raise self.fail(exc) from None
        except VMError as exc:
            raise self.fail(
                VerificationError(
                    "query result",
                    f"the node answered, but the query fails over its proofs: {exc.message}",
                )
            ) from None
        if answer.get("result") != to_json(run.value):
            raise self.fail(
                VerificationError(
                    "query result", "the node's result differs from the query run over its proofs"
                )
            )
        return run, header, cert, reads

    def verified(self, what: str, header: Header, cert: Certificate) -> dict[str, Any]:
        """The ``verified`` part of an answer: what was proven, where, and by whom."""
        return {
            "what": what,
            "height": header.height,
            "certified_by": self.signer_orgs(cert),
            "validators": len(self.light.validators_at(cert.height)),
        }

    def signer_orgs(self, cert: Certificate) -> list[str]:
        return sorted(self.orgs.get(v.validator, key_hex(v.validator)[:12]) for v in cert.votes)

    def signers(self, cert: Certificate) -> str:
        names = sorted(self.orgs.get(v.validator, key_hex(v.validator)[:12]) for v in cert.votes)
        total = len(self.light.validators_at(cert.height))
        return f"{', '.join(names)} ({len(names)} of {total} validators)"


NOT_VERIFIED = "nothing (--no-verify: this is the node's word)"


def verified_text(verified: dict[str, Any] | None) -> str:
    """The human line for an answer's ``verified`` part (None: --no-verify)."""
    if verified is None:
        return f"verified: {NOT_VERIFIED}"
    signers = ", ".join(verified["certified_by"])
    count = len(verified["certified_by"])
    agreed = verified.get("agreed_by")
    return (
        f"verified: {verified['what']} proven at height {verified['height']}, certified by "
        f"{signers} ({count} of {verified['validators']} validators)"
        + (f"; the same answer from {len(agreed)} nodes" if agreed else "")
    )


def quorum_option(f):  # type: ignore[no-untyped-def]
    """``--quorum K``: ask K of the --node URLs and refuse if their certified answers differ."""
    return click.option(
        "--quorum",
        type=click.IntRange(1, MAX_NODES),
        default=1,
        show_default=True,
        help="Ask K of the --node URLs and refuse if their answers differ.",
    )(f)


def _without_verified(answer: dict[str, Any]) -> Any:
    return {k: v for k, v in answer.items() if k != "verified"}


def cross_checked(
    node: str,
    quorum: int,
    answer: Callable[[str], dict[str, Any]],
    facts: Callable[[dict[str, Any]], Any] = _without_verified,
) -> dict[str, Any]:
    """``answer`` from one node (failing over), or from ``quorum`` nodes that must agree.

    Two verified answers can differ only if state changed between the heights they were
    certified at, or if more than a third of the validators signed conflicting blocks.
    """
    if quorum == 1:
        return answer(node)
    urls = nodes_of(node)
    if quorum > len(urls):
        raise click.UsageError(f"--quorum {quorum} needs at least {quorum} --node URLs")
    got: list[tuple[str, dict[str, Any]]] = []
    failures: list[str] = []
    for url in urls:
        if len(got) == quorum:
            break
        try:
            got.append((url, answer(url)))
        except NodeUnreachable as exc:
            failures.append(str(exc))
    if len(got) < quorum:
        raise NodeUnreachable(
            f"only {len(got)} of the {quorum} nodes asked for answered: " + "; ".join(failures)
        )
    first_url, first = got[0]
    for url, other in got[1:]:
        if facts(other) != facts(first):
            raise VerificationFailed(_disagreement(first_url, first, url, other))
    if isinstance(first.get("verified"), dict):
        first["verified"]["agreed_by"] = [url for url, _ in got]
    return first


def _disagreement(a_url: str, a: dict[str, Any], b_url: str, b: dict[str, Any]) -> str:
    heights = [x.get("verified", {}).get("height") if x.get("verified") else None for x in (a, b)]
    if heights[0] is not None and heights[0] == heights[1]:
        return (
            f"verification failed: quorum: {a_url} and {b_url} give different answers certified "
            f"at the same height {heights[0]}: conflicting certified blocks mean more than a "
            "third of the validators misbehaved"
        )
    return (
        f"verification failed: quorum: {a_url} and {b_url} give different answers "
        f"(heights {heights[0]} and {heights[1]}; a write between them explains it: retry)"
    )
