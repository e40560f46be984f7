"""The genesis file: who the consortium is when the chain starts.

Genesis is a JSON file people read and edit; its *hash* is over the canonical
msgpack encoding of its content, not over the JSON text, so re-indenting the
file or reordering keys, admin keys or members does not change it. Lists whose
order carries no meaning (members, admin keys, clients, roles) are sorted on
load; parameters not given take their defaults, and the written file lists
every parameter so nothing is implicit.

Layout::

    {
      "chain_id": "vigil-local",
      "genesis_time_ms": 1764028800000,
      "members": [{"org": "bank-a", "node_key": "<64 hex>",
                   "peer": "127.0.0.1:26601", "api": "127.0.0.1:26701",
                   "admins": ["<64 hex>", ...]}, ...],
      "clients": [{"key": "<64 hex>", "org": "bank-a", "roles": ["submit"]}, ...],
      "params": {"max_block_txs": 2000, ...}
    }
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consensus.certificate import MAX_VALIDATORS
from consensus.crypto import PUBLIC_KEY_BYTES, key_hex, parse_key_hex
from consensus.record import (
    Bytes,
    FieldError,
    Int,
    Nested,
    OneOf,
    Pairs,
    Record,
    Seq,
    Str,
    wire,
)
from node.app.types import MAX_BLOCK_BYTES, MAX_BLOCK_TXS, ChainId, PublicKey
from vm.gas import MAX_GAS_LIMIT

MAX_GENESIS_FILE_BYTES = 4 * 1024 * 1024
MAX_ADMINS_PER_MEMBER = 16
MAX_GENESIS_CLIENTS = 10_000
MAX_GENESIS_PARAMS = 64
ORG_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"
ADDRESS_PATTERN = r"[A-Za-z0-9.-]{1,253}:[0-9]{1,5}"
ROLES = ("admin", "audit", "score", "submit")

DEFAULT_PARAMS: dict[str, int] = {
    "max_block_txs": 2000,
    "max_block_bytes": 4 * 1024 * 1024,
    "max_tx_window": 1000,
    "max_tx_gas": 10_000_000,
    "max_block_gas": 20_000_000,
}
"""Every chain parameter and its default. Unknown names in a genesis file are refused.

``max_block_gas`` is sized to the node's timers: the VM runs about 10 M gas/s on
the 2-core reference machine, so a full block executes in about 2 s when the
primary builds it and again when each replica validates it, inside the 4 s
progress timeout. (The old default, 200 M, took about 18 s: a block of heavy
calls made every view time out.)"""
assert DEFAULT_PARAMS["max_tx_gas"] <= DEFAULT_PARAMS["max_block_gas"]

OPTIONAL_PARAMS: dict[str, int] = {
    "drift_window": 1000,
    "drift_notice_ppm": 100_000,
    "drift_alarm_ppm": 250_000,
    "require_anchored_training": 1,
}
"""Parameters a genesis file may omit (they came later); these defaults apply then.

``require_anchored_training`` = 1: governance approves a model version only if its
artifact records its training datasets (format 3) and each is anchored on chain by a
member (the governance contract's approve_model). On for every new chain; a chain whose
state predates the parameter has no value for it, which the contract reads as 0.

Drift (node/app/drift_state.py): PSI is measured over windows of ``drift_window``
committed scores; a window at or above ``drift_notice_ppm`` millionths (0.1)
is a notice, at or above ``drift_alarm_ppm`` (0.25) an alarm: the usual PSI bands."""
assert not set(OPTIONAL_PARAMS) & set(DEFAULT_PARAMS)
assert OPTIONAL_PARAMS["drift_notice_ppm"] <= OPTIONAL_PARAMS["drift_alarm_ppm"]

PARAM_RANGES: dict[str, tuple[int, int]] = {
    "max_block_txs": (1, MAX_BLOCK_TXS),
    "max_block_bytes": (1024, MAX_BLOCK_BYTES),
    "max_tx_window": (1, 1_000_000),
    "max_tx_gas": (1, MAX_GAS_LIMIT),
    "max_block_gas": (1, 100 * MAX_GAS_LIMIT),
    "drift_window": (50, 1_000_000),
    "drift_notice_ppm": (1, 100_000_000),
    "drift_alarm_ppm": (1, 100_000_000),
    "require_anchored_training": (0, 1),
}
assert set(PARAM_RANGES) == set(DEFAULT_PARAMS) | set(OPTIONAL_PARAMS)

Org = Str(32, ORG_PATTERN, "an org id (lowercase letters, digits, '-', '_'; at most 32)")
Address = Str(260, ADDRESS_PATTERN, "a HOST:PORT address")


def _check_port(address: str, path: str) -> None:
    port = int(address.rsplit(":", 1)[1])
    if not 1 <= port <= 65535:
        raise FieldError(path, f"port {port} is outside 1..65535")


@dataclass(frozen=True)
class Member(Record):
    NAME = "member"
    org: str = wire(Org)
    node_key: bytes = wire(PublicKey)
    peer: str = wire(Address)
    api: str = wire(Address)
    admins: tuple[bytes, ...] = wire(Seq(PublicKey, MAX_ADMINS_PER_MEMBER, sorted_unique=True))

    def check_invariants(self, path: str) -> None:
        _check_port(self.peer, f"{path}.peer")
        _check_port(self.api, f"{path}.api")
        if not self.admins:
            raise FieldError(f"{path}.admins", "a member needs at least one admin key")


@dataclass(frozen=True)
class Client(Record):
    NAME = "client"
    key: bytes = wire(Bytes(PUBLIC_KEY_BYTES))
    org: str = wire(Org)
    roles: tuple[str, ...] = wire(Seq(OneOf(*ROLES), len(ROLES), sorted_unique=True))

    def check_invariants(self, path: str) -> None:
        if not self.roles:
            raise FieldError(f"{path}.roles", f"give at least one role of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Genesis(Record):
    NAME = "genesis"
    chain_id: str = wire(ChainId)
    genesis_time_ms: int = wire(Int(0))
    members: tuple[Member, ...] = wire(Seq(Nested(Member), MAX_VALIDATORS))
    clients: tuple[Client, ...] = wire(Seq(Nested(Client), MAX_GENESIS_CLIENTS))
    params: tuple[tuple[str, int], ...] = wire(Pairs(Str(64), Int(0), MAX_GENESIS_PARAMS))

    def check_invariants(self, path: str) -> None:
        if not self.members:
            raise FieldError(f"{path}.members", "a chain needs at least one member")
        orgs = [m.org for m in self.members]
        if orgs != sorted(orgs):
            raise FieldError(f"{path}.members", "members must be sorted by org id")
        _unique(orgs, f"{path}.members", "org", str)
        _unique([m.node_key for m in self.members], f"{path}.members", "node_key", key_hex)
        _unique([m.peer for m in self.members], f"{path}.members", "peer", str)
        _unique([m.api for m in self.members], f"{path}.members", "api", str)
        keys = [c.key for c in self.clients]
        if keys != sorted(keys):
            raise FieldError(f"{path}.clients", "clients must be sorted by key")
        _unique(keys, f"{path}.clients", "key", key_hex)
        known = set(orgs)
        for i, c in enumerate(self.clients):
            if c.org not in known:
                raise FieldError(f"{path}.clients[{i}].org", f"{c.org!r} is not a member org")
        given = dict(self.params)
        unknown = sorted(set(given) - set(PARAM_RANGES))
        missing = sorted(set(DEFAULT_PARAMS) - set(given))
        if unknown or missing:
            problem = f"unknown {unknown}" if unknown else f"missing {missing}"
            raise FieldError(f"{path}.params", f"{problem}; known: {sorted(PARAM_RANGES)}")
        for name, value in given.items():
            lo, hi = PARAM_RANGES[name]
            if not lo <= value <= hi:
                raise FieldError(f"{path}.params.{name}", f"{value} is outside {lo}..{hi}")

    def param(self, name: str) -> int:
        given = dict(self.params)
        return given[name] if name in given else OPTIONAL_PARAMS[name]

    def validators(self) -> list[bytes]:
        return [m.node_key for m in self.members]

    def member(self, org: str) -> Member | None:
        return next((m for m in self.members if m.org == org), None)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "members": [
                {
                    "org": m.org,
                    "node_key": key_hex(m.node_key),
                    "peer": m.peer,
                    "api": m.api,
                    "admins": [key_hex(a) for a in m.admins],
                }
                for m in self.members
            ],
            "clients": [
                {"key": key_hex(c.key), "org": c.org, "roles": list(c.roles)} for c in self.clients
            ],
            "params": dict(self.params),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_obj(), indent=2) + "\n"

    @classmethod
    def from_json_obj(cls, obj: Any) -> Genesis:
        """Build from parsed JSON; sort order-free lists, fill default params, validate."""
        root = _obj(obj, "genesis", {"chain_id", "genesis_time_ms", "members", "clients", "params"})
        members = []
        for i, m in enumerate(_list(root.get("members"), "genesis.members")):
            path = f"genesis.members[{i}]"
            m = _obj(m, path, {"org", "node_key", "peer", "api", "admins"})
            admins = [
                _key(a, f"{path}.admins[{j}]")
                for j, a in enumerate(_list(m.get("admins"), f"{path}.admins"))
            ]
            wire_member = [
                m.get("org"),
                _key(m.get("node_key"), f"{path}.node_key"),
                m.get("peer"),
                m.get("api"),
                sorted(admins),
            ]
            members.append(Member.from_wire(wire_member, path))
        clients = []
        for i, c in enumerate(_list(root.get("clients", []), "genesis.clients")):
            path = f"genesis.clients[{i}]"
            c = _obj(c, path, {"key", "org", "roles"})
            roles = sorted(_list(c.get("roles"), f"{path}.roles"), key=str)
            clients.append(
                Client.from_wire([_key(c.get("key"), f"{path}.key"), c.get("org"), roles], path)
            )
        params_in = root.get("params", {})
        if not isinstance(params_in, dict):
            raise FieldError("genesis.params", "expected an object of name: integer")
        return cls(
            root.get("chain_id"),
            root.get("genesis_time_ms", 0),
            tuple(sorted(members, key=lambda m: m.org)),
            tuple(sorted(clients, key=lambda c: c.key)),
            tuple(sorted({**DEFAULT_PARAMS, **params_in}.items())),
        )

    @classmethod
    def from_json(cls, text: str) -> Genesis:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FieldError("genesis", f"not valid JSON: {exc}") from None
        return cls.from_json_obj(obj)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Genesis:
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > MAX_GENESIS_FILE_BYTES:
                raise FieldError(str(path), f"{size} bytes exceeds {MAX_GENESIS_FILE_BYTES}")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FieldError(str(path), "no such genesis file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FieldError(str(path), f"cannot read: {exc}") from None
        try:
            return cls.from_json(text)
        except FieldError as exc:
            raise FieldError(f"{path}: {exc.path}", exc.problem) from None

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        path = Path(path)
        mode = "w" if overwrite else "x"
        try:
            with path.open(mode, encoding="utf-8") as fh:
                fh.write(self.to_json())
        except FileExistsError:
            raise FileExistsError(f"{path}: already exists; refusing to overwrite") from None


def _unique(values: list[Any], path: str, field: str, show: Any) -> None:
    seen = set()
    for i, v in enumerate(values):
        if v in seen:
            raise FieldError(f"{path}[{i}].{field}", f"{show(v)} is used twice")
        seen.add(v)


def _obj(value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError(path, "expected a JSON object")
    extra = sorted(set(value) - allowed)
    if extra:
        raise FieldError(f"{path}.{extra[0]}", f"unknown field; expected {sorted(allowed)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise FieldError(path, "expected a JSON list")
    return value


def _key(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise FieldError(path, "expected a public key as 64 hex digits")
    try:
        return parse_key_hex(value)
    except ValueError as exc:
        raise FieldError(path, str(exc)) from None
