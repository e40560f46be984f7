"""`vigil keygen`: create an Ed25519 key file."""

from __future__ import annotations

from pathlib import Path

import click

from cli.output import emit, json_flag, wants_json
from consensus.crypto import KeyFileError, PrivateKey, key_hex


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (PKCS#8 PEM, mode 0600).",
)
@click.option("--force", is_flag=True, help="Replace an existing key file (the old key is lost).")
@json_flag
def keygen(out: Path, force: bool) -> None:
    """Create a key pair: save the private key, print the public key (hex).

    The same kind of key serves a node, an organisation's admin or a client.
    """
    key = PrivateKey.generate()
    try:
        key.save(out, overwrite=force)
    except KeyFileError as exc:
        raise click.ClickException(f"{exc} (use --force to replace it)") from None
    if wants_json():
        emit({"public_key": key_hex(key.public), "file": str(out)})
        return
    click.echo(key_hex(key.public))
