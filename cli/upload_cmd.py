"""`vigil model upload`: give the nodes a model artifact (checked by the node, then gossiped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.client import call, node_option
from cli.output import emit, json_flag, say, wants_json


def uploaded(node: str, artifact: Path) -> dict[str, Any]:
    """Upload ``artifact``; the node's description of it (id, features, trees, size)."""
    try:
        data = artifact.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{artifact}: cannot read: {exc.strerror}") from None
    info = call("POST", node, "/v1/models", data=data)
    say(f"uploaded model {info['model_id']} ({info['size']} bytes, {info['trees']} trees, "
        f"features {', '.join(info['features'])})")  # fmt: skip
    return info


@click.command()
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@node_option
@json_flag
def upload(artifact: Path, node: str) -> None:
    """Give a node a model artifact; it checks it and passes it to the other nodes."""
    info = uploaded(node, artifact)
    if wants_json():
        emit(info)
