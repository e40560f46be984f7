"""Model registry: approved versions per model name, the active version, and its history.

Only the governance contract may change it (it calls ``register``, ``activate`` and
``rollback`` when a proposal is approved); anyone may read it. The node reads
``active:<name>`` -> {"model_id": bytes32, "version": int} to score.

Storage: ``versions:<name>`` -> count; ``model:<name>:<version>`` -> {"version", "model_id",
"size", "contributors", "anchors", "approved_at"}; ``id:<name>:<model id hex>`` -> version;
``history:<name>`` -> [(height, version), ...] (the last MAX_HISTORY activations);
``trained:<digest hex>`` -> [[name, version], ...]: the versions trained on that anchored
dataset (the last MAX_TRAINED_LISTED; the "registered" events name them all).

Federated rounds (opened by governance): ``round:<id>`` -> {"id", "name", "features",
"deadline", "min_members", "opened_at", "status" (open, closed, failed, approved),
"submissions" {org: {"model_id", "rows"}}, "merged" (the id of the deterministic merge of
the submissions, once closed)}; ``next_round`` -> int. Each member submits one local model
trained only on data that member anchored; after the deadline anyone closes the round and
the chain computes the merge's id (``ledger.merge_id``), which is the only model
governance's ``approve_round`` accepts, with each member's weight its recorded rows.
"""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM)

# sha256(b"vigil/contract/governance"): the caller key governance presents to this contract.
GOVERNANCE = (
    b"\x8b\xdc\xd4\x7f\xa8\xb8\xd9\x14\xd6\xb1\xcf\xca\x76\x04\x53\x3c"
    b"\xcd\x6b\xcc\x41\xaf\xdd\x54\x50\xea\xe1\xe6\x6c\x9f\x41\x5d\xd8"
)
NAME_FIRST = "abcdefghijklmnopqrstuvwxyz"
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
# Model names match [a-z][a-z0-9_]{0,63} (the node's name pattern).
MAX_NAME_CHARS = 64
KEY_BYTES = 32
MAX_VERSION = 9223372036854775807
# Activations kept in ``history:<name>`` (older ones remain in the "activated" events).
MAX_HISTORY = 1000
# Versions kept in ``trained:<digest>`` per dataset.
MAX_TRAINED_LISTED = 64
MAX_ROUND_FEATURES = 1024
# Longest a round stays open (heights).
MAX_ROUND_SPAN = 1000000


def _type(x):
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


def _check_name(name):
    require(_type(name) == "str", "model name must be a string")
    require(
        len(name) >= 1 and len(name) <= MAX_NAME_CHARS,
        f"model name must have 1..{MAX_NAME_CHARS} characters",
    )
    require(name[0] in NAME_FIRST, f"model name {name} must start with a-z")
    for c in name:
        require(c in NAME_CHARS, f"model name {name} may only contain {NAME_CHARS}")


def _check_version(v):
    require(_type(v) == "int", "version must be an integer")
    require(v >= 1 and v <= MAX_VERSION, f"version must be in 1..{MAX_VERSION}")


def _only_governance():
    require(
        ledger.caller() == GOVERNANCE,
        "only the governance contract may change the model registry",
    )


def _record(name, v):
    return ledger.get("model:" + name + ":" + str(v))


def _set_active(name, v, record):
    ledger.put("active:" + name, {"model_id": record["model_id"], "version": v})
    entries = ledger.get("history:" + name, [])
    entries.append((ledger.height(), v))
    if len(entries) > MAX_HISTORY:
        entries = entries[len(entries) - MAX_HISTORY :]
    ledger.put("history:" + name, entries)


def register(name, model_id, size, contributors, anchors):
    """Record a new approved version of ``name`` (governance only); returns its number."""
    _only_governance()
    _check_name(name)
    require(_type(model_id) == "bytes" and len(model_id) == KEY_BYTES, "model_id must be 32 bytes")
    require(_type(size) == "int" and size >= 1, "size must be a positive integer")
    require(_type(contributors) == "dict" and len(contributors) >= 1, "contributors must be a dict")
    require(_type(anchors) == "list", "anchors must be a list")
    id_key = "id:" + name + ":" + model_id.hex()
    known = ledger.get(id_key)
    require(known is None, f"model {model_id.hex()[:16]} is already version {known} of {name}")
    v = ledger.get("versions:" + name, 0) + 1
    ledger.put(
        "model:" + name + ":" + str(v),
        {
            "version": v,
            "model_id": model_id,
            "size": size,
            "contributors": contributors,
            "anchors": anchors,
            "approved_at": ledger.height(),
        },
    )
    ledger.put("versions:" + name, v)
    ledger.put(id_key, v)
    for digest in anchors:
        used = ledger.get("trained:" + digest.hex(), [])
        used.append([name, v])
        if len(used) > MAX_TRAINED_LISTED:
            used = used[len(used) - MAX_TRAINED_LISTED :]
        ledger.put("trained:" + digest.hex(), used)
    ledger.emit("registered", {"name": name, "version": v, "model_id": model_id})
    return v


def activate(name, number):
    """Make registered version ``number`` the active one (governance only)."""
    _only_governance()
    _check_name(name)
    _check_version(number)
    record = _record(name, number)
    require(record is not None, f"model {name} has no version {number}")
    current = ledger.get("active:" + name)
    require(
        current is None or current["version"] != number,
        f"version {number} of {name} is already active",
    )
    _set_active(name, number, record)
    ledger.emit("activated", {"name": name, "version": number})
    return number


def rollback(name, number):
    """Go back to registered version ``number``, below the active one (governance only)."""
    _only_governance()
    _check_name(name)
    _check_version(number)
    record = _record(name, number)
    require(record is not None, f"model {name} has no version {number}")
    current = ledger.get("active:" + name)
    require(current is not None, f"model {name} has no active version")
    require(
        number < current["version"],
        f"rollback needs a version below the active one ({current['version']})",
    )
    _set_active(name, number, record)
    ledger.emit("rolled_back", {"name": name, "version": number, "from": current["version"]})
    return number


def active(name):
    """The active version's full record, or None."""
    _check_name(name)
    current = ledger.get("active:" + name)
    if current is None:
        return None
    return _record(name, current["version"])


def version(name, v):
    _check_name(name)
    _check_version(v)
    return _record(name, v)


def versions(name):
    """How many versions of ``name`` are registered (they are numbered 1..count)."""
    _check_name(name)
    return ledger.get("versions:" + name, 0)


def find(name, model_id):
    """The version number under which ``model_id`` is registered for ``name``, or None."""
    _check_name(name)
    require(_type(model_id) == "bytes" and len(model_id) == KEY_BYTES, "model_id must be 32 bytes")
    return ledger.get("id:" + name + ":" + model_id.hex())


def open_round(name, features, deadline, min_members):
    """Open a federated round for ``name`` (governance only); returns its id."""
    _only_governance()
    _check_name(name)
    require(_type(features) == "list", "features must be a list of names")
    require(len(features) >= 1 and len(features) <= MAX_ROUND_FEATURES, "features: 1..1024")
    for f in features:
        require(_type(f) == "str" and len(f) >= 1, "each feature must be a non-empty string")
    now = ledger.height()
    require(_type(deadline) == "int", "deadline must be a height")
    require(deadline > now and deadline <= now + MAX_ROUND_SPAN, "deadline out of range")
    require(_type(min_members) == "int" and min_members >= 1, "min_members must be >= 1")
    rid = ledger.get("next_round", 1)
    ledger.put(
        "round:" + str(rid),
        {
            "id": rid,
            "name": name,
            "features": features,
            "deadline": deadline,
            "min_members": min_members,
            "opened_at": now,
            "status": "open",
            "submissions": {},
            "merged": None,
        },
    )
    ledger.put("next_round", rid + 1)
    ledger.emit("round_opened", {"id": rid, "name": name, "deadline": deadline})
    return rid


def submit(rid, model_id):
    """A member submits its local model for round ``rid``: trained on the round's features
    and only on datasets that member anchored. Returns the rows credited to it."""
    r = _round(rid)
    require(r["status"] == "open", f"round {rid} is {r['status']}")
    require(
        ledger.height() < r["deadline"], f"round {rid} closed for submissions at {r['deadline']}"
    )
    org = ledger.caller_org()
    require(org in ledger.members(), "only a member organisation may submit")
    require(org not in r["submissions"], f"{org} has already submitted to round {rid}")
    require(_type(model_id) == "bytes" and len(model_id) == KEY_BYTES, "model_id must be 32 bytes")
    facts = ledger.model(model_id)
    require(facts["features"] == r["features"], f"the model's features are not round {rid}'s")
    datasets = facts["datasets"]
    require(datasets is not None and len(datasets) >= 1, "the model records no training datasets")
    rows = 0
    for pair in datasets:
        found = ledger.anchor(pair[0])
        require(
            found is not None and found["org"] == org,
            f"training dataset {pair[0].hex()[:16]} is not anchored by {org}",
        )
        rows += pair[1]
    for other in r["submissions"].values():
        require(other["model_id"] != model_id, "that model was submitted already")
    r["submissions"][org] = {"model_id": model_id, "rows": rows}
    ledger.put("round:" + str(rid), r)
    ledger.emit("round_submitted", {"id": rid, "org": org, "model_id": model_id, "rows": rows})
    return rows


def close_round(rid):
    """After the deadline anyone closes a round: with enough submissions the chain records
    the id of their deterministic merge, the only model approve_round accepts."""
    r = _round(rid)
    require(r["status"] == "open", f"round {rid} is {r['status']}")
    require(ledger.height() >= r["deadline"], f"round {rid} is open until height {r['deadline']}")
    ids = []
    for sub in r["submissions"].values():
        ids.append(sub["model_id"])
    if len(ids) < r["min_members"] or len(ids) < 2:
        r["status"] = "failed"
    else:
        r["merged"] = ledger.merge_id(ids)
        r["status"] = "closed"
    ledger.put("round:" + str(rid), r)
    ledger.emit("round_closed", {"id": rid, "status": r["status"], "merged": r["merged"]})
    return r["status"]


def round_approved(rid):
    """Mark a closed round's merged model approved (governance only)."""
    _only_governance()
    r = _round(rid)
    require(r["status"] == "closed", f"round {rid} is {r['status']}")
    r["status"] = "approved"
    ledger.put("round:" + str(rid), r)


def get_round(rid):
    return ledger.get("round:" + str(rid))


def _round(rid):
    require(_type(rid) == "int" and rid >= 1, "round id must be a positive integer")
    r = ledger.get("round:" + str(rid))
    require(r is not None, f"no round {rid}")
    return r


def trained_on(digest):
    """[[name, version], ...] of the model versions trained on the dataset ``digest``."""
    require(_type(digest) == "bytes" and len(digest) == KEY_BYTES, "digest must be 32 bytes")
    return ledger.get("trained:" + digest.hex(), [])


def history(name):
    _check_name(name)
    return ledger.get("history:" + name, [])
