"""Issue 8's whole scenario on real node processes: a consortium governs its fraud model.

Four organisations anchor their training data; a model trained on it is
proposed, approved and activated; a few hundred payments are scored and every
node holds the same receipts; a fifth organisation joins the validators live
and votes; a member is removed; the model is rolled back; royalties add up;
and unauthorised actions fail without changing anything.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_network import Net, all_equal, running_network, vigil

from consensus.crypto import PrivateKey, key_hex
from ml.train import TrainParams, train
from node import localnet

pytestmark = pytest.mark.slow

ORGS = ("org1", "org2", "org3", "org4")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with running_network(tmp_path_factory.mktemp("consortium")) as n:
        yield n


def csv_text(rows: np.ndarray) -> str:
    lines = [",".join(f"{x:.6f}" for x in row) for row in rows]
    return "amount,hour,risk\n" + "\n".join(lines) + "\n"


def admin(net: Net, org: str) -> str:
    return str(net.net.directory / f"admin-{org}.key")


def propose(net: Net, *args: str, org: str = "org1", via: str = "org1") -> int:
    out = vigil(*args, "--key", admin(net, org), "--node", net.node(via).url, "--wait")
    return int(next(line for line in out.splitlines() if line.startswith("result")).split()[-1])


def vote(net: Net, pid: int, orgs: tuple[str, ...], via: str = "org1") -> None:
    for org in orgs:
        vigil("gov", "vote", str(pid), "yes", "--key", admin(net, org), "--node", net.node(via).url,
              "--wait")  # fmt: skip


def fails(*args: str) -> str:
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, list(args))
    assert result.exit_code != 0, result.output
    return result.output


def latest_signers(net: Net, via: str) -> set[str]:
    block = localnet.get_json(net.node(via).url + "/v1/blocks/latest")
    assert block is not None
    return {v["validator"] for v in block["certificate"]["votes"]}


def test_a_consortium_governs_its_fraud_model(net: Net, tmp_path: Path) -> None:
    client = str(net.net.client_key)
    url = net.node("org1").url
    rng = np.random.default_rng(5)

    # Every other organisation gets a client key of its own (org1 has the network's).
    keys = {"org1": client}
    for org in ORGS[1:]:
        path = tmp_path / f"client-{org}.key"
        PrivateKey.generate().save(path)
        public = PrivateKey.load(path).public.hex()
        pid = propose(net, "gov", "propose", "authorize-client", public, "--org", org,
                      "--role", "submit")  # fmt: skip
        vote(net, pid, ("org1", "org2", "org3"))
        keys[org] = str(path)

    # Each organisation anchors the digest of its own training data (rows differ per org).
    parts, digests = {}, {}
    for i, org in enumerate(ORGS):
        data = rng.normal(0, 1, (100 + 20 * i, 3))
        path = tmp_path / f"{org}.csv"
        path.write_text(
            "amount,hour,risk\n" + "\n".join(",".join(f"{x:.6f}" for x in row) for row in data)
        )
        vigil("anchor", str(path), "--meta", f"owner={org}", "--key", keys[org], "--node", url,
              "--wait")  # fmt: skip
        parts[org] = data
        digests[org] = hashlib.sha256(path.read_bytes()).digest()

    # A model trained on the members' data is proposed (its royalty weights are the rows each
    # member anchored, not typed), approved by three members, activated.
    def model_file(seed: int, name: str, orgs: tuple[str, ...]) -> tuple[Path, bytes]:
        model = train(np.vstack([parts[o] for o in orgs]), ("amount", "hour", "risk"),
                      TrainParams(n_estimators=40, random_state=seed),
                      datasets=[(digests[o], len(parts[o])) for o in orgs]).model  # fmt: skip
        path = tmp_path / name
        path.write_bytes(model.data)
        return path, model.model_id

    v1, v1_id = model_file(1, "fraud-v1.vmodel", ORGS)
    typed = fails("model", "propose", str(v1), "--name", "fraud", "--contributor", "org1=1",
                  "--key", admin(net, "org1"), "--node", url, "--wait")  # fmt: skip
    assert "contributors must be the recorded contributions" in typed, typed
    pid = propose(net, "model", "propose", str(v1), "--name", "fraud")
    shown = vigil("gov", "show", str(pid), "--node", url, "--genesis", str(net.net.genesis_path))
    assert "royalty weights ['org1=100', 'org2=120', 'org3=140', 'org4=160']" in shown, shown
    vote(net, pid, ("org1", "org2", "org3"))
    pid = propose(net, "gov", "propose", "activate-model", "fraud", "1")
    vote(net, pid, ("org2", "org3", "org4"))

    # A few hundred payments are scored; every node holds the same receipts and state.
    payments = tmp_path / "payments.csv"
    rows = rng.normal(0, 1, (300, 3))
    rows[::40] += 8  # a few obvious outliers
    payments.write_text(
        "amount,hour,risk\n" + "\n".join(",".join(f"{x:.6f}" for x in r) for r in rows)
    )
    out = vigil("score", "--model", "fraud", "--csv", str(payments), "--key", client,
                "--node", net.node("org2").url, "--wait")  # fmt: skip
    assert "300 scored" in out
    height = net.status("org1")["height"]  # type: ignore[index]
    net.wait("identical state", lambda: all_equal(net, list(ORGS), height))
    receipts = {
        org: localnet.get_json(f"{net.node(org).url}/v1/blocks/{height}")["receipts"]  # type: ignore[index]
        for org in ORGS
    }
    assert len({json.dumps(r) for r in receipts.values()}) == 1

    # Unauthorised actions fail and change nothing.
    pid = propose(net, "gov", "propose", "set-param", "score_fee", "20")
    assert "reverted" in fails("gov", "vote", str(pid), "yes", "--key", client, "--node", url,
                               "--wait")  # fmt: skip
    vote(net, pid, ("org1",))
    assert "already voted" in fails("gov", "vote", str(pid), "no", "--key", admin(net, "org1"),
                                    "--node", url, "--wait")  # fmt: skip
    assert "version" in fails("gov", "propose", "activate-model", "fraud", "7", "--key",
                              admin(net, "org1"), "--node", url, "--wait")  # fmt: skip
    (tmp_path / "rogue.py").write_text("def hello():\n    return 1\n")
    assert "not approved" in fails("contract", "deploy", str(tmp_path / "rogue.py"), "--name",
                                   "rogue", "--key", client, "--node", url, "--wait")  # fmt: skip
    temp = PrivateKey.generate()
    temp_file = tmp_path / "temp.key"
    temp.save(temp_file)
    pid = propose(net, "gov", "propose", "authorize-client", key_hex(temp.public), "--org", "org2",
                  "--role", "score")  # fmt: skip
    vote(net, pid, ("org1", "org2", "org3"))
    vigil("score", "--model", "fraud", "--features", "0,0,0", "--key", str(temp_file),
          "--node", url, "--wait")  # fmt: skip
    pid = propose(net, "gov", "propose", "revoke-client", key_hex(temp.public))
    vote(net, pid, ("org1", "org2", "org3"))
    assert "unauthorised" in fails("score", "--model", "fraud", "--features", "0,0,0", "--key",
                                   str(temp_file), "--node", url)  # fmt: skip

    # A fifth organisation joins the validator set live, catches up and votes.
    d = net.net.directory
    node5, admin5 = PrivateKey.generate(), PrivateKey.generate()
    node5.save(d / "node-org5.key")
    admin5.save(d / "admin-org5.key")
    base = localnet.free_base_port(1, 31_000)
    peer5, api5 = f"127.0.0.1:{base}", f"127.0.0.1:{base + 100}"
    vigil("node", "init", "--home", str(d / "org5"), "--genesis", str(net.net.genesis_path),
          "--key", str(d / "node-org5.key"), "--peer-listen", peer5,
          "--api-listen", api5)  # fmt: skip
    org5 = localnet.LocalNode("org5", d / "org5", peer5, api5)
    net.net = localnet.LocalNet(d, (*net.net.nodes, org5))
    net.start("org5")
    pid = propose(net, "gov", "propose", "add-member", "org5", "--node-key", key_hex(node5.public),
                  "--peer", peer5, "--api", api5, "--admin", key_hex(admin5.public))  # fmt: skip
    vote(net, pid, ("org1", "org2", "org3"))
    vigil("anchor", str(payments), "--key", client, "--node", url, "--wait")
    target = net.status("org1")["height"]  # type: ignore[index]
    net.wait("org5 caught up", lambda: (net.heights(["org5"])["org5"] or 0) >= target, 90)
    deadline = time.monotonic() + 60
    while key_hex(node5.public) not in latest_signers(net, "org1"):
        assert time.monotonic() < deadline, "org5 never signed a certificate"
        vigil("score", "--model", "fraud", "--features", "0.1,0.1,0.1", "--key", client,
              "--node", url, "--wait")  # fmt: skip

    # A member is removed; from the next height its node's votes no longer count.
    pid = propose(net, "gov", "propose", "remove-member", "org4")
    vote(net, pid, ("org1", "org2", "org3", "org5"))
    node4 = localnet.get_json(net.node("org4").url + "/v1/status")["node"]  # type: ignore[index]
    for _ in range(3):
        vigil("score", "--model", "fraud", "--features", "0.2,0.1,0.0", "--key", client,
              "--node", url, "--wait")  # fmt: skip
        assert node4 not in latest_signers(net, "org1")

    # The model is rolled back: later scores use the earlier version.
    v2, v2_id = model_file(2, "fraud-v2.vmodel", ("org1", "org2", "org3"))
    pid = propose(net, "model", "propose", str(v2), "--name", "fraud")
    vote(net, pid, ("org1", "org2", "org3"))
    pid = propose(net, "gov", "propose", "activate-model", "fraud", "2")
    vote(net, pid, ("org1", "org2", "org3"))
    genesis = str(net.net.genesis_path)
    out = vigil("contract", "query", "models", "active", '["fraud"]', "--node", url,
                "--genesis", genesis)  # fmt: skip
    assert v2_id.hex() in out
    pid = propose(net, "gov", "propose", "rollback-model", "fraud", "1")
    vote(net, pid, ("org1", "org2", "org3"))
    assert v1_id.hex() in vigil("contract", "query", "models", "active", '["fraud"]', "--node", url,
                                "--genesis", genesis)  # fmt: skip
    out = vigil("score", "--model", "fraud", "--features", "0.3,0.2,0.1", "--key", client,
                "--node", url, "--wait")  # fmt: skip
    tx = out.split()[-1]
    receipt = localnet.get_json(f"{url}/v1/txs/{tx}")["receipt"]  # type: ignore[index]
    assert receipt["result"]["model_id"] == v1_id.hex()  # later scores use the earlier version

    # Royalty balances add up: what scorers paid, contributors received.
    balances = json.loads(vigil("contract", "query", "royalties", "balances", "--node", url,
                                "--genesis", genesis, "--json"))["result"]  # fmt: skip
    assert sum(balances.values()) == 0
    assert any(v > 0 for v in balances.values()) and any(v < 0 for v in balances.values())
    assert hashlib.sha256(v1.read_bytes()).digest() == v1_id
