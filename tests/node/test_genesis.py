"""Genesis: human-editable JSON, deterministic hash, errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from strategies import ALL_RECORDS, KEYS

from consensus.crypto import key_hex
from consensus.record import FieldError
from node.app.genesis import DEFAULT_PARAMS, OPTIONAL_PARAMS, PARAM_RANGES, Genesis


def doc(**overrides: object) -> dict:
    base = {
        "chain_id": "vigil-test",
        "genesis_time_ms": 1000,
        "members": [
            {
                "org": f"org{i}",
                "node_key": key_hex(KEYS[i].public),
                "peer": f"127.0.0.1:{26600 + i}",
                "api": f"127.0.0.1:{26700 + i}",
                "admins": [key_hex(KEYS[i + 3].public)],
            }
            for i in range(3)
        ],
        "clients": [{"key": key_hex(KEYS[6].public), "org": "org1", "roles": ["submit"]}],
        "params": {},
    }
    base.update(overrides)
    return base


@settings(max_examples=50, deadline=None)
@given(ALL_RECORDS["genesis"])
def test_json_round_trip_keeps_hash(g: Genesis) -> None:
    again = Genesis.from_json(g.to_json())
    assert again == g
    assert again.hash() == g.hash()


def test_hash_ignores_formatting_and_order_free_lists() -> None:
    a = Genesis.from_json_obj(doc())
    d = doc()
    d["members"].reverse()
    d["members"][0]["admins"].append(key_hex(KEYS[0].public))
    b_with_extra_admin = Genesis.from_json_obj(d)
    assert b_with_extra_admin.hash() != a.hash()
    d["members"][0]["admins"].reverse()
    assert Genesis.from_json_obj(d).hash() == b_with_extra_admin.hash()
    compact = json.dumps(doc(), separators=(",", ":"))
    assert Genesis.from_json(compact).hash() == a.hash()
    explicit = doc(params=dict(DEFAULT_PARAMS))
    assert Genesis.from_json_obj(explicit).hash() == a.hash()


def test_written_file_lists_every_parameter(tmp_path: Path) -> None:
    g = Genesis.from_json_obj(doc())
    path = tmp_path / "genesis.json"
    g.save(path)
    assert json.loads(path.read_text())["params"] == DEFAULT_PARAMS
    assert Genesis.load(path) == g
    with pytest.raises(FileExistsError):
        g.save(path)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(chain_id="Bad Chain"), "genesis.chain_id"),
        (lambda d: d.update(members=[]), "genesis.members"),
        (lambda d: d["members"][1].update(node_key="zz"), "genesis.members[1].node_key"),
        # Fault 6: small-order and non-canonical keys were accepted in genesis.
        (lambda d: d["members"][1].update(node_key="01" + "0" * 62), "genesis.members[1].node_key"),
        (
            lambda d: d["members"][2].update(admins=["ed" + "ff" * 30 + "7f"]),
            "genesis.members[2].admins[0]",
        ),
        (lambda d: d["clients"][0].update(key="00" * 32), "genesis.clients[0].key"),
        (lambda d: d["members"][2].update(admins=[]), "genesis.members[2].admins"),
        (lambda d: d["members"][0].update(peer="nohost"), "genesis.members[0].peer"),
        (lambda d: d["members"][0].update(api="h:70000"), "genesis.members[0].api"),
        (lambda d: d["members"][0].update(colour="red"), "genesis.members[0].colour"),
        (lambda d: d["members"][1].update(org="org0"), "genesis.members[1].org"),
        (lambda d: d["members"][1].update(peer="127.0.0.1:26600"), "genesis.members[1].peer"),
        (lambda d: d["clients"][0].update(org="nobody"), "genesis.clients[0].org"),
        (lambda d: d["clients"][0].update(roles=["root"]), "genesis.clients[0].roles[0]"),
        (lambda d: d["clients"][0].update(roles=[]), "genesis.clients[0].roles"),
        (lambda d: d.update(params={"max_blok_txs": 5}), "genesis.params"),
        (lambda d: d.update(params={"max_block_txs": True}), "genesis.params.max_block_txs"),
        (lambda d: d.update(extra=1), "genesis.extra"),
    ],
)
def test_errors_name_the_field(mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    d = doc()
    mutate(d)
    with pytest.raises(FieldError) as info:
        Genesis.from_json_obj(d)
    assert info.value.path == path, str(info.value)


def test_duplicate_node_keys_are_refused() -> None:
    d = doc()
    d["members"][1]["node_key"] = d["members"][0]["node_key"]
    with pytest.raises(FieldError, match="used twice"):
        Genesis.from_json_obj(d)


@pytest.mark.parametrize("name", sorted(PARAM_RANGES))
def test_parameter_ranges_at_their_edges(name: str) -> None:
    lo, hi = PARAM_RANGES[name]
    for ok in (lo, hi):
        assert Genesis.from_json_obj(doc(params={name: ok})).param(name) == ok
    for bad in (lo - 1, hi + 1):
        with pytest.raises(FieldError, match=f"genesis.params.{name}"):
            Genesis.from_json_obj(doc(params={name: bad}))


def test_drift_parameters_may_be_left_out_and_unknown_ones_are_refused() -> None:
    """Genesis files written before drift existed still load, with the drift defaults."""
    assert Genesis.from_json_obj(doc()).param("drift_window") == OPTIONAL_PARAMS["drift_window"]
    assert Genesis.from_json_obj(doc(params={"drift_window": 600})).param("drift_window") == 600
    with pytest.raises(FieldError, match="unknown"):
        Genesis.from_json_obj(doc(params={"drift_windw": 600}))


def test_load_reports_path_and_problem(tmp_path: Path) -> None:
    with pytest.raises(FieldError, match="no such genesis file"):
        Genesis.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FieldError, match="not valid JSON"):
        Genesis.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(doc(chain_id=7)))
    with pytest.raises(FieldError, match=r"wrong.json: genesis.chain_id"):
        Genesis.load(wrong)


def test_validators_are_member_node_keys() -> None:
    g = Genesis.from_json_obj(doc())
    assert g.validators() == [KEYS[i].public for i in range(3)]
    member = g.member("org1")
    assert member is not None and member.node_key == KEYS[1].public
    assert g.member("org9") is None
