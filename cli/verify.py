"""Verified reads for the CLI: a node's answers checked from the genesis file alone.

The checking is :mod:`node.app.light` (no I/O); this module fetches what it
needs over the node's API, turns a failed check into exit code 3 with the step
that failed, and names who certified an answer.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from cli.client import call
from consensus import codec, smt
from consensus.certificate import Certificate
from consensus.crypto import key_hex
from consensus.record import FieldError
from node.app.genesis import Genesis
from node.app.light import LightClient, ValidatorChange, VerificationError
from node.app.types import Header

EXIT_VERIFICATION_FAILED = 3
MAX_CHANGE_PAGES = 1_000
"""Pages of validator-set changes the CLI follows before giving up (64 changes a page)."""


class VerificationFailed(click.ClickException):
    """A node's answer did not check out against the genesis file (exit code 3)."""

    exit_code = EXIT_VERIFICATION_FAILED


def verify_options(f):  # type: ignore[no-untyped-def]
    """``--genesis FILE`` (or VIGIL_GENESIS) and ``--no-verify``."""
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
        return value, header, cert

    def signers(self, cert: Certificate) -> str:
        names = sorted(self.orgs.get(v.validator, key_hex(v.validator)[:12]) for v in cert.votes)
        total = len(self.light.validators_at(cert.height))
        return f"{', '.join(names)} ({len(names)} of {total} validators)"
