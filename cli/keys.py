"""`vigil keygen`: create an Ed25519 key file."""

from __future__ import annotations

from pathlib import Path

import click

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
def keygen(out: Path, force: bool) -> None:
    """Create a key pair: save the private key, print the public key (hex).

    The same kind of key serves a node, an organisation's admin or a client.
    """
    key = PrivateKey.generate()
    try:
        key.save(out, overwrite=force)
    except KeyFileError as exc:
        raise click.ClickException(f"{exc} (use --force to replace it)") from None
    click.echo(key_hex(key.public))
