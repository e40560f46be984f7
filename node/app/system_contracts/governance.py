"""Consortium governance: proposals with typed actions, one vote per member org, execution once.

The node reads some of this contract's storage directly, so these layouts are fixed:

* ``members`` -> {org: {"node_key": bytes32, "peer": "host:port", "api": "host:port",
  "admins": [bytes32, ...]}} (sorted by org); the next height's validators are the
  node keys in sorted-org order. The node writes the initial value at genesis.
* ``client:<key hex>`` -> {"org": str, "roles": sorted subset of admin, audit, score, submit}.
* ``param:<name>`` -> int (ranges in ``_param_range``).
* ``next_proposal`` -> int; public views: get, proposals (``list`` is a reserved builtin
  name in the contract language), member, members, client, param, next_proposal.
* ``deploy:<contract name>`` -> bytes32 code hash allowed to be deployed under that name.

Proposals live under ``proposal:<id>`` (ids from ``next_proposal``, starting at 1) and are
never deleted. Every action is checked against the current state when it is proposed (the
text of that dry run is stored with the proposal) and checked again when it executes.
"""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM)

# Name of the model registry contract that approve/activate/rollback_model call.
MODELS = "models"
ORG_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
ORG_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"
# Org ids match [a-z0-9][a-z0-9_-]{0,31}.
MAX_ORG_CHARS = 32
NAME_FIRST = "abcdefghijklmnopqrstuvwxyz"
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
# Model and contract names match [a-z][a-z0-9_]{0,63} (the node's name pattern).
MAX_NAME_CHARS = 64
HOST_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:"
DIGITS = "0123456789"
# Longest peer/api address ("host:port").
MAX_ADDRESS_CHARS = 255
MAX_PORT = 65535
# Public keys, node keys, model ids, anchors and code hashes are 32 bytes.
KEY_BYTES = 32
# Most member orgs; with MAX_ADMINS and MAX_ADDRESS_CHARS the members record stays
# well under the VM's 64 KiB storage value limit.
MAX_MEMBERS = 32
# Most admin keys of one member org.
MAX_ADMINS = 16
MAX_ROLES = 4
MAX_PARAM_NAME_CHARS = 64
# Most contributor orgs of one model version (contributors are members: MAX_MEMBERS).
MAX_CONTRIBUTORS = 32
# Largest contributor weight (10**18).
MAX_WEIGHT = 1000000000000000000
# Most training-data anchors of one model version.
MAX_ANCHORS = 256
# Training datasets a dry run names one by one (the rest are counted).
MAX_DATASETS_SHOWN = 8
# Largest model artifact size in bytes (1 TiB).
MAX_MODEL_SIZE = 1099511627776
MAX_PROPOSAL_ID = 9223372036854775807
# Most proposals one ``proposals`` call returns.
MAX_LIST = 50
# proposal_ttl when the parameter is absent.
DEFAULT_TTL = 1000
# score_fee when the parameter is absent.
DEFAULT_SCORE_FEE = 10
APPROVAL_PREFIX = "approval:"


# -- value checks (the VM has no type(): str() tells the types apart) --------------------


def _type(x):
    """The type of a caller-supplied value: str() of a non-str value never equals it, and
    its first character tells list, tuple, dict, bytes, bool and int apart."""
    if x is None:
        return "none"
    s = str(x)
    if s == x:
        return "str"
    c = s[:1]
    if c == "[":
        return "list"
    if c == "(":
        return "tuple"
    if c == "{":
        return "dict"
    if c == "b":
        return "bytes"
    if c == "T" or c == "F":
        return "bool"
    return "int"


def _check_str(x, what, max_chars):
    require(_type(x) == "str", f"{what} must be a string")
    require(len(x) >= 1 and len(x) <= max_chars, f"{what} must have 1..{max_chars} characters")


def _check_pattern(x, what, first, chars, max_chars):
    _check_str(x, what, max_chars)
    require(x[0] in first, f"{what} {x} must start with one of {first}")
    for c in x:
        require(c in chars, f"{what} {x} may only contain {chars}")


def _check_org(x, what):
    _check_pattern(x, what, ORG_FIRST, ORG_CHARS, MAX_ORG_CHARS)


def _check_name(x, what):
    _check_pattern(x, what, NAME_FIRST, NAME_CHARS, MAX_NAME_CHARS)


def _check_int(x, what, lo, hi):
    require(_type(x) == "int", f"{what} must be an integer")
    require(x >= lo and x <= hi, f"{what} must be in {lo}..{hi}, not {x}")


def _check_key(x, what):
    require(_type(x) == "bytes", f"{what} must be bytes")
    require(len(x) == KEY_BYTES, f"{what} must be {KEY_BYTES} bytes, not {len(x)}")


def _check_public_key(x, what):
    _check_key(x, what)
    require(
        ledger.key_ok(x),
        f"{what} {_short(x)} is not a usable Ed25519 key (malformed, "
        "non-canonical or of small order)",
    )


def _check_list(x, what, max_items):
    require(_type(x) == "list", f"{what} must be a list")
    require(len(x) >= 1 and len(x) <= max_items, f"{what} must have 1..{max_items} items")


def _check_address(x, what):
    _check_str(x, what, MAX_ADDRESS_CHARS)
    parts = x.split(":")
    require(len(parts) >= 2, f"{what} {x} must be host:port")
    port = parts[len(parts) - 1]
    host = x[: len(x) - len(port) - 1]
    require(len(host) >= 1, f"{what} {x} has no host")
    for c in host:
        require(c in HOST_CHARS, f"{what} host {host} may only contain {HOST_CHARS}")
    require(len(port) >= 1 and len(port) <= 5, f"{what} {x} must end with a port 1..{MAX_PORT}")
    for c in port:
        require(c in DIGITS, f"{what} {x} must end with a port 1..{MAX_PORT}")
    require(int(port) >= 1 and int(port) <= MAX_PORT, f"{what} port must be 1..{MAX_PORT}")


def _check_args(args, names):
    require(_type(args) == "dict", "args must be a dict")
    for name in names:
        require(name in args, f"missing arg {name}")
    for k in args:
        require(k in names, f"unknown arg {k} (expected {names})")


def _roles():
    return ["admin", "audit", "score", "submit"]


def _kinds():
    return [
        "add_member",
        "remove_member",
        "authorize_client",
        "revoke_client",
        "set_param",
        "approve_model",
        "activate_model",
        "rollback_model",
        "allow_deploy",
        "open_round",
        "approve_round",
    ]


def _param_range(name):
    """The inclusive (low, high) range of a known parameter, or None."""
    if name == "max_block_txs":
        return (1, 10000)
    if name == "max_block_bytes":
        return (1024, 8388608)
    if name == "max_tx_window":
        return (1, 1000000)
    if name == "max_tx_gas":
        return (1, 100000000)
    if name == "max_block_gas":
        return (1, 10000000000)
    if name == "proposal_ttl":
        return (1, 1000000)
    if name == "score_fee":
        return (0, 1000000000000000000)
    if name == "drift_window":
        return (50, 1000000)
    if name == "drift_notice_ppm" or name == "drift_alarm_ppm":
        return (1, 100000000)
    if name == "require_anchored_training":
        return (0, 1)
    if name.startswith(APPROVAL_PREFIX) and name[len(APPROVAL_PREFIX) :] in _kinds():
        return (1, 100)
    return None


def _param_value(name):
    value = ledger.get("param:" + name)
    if value is None and name == "proposal_ttl":
        return DEFAULT_TTL
    if value is None and name == "score_fee":
        return DEFAULT_SCORE_FEE
    return value


# -- state helpers -------------------------------------------------------------------------


def _members():
    return ledger.get("members", {})


def _admin_org(roster):
    """The caller's member org; reverts unless the caller key is one of its admins."""
    org = ledger.caller_org()
    require(org in roster, f"only admins of member orgs may do this ({org} is not a member)")
    require(ledger.caller() in roster[org]["admins"], f"key is not an admin of org {org}")
    return org


def _admin_of(key, roster):
    for org, m in roster.items():
        if key in m["admins"]:
            return org
    return None


def _pkey(pid):
    return "proposal:" + str(pid)


def _short(key):
    return key.hex()[:16]


def _approved(kind, yes, n):
    """Default: more than two thirds of the n members; "approval:<kind>" = p: at least p%."""
    p = ledger.get("param:" + APPROVAL_PREFIX + kind)
    if p is None:
        return 3 * yes > 2 * n
    return 100 * yes >= p * n


# -- actions: _check_* validate against current state and describe; _apply_* write -------


def _check_add_member(a, roster):
    _check_args(a, ["org", "node_key", "peer", "api", "admins"])
    org = a["org"]
    _check_org(org, "org")
    require(org not in roster, f"org {org} is already a member")
    require(len(roster) < MAX_MEMBERS, f"the consortium already has {MAX_MEMBERS} members")
    node_key = a["node_key"]
    _check_public_key(node_key, "node_key")
    for other, m in roster.items():
        require(m["node_key"] != node_key, f"node_key is already used by member {other}")
    _check_address(a["peer"], "peer")
    _check_address(a["api"], "api")
    admins = a["admins"]
    _check_list(admins, "admins", MAX_ADMINS)
    seen = {}
    for k in admins:
        _check_public_key(k, "admin key")
        require(k not in seen, f"admin key {_short(k)} is listed twice")
        seen[k] = True
        other = _admin_of(k, roster)
        require(other is None, f"admin key {_short(k)} is already an admin of {other}")
        known = ledger.get("client:" + k.hex())
        require(
            known is None or known["org"] == org,
            f"admin key {_short(k)} is a client of {known['org'] if known else ''}",
        )
    n = len(roster)
    return (
        f"add member {org} (node key {_short(node_key)}, peer {a['peer']}, api {a['api']}, "
        f"{len(admins)} admin key(s)); members and validators go from {n} to {n + 1}"
    )


def _apply_add_member(a, roster):
    roster[a["org"]] = {
        "node_key": a["node_key"],
        "peer": a["peer"],
        "api": a["api"],
        "admins": a["admins"][:],
    }
    ordered = {}
    for org in sorted(roster.keys()):
        ordered[org] = roster[org]
    ledger.put("members", ordered)


def _check_remove_member(a, roster):
    _check_args(a, ["org"])
    org = a["org"]
    _check_org(org, "org")
    require(org in roster, f"org {org} is not a member")
    require(len(roster) > 1, "cannot remove the last member")
    n = len(roster)
    return f"remove member {org}; members and validators go from {n} to {n - 1}"


def _apply_remove_member(a, roster):
    del roster[a["org"]]
    ledger.put("members", roster)


def _check_roles(roles):
    _check_list(roles, "roles", MAX_ROLES)
    seen = {}
    for r in roles:
        require(_type(r) == "str" and r in _roles(), f"roles must be from {_roles()}")
        require(r not in seen, f"role {r} is listed twice")
        seen[r] = True
    return sorted(roles)


def _check_authorize_client(a, roster):
    _check_args(a, ["key", "org", "roles"])
    key = a["key"]
    _check_public_key(key, "key")
    org = a["org"]
    _check_org(org, "org")
    require(org in roster, f"org {org} is not a member")
    roles = _check_roles(a["roles"])
    admin_of = _admin_of(key, roster)
    require(admin_of is None or admin_of == org, f"key {_short(key)} is an admin of org {admin_of}")
    old = ledger.get("client:" + key.hex())
    if old is None:
        return f"authorize client {_short(key)} for org {org} with roles {roles}"
    require(
        old["org"] != org or old["roles"] != roles,
        f"client {_short(key)} already has org {org} and roles {roles}",
    )
    return (
        f"change client {_short(key)} from org {old['org']} roles {old['roles']} "
        f"to org {org} roles {roles}"
    )


def _apply_authorize_client(a, roster):
    ledger.put("client:" + a["key"].hex(), {"org": a["org"], "roles": sorted(a["roles"])})


def _check_revoke_client(a, roster):
    _check_args(a, ["key"])
    key = a["key"]
    _check_key(key, "key")
    old = ledger.get("client:" + key.hex())
    require(old is not None, f"no client with key {_short(key)}")
    return f"revoke client {_short(key)} of org {old['org']} (roles {old['roles']})"


def _apply_revoke_client(a, roster):
    ledger.delete("client:" + a["key"].hex())


def _check_set_param(a, roster):
    _check_args(a, ["name", "value"])
    name = a["name"]
    _check_str(name, "param name", MAX_PARAM_NAME_CHARS)
    bounds = _param_range(name)
    require(bounds is not None, f"unknown param {name}")
    value = a["value"]
    _check_int(value, "param " + name, bounds[0], bounds[1])
    old = ledger.get("param:" + name)
    require(old != value, f"param {name} is already {value}")
    return f"set param {name} from {old} to {value}"


def _apply_set_param(a, roster):
    ledger.put("param:" + a["name"], a["value"])


def _check_approve_model(a, roster):
    _check_args(a, ["name", "model_id", "size", "contributors", "anchors"])
    name = a["name"]
    _check_name(name, "model name")
    model_id = a["model_id"]
    _check_key(model_id, "model_id")
    _check_int(a["size"], "size", 1, MAX_MODEL_SIZE)
    contributors = a["contributors"]
    require(_type(contributors) == "dict", "contributors must be a dict org -> weight")
    require(
        len(contributors) <= MAX_CONTRIBUTORS,
        f"contributors must have at most {MAX_CONTRIBUTORS} orgs",
    )
    for org, weight in contributors.items():
        _check_org(org, "contributor")
        require(org in roster, f"contributor {org} is not a member")
        _check_int(weight, "weight of " + org, 1, MAX_WEIGHT)
    anchors = a["anchors"]
    _check_list(anchors, "anchors", MAX_ANCHORS)
    seen = {}
    for d in anchors:
        _check_key(d, "anchor")
        require(d not in seen, f"anchor {_short(d)} is listed twice")
        seen[d] = True
    known = ledger.call(MODELS, "find", [name, model_id])
    require(known is None, f"model {_short(model_id)} is already version {known} of {name}")
    checked = _check_training_data(model_id, a["size"], anchors, roster)
    weights = _weights(contributors, checked[1])
    n = ledger.call(MODELS, "versions", [name])
    shown = []
    for org in sorted(weights.keys()):
        shown.append(f"{org}={weights[org]}")
    return (
        f"register model {name} version {n + 1} (id {_short(model_id)}, {a['size']} bytes, "
        f"royalty weights {shown}, {len(anchors)} anchor(s)){checked[0]}"
    )


def _weights(contributors, recorded):
    """The royalty weights a version gets. On a chain that requires anchored training data
    they are the recorded contributions: the training rows each member anchored. The
    proposal then leaves contributors empty or repeats exactly those."""
    if not _anchored_training_required():
        require(len(contributors) >= 1, f"contributors must have 1..{MAX_CONTRIBUTORS} orgs")
        return contributors
    require(len(recorded) >= 1, "the artifact records no training datasets anchored by members")
    if len(contributors) == 0:
        return recorded
    same = len(contributors) == len(recorded)
    for org, weight in contributors.items():
        if org not in recorded or recorded[org] != weight:
            same = False
    require(
        same,
        f"contributors must be the recorded contributions {recorded} (training rows each "
        "member anchored), or left empty",
    )
    return recorded


def _anchored_training_required():
    return ledger.get("param:require_anchored_training", 0) == 1


def _check_training_data(model_id, size, anchors, roster):
    """The artifact itself (the node reads it by id) must match the proposal: its size, and
    its training datasets must be the anchors listed. With require_anchored_training = 1
    each dataset must be anchored on chain by a member. Returns the datasets in words and
    the rows each member's anchored datasets contributed ({org: rows})."""
    facts = ledger.model(model_id)
    require(facts["size"] == size, f"size must be the artifact's {facts['size']} bytes")
    required = _anchored_training_required()
    datasets = facts["datasets"]
    rows_by_org = {}
    if datasets is None:
        require(
            not required,
            "the artifact records no training datasets (model artifacts of version 3 do); "
            "this chain approves only models trained on anchored data",
        )
        return ["", rows_by_org]
    listed = {}
    for d in anchors:
        listed[d] = True
    require(
        len(datasets) == len(anchors),
        f"anchors must be the artifact's {len(datasets)} training dataset(s)",
    )
    words = []
    for pair in datasets:
        digest = pair[0]
        require(digest in listed, f"anchors must include training dataset {_short(digest)}")
        found = ledger.anchor(digest)
        if found is None or found["org"] is None or found["org"] not in roster:
            require(
                not required,
                f"training dataset {_short(digest)} is not anchored on chain by a member",
            )
            text = f"{_short(digest)}: {pair[1]} rows, not anchored by a member"
        else:
            org = found["org"]
            rows_by_org[org] = rows_by_org.get(org, 0) + pair[1]
            text = (
                f"{_short(digest)}: {pair[1]} rows, anchored at height {found['height']} by {org}"
            )
            if len(found["parents"]) > 0:
                parents = []
                for p in found["parents"]:
                    parents.append(_short(p))
                text = text + f", derived from {parents}"
        if len(words) < MAX_DATASETS_SHOWN:
            words.append(text)
    shown = "; ".join(words)
    if len(datasets) > MAX_DATASETS_SHOWN:
        shown = shown + f"; and {len(datasets) - MAX_DATASETS_SHOWN} more"
    return ["; trained on " + shown, rows_by_org]


def _apply_approve_model(a, roster):
    checked = _check_training_data(a["model_id"], a["size"], a["anchors"], roster)
    ledger.call(
        MODELS,
        "register",
        [
            a["name"],
            a["model_id"],
            a["size"],
            _weights(a["contributors"], checked[1]),
            a["anchors"],
        ],
    )


def _check_model_version(a):
    _check_args(a, ["name", "version"])
    name = a["name"]
    _check_name(name, "model name")
    version = a["version"]
    _check_int(version, "version", 1, MAX_PROPOSAL_ID)
    record = ledger.call(MODELS, "version", [name, version])
    require(record is not None, f"model {name} has no version {version}")
    return ledger.call(MODELS, "active", [name])


def _check_activate_model(a, roster):
    active = _check_model_version(a)
    name = a["name"]
    if active is None:
        return f"activate version {a['version']} of model {name} (none active yet)"
    require(
        active["version"] != a["version"], f"version {a['version']} of {name} is already active"
    )
    return f"activate version {a['version']} of model {name} (active: {active['version']})"


def _apply_activate_model(a, roster):
    ledger.call(MODELS, "activate", [a["name"], a["version"]])


def _check_rollback_model(a, roster):
    active = _check_model_version(a)
    name = a["name"]
    require(active is not None, f"model {name} has no active version")
    require(
        a["version"] < active["version"],
        f"rollback needs a version below the active one ({active['version']})",
    )
    return f"roll model {name} back from version {active['version']} to {a['version']}"


def _apply_rollback_model(a, roster):
    ledger.call(MODELS, "rollback", [a["name"], a["version"]])


def _check_open_round(a, roster):
    _check_args(a, ["name", "features", "deadline", "min_members"])
    _check_name(a["name"], "model name")
    _check_list(a["features"], "features", 1024)
    for f in a["features"]:
        _check_str(f, "feature name", 128)
    height = ledger.height()
    _check_int(a["deadline"], "deadline", height + 1, height + 1000000)
    _check_int(a["min_members"], "min_members", 2, len(roster))
    return (
        f"open a federated round for model {a['name']}: features {a['features']}, "
        f"submissions until height {a['deadline']}, at least {a['min_members']} members"
    )


def _apply_open_round(a, roster):
    ledger.call(MODELS, "open_round", [a["name"], a["features"], a["deadline"], a["min_members"]])


def _check_approve_round(a, roster):
    """The round's merged model: its id must be the chain's own merge of the submissions;
    its weights are the rows each member submitted; it registers as the next version."""
    _check_args(a, ["round", "model_id", "size"])
    _check_int(a["round"], "round", 1, MAX_PROPOSAL_ID)
    model_id = a["model_id"]
    _check_key(model_id, "model_id")
    r = ledger.call(MODELS, "get_round", [a["round"]])
    require(r is not None, f"no round {a['round']}")
    require(r["status"] == "closed", f"round {a['round']} is {r['status']}, not closed")
    require(
        model_id == r["merged"],
        f"model {_short(model_id)} is not the merge of round {a['round']}'s submissions "
        f"(that is {_short(r['merged'])})",
    )
    facts = ledger.model(model_id)
    require(facts["size"] == a["size"], f"size must be the artifact's {facts['size']} bytes")
    shown = []
    for org in sorted(r["submissions"].keys()):
        if org in roster:
            shown.append(f"{org}={r['submissions'][org]['rows']}")
    require(len(shown) >= 1, "no submitter of the round is still a member")
    return (
        f"register the merge of round {a['round']} as model {r['name']} version "
        f"{ledger.call(MODELS, 'versions', [r['name']]) + 1} (id {_short(model_id)}), "
        f"royalty weights {shown} (rows each member trained on)"
    )


def _apply_approve_round(a, roster):
    r = ledger.call(MODELS, "get_round", [a["round"]])
    weights = {}
    for org, sub in r["submissions"].items():
        if org in roster:
            weights[org] = sub["rows"]
    anchors = []
    for pair in ledger.model(a["model_id"])["datasets"]:
        anchors.append(pair[0])
    ledger.call(MODELS, "register", [r["name"], a["model_id"], a["size"], weights, anchors])
    ledger.call(MODELS, "round_approved", [a["round"]])


def _check_allow_deploy(a, roster):
    _check_args(a, ["name", "code_hash"])
    name = a["name"]
    _check_name(name, "contract name")
    code_hash = a["code_hash"]
    _check_key(code_hash, "code_hash")
    old = ledger.get("deploy:" + name)
    require(old != code_hash, f"code {_short(code_hash)} is already allowed for {name}")
    return f"allow deploying code {code_hash.hex()} as contract {name}"


def _apply_allow_deploy(a, roster):
    ledger.put("deploy:" + a["name"], a["code_hash"])


def _check(kind, args, roster):
    """Validate an action against the current state; its description, or a revert."""
    if kind == "add_member":
        return _check_add_member(args, roster)
    if kind == "remove_member":
        return _check_remove_member(args, roster)
    if kind == "authorize_client":
        return _check_authorize_client(args, roster)
    if kind == "revoke_client":
        return _check_revoke_client(args, roster)
    if kind == "set_param":
        return _check_set_param(args, roster)
    if kind == "approve_model":
        return _check_approve_model(args, roster)
    if kind == "activate_model":
        return _check_activate_model(args, roster)
    if kind == "rollback_model":
        return _check_rollback_model(args, roster)
    if kind == "allow_deploy":
        return _check_allow_deploy(args, roster)
    if kind == "open_round":
        return _check_open_round(args, roster)
    if kind == "approve_round":
        return _check_approve_round(args, roster)
    require(False, f"unknown action kind {kind} (expected one of {_kinds()})")


def _apply(kind, args, roster):
    _check(kind, args, roster)
    if kind == "add_member":
        _apply_add_member(args, roster)
    elif kind == "remove_member":
        _apply_remove_member(args, roster)
    elif kind == "authorize_client":
        _apply_authorize_client(args, roster)
    elif kind == "revoke_client":
        _apply_revoke_client(args, roster)
    elif kind == "set_param":
        _apply_set_param(args, roster)
    elif kind == "approve_model":
        _apply_approve_model(args, roster)
    elif kind == "activate_model":
        _apply_activate_model(args, roster)
    elif kind == "rollback_model":
        _apply_rollback_model(args, roster)
    elif kind == "open_round":
        _apply_open_round(args, roster)
    elif kind == "approve_round":
        _apply_approve_round(args, roster)
    else:
        _apply_allow_deploy(args, roster)


# -- proposals -----------------------------------------------------------------------------


def propose(kind, args):
    """Open a proposal (admins of member orgs only); reverts if the action would fail now."""
    roster = _members()
    org = _admin_org(roster)
    require(_type(kind) == "str" and kind in _kinds(), f"action kind must be one of {_kinds()}")
    text = _check(kind, args, roster)
    pid = ledger.get("next_proposal", 1)
    height = ledger.height()
    proposal = {
        "id": pid,
        "kind": kind,
        "args": args,
        "proposer": org,
        "created": height,
        "expires": height + _param_value("proposal_ttl"),
        "votes": {},
        "status": "open",
        "dry_run": text,
        "executed_at": None,
    }
    ledger.put(_pkey(pid), proposal)
    ledger.put("next_proposal", pid + 1)
    ledger.emit("proposed", {"id": pid, "kind": kind, "proposer": org})
    return pid


def vote(pid, approve):
    """Cast the caller org's one vote; executes the action once approval is reached."""
    _check_int(pid, "proposal id", 1, MAX_PROPOSAL_ID)
    require(_type(approve) == "bool", "approve must be true or false")
    roster = _members()
    org = _admin_org(roster)
    p = ledger.get(_pkey(pid))
    require(p is not None, f"no proposal {pid}")
    require(p["status"] == "open", f"proposal {pid} is {p['status']}")
    height = ledger.height()
    require(height < p["expires"], f"proposal {pid} expired at height {p['expires']}")
    require(org not in p["votes"], f"org {org} has already voted")
    p["votes"][org] = approve
    ledger.emit("voted", {"id": pid, "org": org, "approve": approve})
    yes = 0
    voted = 0
    for o, v in p["votes"].items():
        if o in roster:
            voted += 1
            if v:
                yes += 1
    n = len(roster)
    if _approved(p["kind"], yes, n):
        _apply(p["kind"], p["args"], roster)
        p["status"] = "executed"
        p["executed_at"] = height
        ledger.emit("executed", {"id": pid, "kind": p["kind"]})
    elif not _approved(p["kind"], yes + n - voted, n):
        p["status"] = "rejected"
        ledger.emit("rejected", {"id": pid, "kind": p["kind"]})
    ledger.put(_pkey(pid), p)
    return p["status"]


def _shown(p):
    """A proposal as readers see it: an open one past its expiry height is "expired"."""
    if p["status"] == "open" and ledger.height() >= p["expires"]:
        p["status"] = "expired"
    return p


def get(pid):
    _check_int(pid, "proposal id", 1, MAX_PROPOSAL_ID)
    p = ledger.get(_pkey(pid))
    if p is None:
        return None
    return _shown(p)


def proposals(first, count):
    """Summaries of proposals first .. first+count-1 that exist (count <= MAX_LIST)."""
    _check_int(first, "first", 1, MAX_PROPOSAL_ID)
    _check_int(count, "count", 1, MAX_LIST)
    out = []
    for pid in range(first, first + count):
        p = ledger.get(_pkey(pid))
        if p is None:
            break
        p = _shown(p)
        yes = 0
        for v in p["votes"].values():
            if v:
                yes += 1
        out.append(
            {
                "id": pid,
                "kind": p["kind"],
                "proposer": p["proposer"],
                "created": p["created"],
                "expires": p["expires"],
                "status": p["status"],
                "yes": yes,
                "no": len(p["votes"]) - yes,
                "executed_at": p["executed_at"],
            }
        )
    return out


def member(org):
    _check_str(org, "org", MAX_ORG_CHARS)
    return _members().get(org)


def members():
    return _members()


def client(key):
    _check_key(key, "key")
    return ledger.get("client:" + key.hex())


def param(name):
    """A parameter's value (proposal_ttl and score_fee fall back to their defaults)."""
    _check_str(name, "param name", MAX_PARAM_NAME_CHARS)
    return _param_value(name)


def next_proposal():
    return ledger.get("next_proposal", 1)
