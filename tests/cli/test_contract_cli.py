"""`vigil contract compile` and `vigil contract run`, through the real click entry point."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from vm.bytecode import code_hash, decode_module
from vm.compiler import compile_source, compile_to_bytes
from vm.jsonvalues import from_json, to_json

CONTRACTS = Path(__file__).parents[1] / "vm" / "contracts"
VOTING = CONTRACTS / "voting.py"
MEMBERS = ["--members", "acme,globex,initech"]

ECHO = """
def echo(x):
    return x

def spend():
    while True:
        pass

def boom():
    ledger.put("k", 1)
    require(False, "refused here")

def store(k, v):
    old = ledger.get(k)
    ledger.put(k, v)
    ledger.emit("stored", (k, v))
    return old

def drop(k):
    ledger.delete(k)

def whoami():
    return ledger.caller()
"""


def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_compile_prints_hash_and_size_and_writes_bytecode(tmp_path: Path) -> None:
    out = tmp_path / "voting.vbc"
    r = runner().invoke(main, ["contract", "compile", str(VOTING), "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = compile_to_bytes(VOTING.read_text(), str(VOTING))
    assert out.read_bytes() == data
    assert r.stdout.splitlines() == [
        f"code hash: {code_hash(data).hex()}",
        f"size: {len(data)} bytes",
    ]
    assert decode_module(out.read_bytes()) == compile_source(VOTING.read_text(), str(VOTING))


def test_compile_error_names_file_line_column_and_fails(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.py", "def f(x):\n    return x / 2\ndef g():\n    import os\n")
    r = runner().invoke(main, ["contract", "compile", str(bad)])
    assert r.exit_code == 1
    assert f"{bad}:2:12: '/' is not supported" in r.stderr
    assert f"{bad}:4:5: imports are not supported" in r.stderr
    assert r.stdout == ""


def test_compile_refuses_non_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "bin.py"
    bad.write_bytes(b"def f():\n    return '\xff'\n")
    r = runner().invoke(main, ["contract", "compile", str(bad)])
    assert r.exit_code != 0 and "not UTF-8" in r.stderr


def test_run_json_reports_result_events_writes_and_gas() -> None:
    args = ["contract", "run", str(VOTING), "propose", '[1, "admit D", 2]', "--json", *MEMBERS]
    r = runner().invoke(main, [*args, "--org", "acme", "--height", "12"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"result", "events", "writes", "gas_used"}
    assert doc["result"] == 1
    assert doc["events"] == [{"name": "proposed", "data": {"pid": 1, "quorum": 2}}]
    (write_,) = doc["writes"]
    assert write_["key"] == "proposal:1" and write_["value"]["at"] == 12
    assert write_["value"]["by"] == "acme" and doc["gas_used"] > 0


def test_run_error_exits_non_zero_with_kind_and_message(tmp_path: Path) -> None:
    src = write(tmp_path, "echo.py", ECHO)
    r = runner().invoke(main, ["contract", "run", str(src), "boom", "--json"])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["error"] == {"kind": "Revert", "message": "refused here"}
    assert doc["writes"] == [] and doc["gas_used"] > 0
    r = runner().invoke(main, ["contract", "run", str(src), "spend", "--gas", "5000"])
    assert r.exit_code == 1
    assert "error: OutOfGas: out of gas" in r.stderr and "gas used: 5000" in r.stdout
    r = runner().invoke(main, ["contract", "run", str(src), "nothing"])
    assert r.exit_code == 1 and "CallError" in r.stderr


def test_run_with_state_caller_and_save(tmp_path: Path) -> None:
    src = write(tmp_path, "echo.py", ECHO)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"a": {"$bytes": "0102"}, "b": [1, {"$tuple": [2, 3]}]}))
    base = ["contract", "run", str(src)]
    r = runner().invoke(main, [*base, "store", '["a", 5]', "--state", str(state), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["result"] == {"$bytes": "0102"}
    assert doc["events"] == [{"name": "stored", "data": {"$tuple": ["a", 5]}}]
    assert json.loads(state.read_text())["a"] == {"$bytes": "0102"}  # not saved without the flag
    r = runner().invoke(main, [*base, "store", '["a", 5]', "--state", str(state), "--save-state"])
    assert r.exit_code == 0, r.output
    assert "write: a = 5" in r.stdout and 'event: stored ["a", 5]' in r.stdout
    assert json.loads(state.read_text()) == {"a": 5, "b": [1, {"$tuple": [2, 3]}]}
    r = runner().invoke(main, [*base, "drop", '["b"]', "--state", str(state), "--save-state"])
    assert "delete: b" in r.stdout
    assert json.loads(state.read_text()) == {"a": 5}
    caller = "ab" * 32
    r = runner().invoke(main, [*base, "whoami", "--caller", caller, "--json"])
    assert json.loads(r.stdout)["result"] == {"$bytes": caller}


def test_run_rejects_bad_arguments(tmp_path: Path) -> None:
    src = write(tmp_path, "echo.py", ECHO)
    base = ["contract", "run", str(src), "echo"]
    for bad in ("{}", "[1.5]", "not json", '[{"$bytes": "zz"}]', '[{"$what": 1}]'):
        r = runner().invoke(main, [*base, bad])
        assert r.exit_code == 2, (bad, r.output)
    r = runner().invoke(main, [*base, "[1]", "--caller", "abcd"])
    assert r.exit_code == 2 and "64 hex digits" in r.stderr
    state = write(tmp_path, "s.json", "[1, 2]")
    r = runner().invoke(main, [*base, "[1]", "--state", str(state)])
    assert r.exit_code == 1 and "JSON object" in r.stderr


def test_json_convention_round_trips_every_kind_of_value() -> None:
    value = [
        None,
        True,
        -(2**200),
        "s",
        b"\x00\xff",
        (1, (2,)),
        {"a": 1},
        {1: "x", b"k": None},
        {"$odd": 1},
    ]
    doc = to_json(value)
    assert from_json(json.loads(json.dumps(doc))) == value
    assert doc[6] == {"a": 1} and doc[4] == {"$bytes": "00ff"}
    assert doc[8] == {"$dict": [["$odd", 1]]}


def test_run_accepts_compiled_bytecode_and_verifies_it(tmp_path: Path) -> None:
    vbc = tmp_path / "voting.vbc"
    assert (
        runner().invoke(main, ["contract", "compile", str(VOTING), "--out", str(vbc)]).exit_code
        == 0
    )
    r = runner().invoke(main, ["contract", "run", str(vbc), "tally", "[1]", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["result"] is None
    vbc.write_bytes(vbc.read_bytes()[:-1])
    r = runner().invoke(main, ["contract", "run", str(vbc), "tally", "[1]"])
    assert r.exit_code == 1 and "BytecodeError" in r.stderr
