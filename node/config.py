"""A node's home directory and its config file.

<home>/config.json     settings (below); command-line flags override them
<home>/genesis.json    copy of the chain's genesis
<home>/node.key        the node's Ed25519 key (mode 0600)
<home>/data/           the LevelDB store
<home>/peer-tls.pem    the peer port's TLS certificate and key, made from node.key at each
                       start-up (mode 0600; node/tls.py)
<home>/api-tls.crt     the API's certificate and key when HTTPS is on and
<home>/api-tls.key     `vigil node init --api-tls` made them (any paths may be configured)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from consensus.crypto import PrivateKey, key_hex
from node.app.genesis import Genesis
from node.logs import LOG_FORMATS, LOG_LEVELS
from node.mempool import MAX_MEMPOOL_BYTES, MAX_MEMPOOL_TXS

CONFIG_FILE = "config.json"
GENESIS_FILE = "genesis.json"
KEY_FILE = "node.key"
DATA_DIR = "data"


class ConfigError(Exception):
    """The home directory or its config is missing or wrong; the message says how to fix it."""


@dataclass(frozen=True)
class NodeConfig:
    peer_listen: str
    """HOST:PORT the peer websocket listens on."""
    api_listen: str
    """HOST:PORT the JSON API listens on."""
    progress_timeout_ms: int = 4_000
    request_timeout_ms: int = 10_000
    view_change_timeout_ms: int = 4_000
    mempool_max_txs: int = MAX_MEMPOOL_TXS
    mempool_max_bytes: int = MAX_MEMPOOL_BYTES
    log_level: str = "info"
    log_format: str = "text"
    """"text" for a person at a terminal, "json" for one object per line (node/logs.py)."""
    peer_tls: bool = True
    """TLS 1.3 on the peer links (node/p2p.py). false: plain links, for development only
    (logged; a WARNING unless the peer address is loopback). Every node of a network must
    agree: a link between a TLS node and a plain one fails with a logged reason."""
    api_tls_cert: str = ""
    api_tls_key: str = ""
    """PEM files (paths relative to the home) for HTTPS on the API; both empty: plain HTTP.
    The key file must be readable by its owner only."""

    @classmethod
    def from_json_obj(cls, obj: Any, where: str) -> NodeConfig:
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(obj) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown setting {unknown[0]!r}; known: {sorted(known)}")
        for name in ("peer_listen", "api_listen"):
            if name not in obj:
                raise ConfigError(f"{where}: missing {name!r}")
        types = {"int": int, "str": str, "bool": bool}
        for name, value in obj.items():
            declared = known[name].type
            expected = types[declared] if isinstance(declared, str) else declared
            if type(value) is not expected:
                what = "true or false" if expected is bool else expected.__name__
                raise ConfigError(f"{where}: {name} must be {what}")
        for name, allowed in (("log_level", LOG_LEVELS), ("log_format", LOG_FORMATS)):
            if name in obj and obj[name] not in allowed:
                raise ConfigError(f"{where}: {name} must be one of {', '.join(allowed)}")
        return cls(**obj)

    def override(self, **changes: Any) -> NodeConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def api_scheme(self) -> str:
        return "https" if self.api_tls_cert or self.api_tls_key else "http"

    @property
    def api_url(self) -> str:
        return f"{self.api_scheme}://{self.api_listen}"


@dataclass(frozen=True)
class Home:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def genesis_path(self) -> Path:
        return self.path / GENESIS_FILE

    @property
    def key_path(self) -> Path:
        return self.path / KEY_FILE

    @property
    def data_path(self) -> Path:
        return self.path / DATA_DIR

    def load_config(self) -> NodeConfig:
        try:
            text = self.config_path.read_text()
        except FileNotFoundError:
            raise ConfigError(
                f"{self.config_path}: not found; run `vigil node init --home {self.path} ...` first"
            ) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.config_path}: not valid JSON: {exc}") from None
        return NodeConfig.from_json_obj(obj, str(self.config_path))


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{address!r} is not HOST:PORT")
    return host, int(port)


def init_home(
    home: Path,
    genesis_file: Path,
    key_file: Path,
    *,
    force: bool = False,
    peer_listen: str | None = None,
    api_listen: str | None = None,
    api_tls: bool = False,
) -> tuple[Home, Genesis, PrivateKey, NodeConfig]:
    """Create a node home from a genesis file and a node key (copied in).

    A node whose key is not a genesis member (an organisation that will join
    through governance) must be given its listen addresses. With ``api_tls``, a
    self-signed certificate for the API's host is made (node/tls.py) and the
    config names it, so the API speaks HTTPS.
    """
    genesis = Genesis.load(genesis_file)
    key = PrivateKey.load(key_file)
    member = next((m for m in genesis.members if m.node_key == key.public), None)
    if member is None and (peer_listen is None or api_listen is None):
        raise ConfigError(
            f"{key_file}: key {key_hex(key.public)[:16]}... is not the node key of any member "
            f"in {genesis_file}; a node that will join later needs --peer-listen and --api-listen"
        )
    for address in (peer_listen, api_listen):
        if address is not None:
            split_address(address)
    h = Home(home)
    if h.config_path.exists() and not force:
        raise ConfigError(f"{h.config_path}: already exists; this home is initialised")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    shutil.copyfile(genesis_file, h.genesis_path)
    if h.key_path.exists():
        h.key_path.unlink()
    key.save(h.key_path)
    config = NodeConfig(
        peer_listen=peer_listen or member.peer,  # type: ignore[union-attr]
        api_listen=api_listen or member.api,  # type: ignore[union-attr]
    )
    if api_tls:
        from node.tls import make_api_certificate

        cert, cert_key = make_api_certificate(home, split_address(config.api_listen)[0])
        config = replace(config, api_tls_cert=cert, api_tls_key=cert_key)
    h.config_path.write_text(json.dumps(asdict(config), indent=2) + "\n")
    return h, genesis, key, config
