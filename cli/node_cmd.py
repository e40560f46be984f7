"""`vigil node init` and `vigil node run`: set up and run one organisation's node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from cli.output import emit, json_flag, wants_json
from consensus.crypto import KeyFileError, PrivateKey, key_hex
from consensus.record import FieldError
from node.app.genesis import Genesis
from node.config import ConfigError, Home, init_home
from node.store import Store, StoreError

HomePath = click.Path(file_okay=False, path_type=Path)


@click.group()
def node() -> None:
    """Set up and run a node."""


@node.command("init")
@click.option("--home", required=True, type=HomePath, help="Directory for the node's files.")
@click.option(
    "--genesis",
    "genesis_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The chain's genesis.json.",
)
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="This node's key (vigil keygen).",
)
@click.option("--force", is_flag=True, help="Re-initialise a home that has a config already.")
@click.option("--peer-listen", default=None, metavar="HOST:PORT",
              help="Peer address (default: this member's entry in the genesis).")  # fmt: skip
@json_flag
@click.option("--api-listen", default=None, metavar="HOST:PORT",
              help="API address (default: this member's entry in the genesis).")  # fmt: skip
@click.option("--api-tls", is_flag=True,
              help="Serve the API over HTTPS with a self-signed certificate made for the API "
                   "host (api-tls.crt; clients trust it with --cacert).")  # fmt: skip
def init(home: Path, genesis_file: Path, key_file: Path, force: bool, peer_listen: str | None,
         api_listen: str | None, api_tls: bool) -> None:  # fmt: skip
    """Create a node home: copy genesis and key in, write config.json, create the store.

    Peer links use TLS 1.3 with a certificate made from the node key at each start-up
    (peer_tls in config.json; docs/node.md, "Links and TLS").
    """
    try:
        h, genesis, key, config = init_home(
            home, genesis_file, key_file, force=force, peer_listen=peer_listen,
            api_listen=api_listen, api_tls=api_tls,
        )  # fmt: skip
        store = Store(h.data_path, create=True)
        store.close()
    except (ConfigError, KeyFileError, FieldError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    member = next((m for m in genesis.members if m.node_key == key.public), None)
    who = member.org if member else "a node outside the genesis members (it can join later)"
    if wants_json():
        emit({"home": str(home), "org": who, "chain_id": genesis.chain_id,
              "node_key": key_hex(key.public), "peer": config.peer_listen,
              "api": config.api_url,
              "api_cert": str(h.path / config.api_tls_cert) if api_tls else None})  # fmt: skip
        return
    click.echo(f"initialised {home} for {who} on chain {genesis.chain_id}")
    click.echo(f"  node key  {key_hex(key.public)}")
    click.echo(f"  peer      {config.peer_listen}")
    click.echo(f"  api       {config.api_url}")
    if api_tls:
        click.echo(f"  api cert  {h.path / config.api_tls_cert}  (clients: --cacert this file)")
    click.echo(f"start it with: vigil node run --home {home}")


@node.command("run")
@click.option(
    "--home", required=True, type=HomePath, help="The node's directory (vigil node init)."
)
@click.option("--peer-listen", default=None, metavar="HOST:PORT", help="Override config.json.")
@click.option("--api-listen", default=None, metavar="HOST:PORT", help="Override config.json.")
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Override config.json (default info).",
)
@click.option(
    "--log-format",
    default=None,
    type=click.Choice(["text", "json"]),
    help="text for a terminal, json for one object per line (default: config.json's, else text).",
)
@click.option(
    "--resync",
    is_flag=True,
    help="If the store is damaged, move it aside and re-sync certified blocks from peers.",
)
def run(home: Path, peer_listen: str | None, api_listen: str | None, log_level: str | None,
        log_format: str | None, resync: bool) -> None:  # fmt: skip
    """Run the node until SIGINT or SIGTERM."""
    from node.run import NodeHalted, run_node

    h = Home(home)
    try:
        config = h.load_config().override(
            peer_listen=peer_listen, api_listen=api_listen, log_level=log_level,
            log_format=log_format,
        )  # fmt: skip
        genesis = Genesis.load(h.genesis_path)
        key = PrivateKey.load(h.key_path)
    except (ConfigError, KeyFileError, FieldError) as exc:
        raise click.ClickException(str(exc)) from None
    from node.logs import configure

    configure(config.log_level, config.log_format)
    try:
        asyncio.run(run_node(h, config, genesis, key, resync=resync))
    except (StoreError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except NodeHalted as exc:
        raise click.ClickException(f"node halted: {exc} ({halt_hint(str(exc))})") from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen: {exc}") from None


def halt_hint(reason: str) -> str:
    """What to do about a halt. A full disk leaves the store intact (the write that failed
    was refused whole), so freeing space and starting again is enough; seen in chaos runs."""
    if "No space left on device" in reason or "Disk quota exceeded" in reason:
        return "free disk space and start it again: the store is intact"
    return "run again with --resync to rebuild it from its peers"
