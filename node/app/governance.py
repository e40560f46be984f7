"""What the node reads from the `governance` contract's storage, and what genesis writes there.

Membership, client keys, chain parameters and deployment approvals are
governance state: the `governance` system contract changes them when the
members approve a proposal, and the node reads them here (keys and value
shapes are fixed in docs/governance.md). Genesis writes their initial values.
Values are in the VM's value encoding.

    members                 dict org -> {"node_key", "peer", "api", "admins"}
    client:<key hex>        {"org": str, "roles": [str, ...]}
    param:<name>            int
    deploy:<contract name>  code hash that may be deployed under that name

The validator set of the next height is the members' node keys in org order;
after every block whose writes touch ``members`` the node records it under the
native ``validators`` key (node/app/state.py), which the consensus replica is given.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from node.app.genesis import DEFAULT_PARAMS, OPTIONAL_PARAMS, PARAM_RANGES, Genesis
from node.app.state import Overlay, decoded_value, storage_key
from vm.errors import VMError
from vm.gas import MAX_STORAGE_VALUE_BYTES
from vm.values import encode_value

GOVERNANCE = "governance"
MEMBERS_KEY = "members"
CLIENT_PREFIX = "client:"
PARAM_PREFIX = "param:"
DEPLOY_PREFIX = "deploy:"

GOVERNANCE_PARAMS: dict[str, int] = {"proposal_ttl": 1000, "score_fee": 10}
"""Parameters only the system contracts use; genesis writes these defaults."""

MEMBERS_STATE_KEY = storage_key(GOVERNANCE, MEMBERS_KEY)


def _get(state: Overlay, key: str) -> Any:
    raw = state.get(storage_key(GOVERNANCE, key))
    return None if raw is None else _decoded(raw)


def _decoded(raw: bytes) -> Any:
    """A stored governance value (decoded once, shared: see state.decoded_value), None if
    damaged."""
    try:
        return decoded_value(raw)
    except VMError:
        return None


def _encode(value: Any) -> bytes:
    return encode_value(value, MAX_STORAGE_VALUE_BYTES)


def members(state: Overlay) -> dict[str, dict]:
    return _roster(state.get(MEMBERS_STATE_KEY))


def validators_of(member_map: dict[str, dict]) -> list[bytes]:
    """Node keys of the members, in org order (the order the primary rotates in)."""
    keys = []
    for org in sorted(member_map):
        key = member_map[org].get("node_key") if type(member_map[org]) is dict else None
        if type(key) is bytes and len(key) == 32 and key not in keys:
            keys.append(key)
    return keys


def peer_addresses(state: Overlay) -> dict[bytes, str]:
    out = {}
    for entry in members(state).values():
        if type(entry) is dict and type(entry.get("node_key")) is bytes:
            out[entry["node_key"]] = str(entry.get("peer", ""))
    return out


MAX_REMEMBERED_KEYS = 4_096
"""Client keys whose storage keys, entries and roles are remembered (pure functions of the
key and the stored bytes): every transaction is checked at admission and again in its
block, and working the roles out from the decoded entries each time was a tenth of those
checks (issue 15)."""


def client(state: Overlay, key: bytes) -> tuple[str, tuple[str, ...]] | None:
    """(org, roles) of an authorised client key, or None."""
    raw = state.get(_client_key(key))
    return None if raw is None else _client_entry(raw)


@lru_cache(maxsize=MAX_REMEMBERED_KEYS)
def _client_key(key: bytes) -> bytes:
    return storage_key(GOVERNANCE, CLIENT_PREFIX + key.hex())


@lru_cache(maxsize=MAX_REMEMBERED_KEYS)
def _client_entry(raw: bytes) -> tuple[str, tuple[str, ...]] | None:
    value = _decoded(raw)
    if type(value) is not dict or type(value.get("org")) is not str:
        return None
    roles = value.get("roles")
    return value["org"], tuple(r for r in roles if type(r) is str) if type(roles) is list else ()


MEMBER_ADMIN = "member-admin"
"""The role a member's admin key has: it may send contract calls (proposals, votes) only."""


def roles_of(state: Overlay, key: bytes) -> tuple[str, ...] | None:
    """The roles a key may use, or None if it is unknown.

    A client's roles count only while its organisation is a member (governance
    cannot list a removed member's clients to delete them). A member's admin key
    has the role MEMBER_ADMIN, also when governance authorised it as a client of
    its own org (``authorize_client`` allows that): it then has both.
    """
    return _roles(key, state.get(_client_key(key)), state.get(MEMBERS_STATE_KEY))


@lru_cache(maxsize=MAX_REMEMBERED_KEYS)
def _roles(
    key: bytes, client_raw: bytes | None, members_raw: bytes | None
) -> tuple[str, ...] | None:
    found = None if client_raw is None else _client_entry(client_raw)
    roster = _roster(members_raw)
    client_roles = found[1] if found is not None and found[0] in roster else None
    if _admin_org(roster, key) is None:
        return client_roles
    return (*(client_roles or ()), MEMBER_ADMIN)


def org_of(state: Overlay, key: bytes) -> str:
    """The organisation a key acts for: a client's org, or the member whose admin it is."""
    found = client(state, key)
    if found is not None:
        return found[0]
    return _admin_org(members(state), key) or ""


def _roster(raw: bytes | None) -> dict[str, dict]:
    value = None if raw is None else _decoded(raw)
    return value if type(value) is dict else {}


def _admin_org(roster: dict[str, dict], key: bytes) -> str | None:
    """The member org that lists ``key`` among its admin keys, if any."""
    for org, entry in roster.items():
        if type(entry) is dict and key in (entry.get("admins") or []):
            return org
    return None


def param(state: Overlay, name: str) -> int:
    """A chain parameter; a missing or out-of-range value falls back to its default."""
    value = _get(state, PARAM_PREFIX + name)
    lo, hi = PARAM_RANGES[name]
    if type(value) is int and lo <= value <= hi:
        return value
    return DEFAULT_PARAMS[name] if name in DEFAULT_PARAMS else OPTIONAL_PARAMS[name]


def deploy_allowed(state: Overlay, name: str) -> bytes | None:
    value = _get(state, DEPLOY_PREFIX + name)
    return value if type(value) is bytes else None


def genesis_storage(genesis: Genesis) -> dict[bytes, bytes]:
    """The governance contract's storage at height 0."""
    writes = {
        storage_key(GOVERNANCE, MEMBERS_KEY): _encode(
            {
                m.org: {
                    "node_key": m.node_key,
                    "peer": m.peer,
                    "api": m.api,
                    "admins": list(m.admins),
                }
                for m in genesis.members
            }
        ),
        storage_key(GOVERNANCE, "next_proposal"): _encode(1),
    }
    for c in genesis.clients:
        writes[storage_key(GOVERNANCE, CLIENT_PREFIX + c.key.hex())] = _encode(
            {"org": c.org, "roles": list(c.roles)}
        )
    optional = [(n, genesis.param(n)) for n in OPTIONAL_PARAMS]
    for name, value in [*genesis.params, *optional, *GOVERNANCE_PARAMS.items()]:
        writes[storage_key(GOVERNANCE, PARAM_PREFIX + name)] = _encode(value)
    return writes
