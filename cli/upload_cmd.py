"""`vigil model upload`: give a node a model artifact, signed by an authorised key (the node
checks both; its peers fetch the artifact when a block reads it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.client import NodeError, call, node_option
from cli.contract_node import KeyOption, _key
from cli.output import emit, json_flag, say, wants_json
from consensus.crypto import DOMAIN_MODEL_UPLOAD, key_hex, sha256

REFUSED_KEY_CODES = ("unauthorised", "forbidden", "weak_key")
"""The node's codes for a key that may not upload (node/service.py ``upload_refusal``)."""


def uploaded(node: str, artifact: Path, key_file: Path) -> dict[str, Any]:
    """Upload ``artifact`` signed with the key in ``key_file``; the node's description of it
    (id, features, trees, size)."""
    try:
        data = artifact.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{artifact}: cannot read: {exc.strerror}") from None
    key = _key(key_file)
    genesis_hash = bytes.fromhex(call("GET", node, "/v1/status")["genesis_hash"])
    signature = key.sign(DOMAIN_MODEL_UPLOAD, genesis_hash, sha256(data))
    headers = {"X-Vigil-Key": key_hex(key.public), "X-Vigil-Signature": signature.hex()}
    try:
        info = call("POST", node, "/v1/models", data=data, headers=headers)
    except NodeError as exc:
        if exc.code not in REFUSED_KEY_CODES:
            raise
        raise click.ClickException(
            f"the key in {key_file} ({key_hex(key.public)}) may not upload models: {exc}. "
            "Uploads need a client key with the 'submit' role (governance: authorize-client "
            "... --role submit) or a member's admin key."
        ) from None
    say(f"uploaded model {info['model_id']} ({info['size']} bytes, {info['trees']} trees, "
        f"features {', '.join(info['features'])})")  # fmt: skip
    return info


@click.command()
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@KeyOption
@node_option
@json_flag
def upload(artifact: Path, key_file: Path, node: str) -> None:
    """Give a node a model artifact signed with --key (a client with the 'submit' role or a
    member's admin key). The node keeps it; its peers fetch it when a block reads it, and one
    that no proposal or round submission uses is deleted after a grace period."""
    info = uploaded(node, artifact, key_file)
    if wants_json():
        emit(info)
