"""`vigil fl` on a real 4-node network: two banks anchor their own data, train locally,
submit to a round governance opened; the chain merges the ids at the deadline, `vigil fl
merge` builds that merge and proposes it, and the approved version's weights are the rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_network import Net, running_network, vigil

from consensus.crypto import PrivateKey

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with running_network(tmp_path_factory.mktemp("fl-net")) as n:
        yield n


def _admin(net: Net, org: str) -> str:
    return str(net.net.directory / f"admin-{org}.key")


def _result(out: str) -> int:
    return int(next(line for line in out.splitlines() if line.startswith("result")).split()[-1])


def _enact(net: Net, *proposal: str) -> None:
    """org1's admin proposes; org1, org2 and org3 approve."""
    url = net.node("org1").url
    pid = _result(vigil(*proposal, "--key", _admin(net, "org1"), "--node", url, "--wait"))
    for org in ("org1", "org2", "org3"):
        vigil("gov", "vote", str(pid), "yes", "--key", _admin(net, org), "--node", url, "--wait")


def test_a_federated_round_through_the_cli(net: Net, tmp_path: Path) -> None:
    url, genesis = net.node("org1").url, str(net.net.genesis_path)
    keys = {"org1": str(net.net.client_key)}
    path = tmp_path / "client-org2.key"
    PrivateKey.generate().save(path)
    _enact(net, "gov", "propose", "authorize-client", PrivateKey.load(path).public.hex(),
           "--org", "org2", "--role", "submit")  # fmt: skip
    keys["org2"] = str(path)
    models = {}
    for seed, (org, rows) in enumerate((("org1", 90), ("org2", 60))):
        data = np.random.default_rng(seed).normal(size=(rows, 3))
        csv = tmp_path / f"{org}.csv"
        csv.write_text("amount,hour,risk\n" + "".join(f"{a},{b},{c}\n" for a, b, c in data))
        vigil("anchor", str(csv), "--key", keys[org], "--node", url, "--wait")
        models[org] = tmp_path / f"{org}.vmodel"
        vigil("model", "train", str(csv), "--out", str(models[org]), "--trees", "10",
              "--seed", str(seed))  # fmt: skip

    _enact(net, "fl", "open", "fed", "--features", "amount,hour,risk", "--deadline-in", "12",
           "--min-members", "2")  # fmt: skip
    for org, rows in (("org1", 90), ("org2", 60)):
        out = vigil("fl", "submit", "1", str(models[org]), "--key", keys[org], "--node", url,
                    "--wait")  # fmt: skip
        assert _result(out) == rows, out  # the rows credited to the member
    early = json.loads(vigil("fl", "status", "1", "--node", url, "--genesis", genesis, "--json"))
    assert early["result"]["status"] == "open"
    deadline = early["result"]["deadline"]
    while net.status("org1")["height"] < deadline:  # type: ignore[index]  # blocks need txs
        [tx_hash] = net.submit("org1", net.anchors(1))
        net.wait("an anchor commits", lambda h=tx_hash: net.committed("org1", h))
    vigil("fl", "close", "1", "--key", keys["org1"], "--node", url, "--wait")
    shown = vigil("fl", "status", "1", "--node", url, "--genesis", genesis)
    assert "round 1 for model fed: closed" in shown and "org2" in shown and "60 rows" in shown
    assert "verified:" in shown, shown

    merged = tmp_path / "merged.vmodel"
    pid = _result(vigil("fl", "merge", "1", "--out", str(merged), "--key", _admin(net, "org1"),
                        "--node", url, "--genesis", genesis, "--wait"))  # fmt: skip
    for org in ("org1", "org2", "org3"):
        vigil("gov", "vote", str(pid), "yes", "--key", _admin(net, org), "--node", url, "--wait")
    listed = vigil("model", "list", "fed", "--node", url, "--genesis", genesis)
    assert "org1=90, org2=60" in listed, listed
