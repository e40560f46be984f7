"""`vigil tx sign` with no node (an air-gapped key) and `vigil tx send`'s refusals of bad files.

Sending to a running network is in tests/node/test_network.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from cli.tx_offline import FORMAT
from consensus.crypto import PrivateKey
from node.app.genesis import Genesis
from node.app.types import AnchorPayload, CallPayload, Tx
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value

CLOSED = "http://127.0.0.1:9"
"""The discard port: nothing listens there, so any request would exit 4 (unreachable)."""


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


class Chain:
    """A genesis file and an authorised client key, made with `vigil keygen` and `vigil genesis`."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.key = directory / "client.key"
        admin = run("keygen", "--out", str(directory / "admin.key")).output.strip()
        client = run("keygen", "--out", str(self.key)).output.strip()
        self.genesis_path = directory / "genesis.json"
        made = run(
            "genesis", "--chain-id", "vigil-offline",
            "--member", f"org1={admin}@127.0.0.1:26601,127.0.0.1:26701", "--admin", f"org1={admin}",
            "--client", f"org1={client}:submit", "--out", str(self.genesis_path),
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        self.genesis = Genesis.load(self.genesis_path)
        self.data = directory / "data.csv"
        self.data.write_text("amount\n1\n2\n")

    def sign(self, *args: str, out: str = "signed.tx") -> Result:
        return run("tx", "sign", "--genesis", str(self.genesis_path), "--key", str(self.key),
                   "--out", str(self.dir / out), *args)  # fmt: skip

    def signed(self, *args: str, out: str = "signed.tx") -> Path:
        result = self.sign(*args, out=out)
        assert result.exit_code == 0, result.output
        return self.dir / out


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    return Chain(tmp_path)


def decoded(path: Path) -> tuple[dict, Tx]:
    doc = json.loads(path.read_text())
    return doc, Tx.decode(bytes.fromhex(doc["tx"]))


def test_an_anchor_is_signed_for_the_genesis_files_chain_without_a_node(chain: Chain) -> None:
    parent = hashlib.sha256(b"the raw export").hexdigest()
    result = chain.sign("--valid-until", "500", "--anchor", str(chain.data), "--parent", parent,
                        "--meta", "source=ledger", "--media-type", "text/csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    path = chain.dir / "signed.tx"
    doc, tx = decoded(path)
    assert result.output.splitlines() == [f"tx {tx.id.hex()}", f"written {path}"]
    assert doc["format"] == FORMAT and doc["hash"] == tx.id.hex() and doc["kind"] == "anchor"
    assert tx.chain_id == chain.genesis.chain_id == doc["chain_id"]
    assert doc["genesis_hash"] == chain.genesis.hash().hex()
    assert tx.sender == PrivateKey.load(chain.key).public
    assert tx.valid_until_height == 500 == doc["valid_until"]
    assert tx.verify_signature(chain.genesis.hash())
    assert not tx.verify_signature(hashlib.sha256(b"another chain").digest())
    payload = tx.payload
    assert isinstance(payload, AnchorPayload)
    assert payload.digest == hashlib.sha256(chain.data.read_bytes()).digest()
    assert payload.size == len(chain.data.read_bytes()) and payload.media_type == "text/csv"
    assert payload.parents == (bytes.fromhex(parent),)
    assert payload.metadata == (("source", "ledger"),)


def test_a_contract_call_is_signed_and_json_names_the_tx_and_file(chain: Chain) -> None:
    result = chain.sign("--valid-until", "7", "--call", "counter", "bump", '[41, {"$bytes": "ff"}]',
                        "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc, tx = decoded(chain.dir / "signed.tx")
    assert json.loads(result.output) == {"tx": tx.id.hex(), "file": str(chain.dir / "signed.tx")}
    assert doc["kind"] == "call" and tx.verify_signature(chain.genesis.hash())
    payload = tx.payload
    assert isinstance(payload, CallPayload)
    assert (payload.contract, payload.method) == ("counter", "bump")
    assert decode_value(payload.args, MAX_VALUE_BYTES) == [41, b"\xff"]


def test_the_genesis_file_and_key_may_come_from_the_environment(chain: Chain) -> None:
    out = chain.dir / "env.tx"
    env = {"VIGIL_GENESIS": str(chain.genesis_path), "VIGIL_KEY": str(chain.key)}
    result = run("tx", "sign", "--valid-until", "9", "--anchor", str(chain.data),
                 "--out", str(out), env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert decoded(out)[1].verify_signature(chain.genesis.hash())


def test_usage_errors_write_nothing(chain: Chain) -> None:
    anchor = ("--anchor", str(chain.data))
    call = ("--call", "counter", "bump", "[1]")
    cases = [
        ((*anchor,), "--valid-until"),
        (("--valid-until", "0", *anchor), "--valid-until"),
        (("--valid-until", "9"), "exactly one of --anchor FILE or --call"),
        (("--valid-until", "9", *anchor, *call), "exactly one of --anchor FILE or --call"),
        (("--valid-until", "9", *call, "--meta", "a=b"), "go with --anchor"),
        (("--valid-until", "9", "--call", "counter", "bump", "[1"), "not a JSON list"),
        (("--valid-until", "9", "--call", "counter", "bump", '{"a": 1}'), "must be a JSON list"),
        (("--valid-until", "9", *anchor, "--meta", "novalue"), "is not KEY=VALUE"),
        (("--valid-until", "9", *anchor, "--parent", "abc"), "is not a SHA-256 digest"),
    ]
    for args, message in cases:
        result = chain.sign(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert not (chain.dir / "signed.tx").exists()
    no_genesis = run("tx", "sign", "--key", str(chain.key), "--valid-until", "9", *anchor,
                     "--out", str(chain.dir / "x.tx"), env={"VIGIL_GENESIS": ""})  # fmt: skip
    assert no_genesis.exit_code == 2 and "--genesis" in no_genesis.output


def test_a_bad_key_or_an_existing_file_is_refused(chain: Chain) -> None:
    missing = run("tx", "sign", "--genesis", str(chain.genesis_path), "--key",
                  str(chain.dir / "nokey"), "--valid-until", "9", "--anchor", str(chain.data),
                  "--out", str(chain.dir / "x.tx"))  # fmt: skip
    assert missing.exit_code == 1 and "no such key file" in missing.output
    precious = chain.dir / "precious.tx"
    precious.write_text("precious")
    refused = chain.sign("--valid-until", "9", "--anchor", str(chain.data), out="precious.tx")
    assert refused.exit_code == 1 and "already exists" in refused.output
    assert "--force" in refused.output and precious.read_text() == "precious"
    replaced = chain.sign("--valid-until", "9", "--anchor", str(chain.data), "--force",
                          out="precious.tx")  # fmt: skip
    assert replaced.exit_code == 0, replaced.output
    assert decoded(precious)[1].valid_until_height == 9


def _edited(good: dict, **changes: object) -> str:
    return json.dumps(good | changes)


def test_send_refuses_a_malformed_file_before_asking_any_node(chain: Chain) -> None:
    good = json.loads(chain.signed("--valid-until", "9", "--anchor", str(chain.data)).read_text())
    other = chain.signed("--valid-until", "10", "--anchor", str(chain.data), out="other.tx")
    other_doc = json.loads(other.read_text())
    tx = Tx.decode(bytes.fromhex(good["tx"]))
    cases = [
        ("not json at all", "not JSON"),
        (b"\xff\xfe".decode("latin-1"), "not JSON"),
        ("[1, 2]", "not a signed transaction file"),
        (_edited(good, format="vigil-signed-tx/0"), "expected 'vigil-signed-tx/1'"),
        (_edited(good, tx="zz"), "must be hex"),
        (_edited(good, tx=None), "must be hex"),
        (_edited(good, genesis_hash="xyz"), "must be hex"),
        (_edited(good, tx=good["tx"][:-6]), "does not decode"),
        (_edited(good, tx=good["tx"] + "00"), "does not decode"),
        (_edited(good, tx="00" * 40), "does not decode"),
        (_edited(good, hash=other_doc["hash"]), "its hash field says"),
        (_edited(good, tx=other_doc["tx"]), "its hash field says"),
        (_edited(good, valid_until=900), "its valid_until field says 900"),
        (_edited(good, chain_id="vigil-other"), "its chain_id field says"),
        (_edited(good, genesis_hash="ab" * 32), "does not verify for genesis " + "ab" * 32),
    ]
    forged = Tx(tx.chain_id, tx.sender, tx.nonce, tx.valid_until_height, tx.kind, tx.payload,
                bytes(64))  # fmt: skip
    cases.append((_edited(good, tx=forged.encode().hex(), hash=forged.id.hex()), "does not verify"))
    for text, message in cases:
        path = chain.dir / "bad.tx"
        path.write_text(text, encoding="latin-1")
        result = run("tx", "send", str(path), "--node", CLOSED)
        assert result.exit_code == 1, (text, result.output)
        assert message in result.output and "nothing was sent" in result.output, result.output
        assert "cannot reach" not in result.output


def test_send_to_an_unreachable_node_exits_4(chain: Chain) -> None:
    path = chain.signed("--valid-until", "9", "--anchor", str(chain.data))
    result = run("tx", "send", str(path), "--node", CLOSED, "--wait")
    assert result.exit_code == 4 and "cannot reach the node" in result.output
    result = run("tx", "send", str(chain.dir / "absent.tx"), "--node", CLOSED)
    assert result.exit_code == 2 and "does not exist" in result.output
