"""Real node processes on 127.0.0.1: commits, crashes, view changes, catch-up, refusals."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from consensus import codec
from consensus.crypto import DOMAIN_HANDSHAKE, PrivateKey
from node import localnet
from node.app.types import AnchorPayload, Tx
from node.localnet import LocalNet, LocalNode

pytestmark = pytest.mark.slow

FAST_TIMEOUTS = {
    "progress_timeout_ms": 1500,
    "request_timeout_ms": 3000,
    "view_change_timeout_ms": 1500,
}


class Net:
    def __init__(self, net: LocalNet) -> None:
        self.net = net
        self.procs: dict[str, subprocess.Popen] = {}
        self.client = PrivateKey.load(net.client_key)
        self.chain_id = net.genesis().chain_id
        self.genesis_hash = net.genesis().hash()
        self.org_of = {m.node_key.hex(): m.org for m in net.genesis().members}
        self._seq = 0

    def node(self, org: str) -> LocalNode:
        return next(n for n in self.net.nodes if n.org == org)

    def start(self, org: str, *extra: str) -> None:
        self.procs[org] = localnet.start(self.node(org), *extra)

    def kill(self, org: str) -> None:
        proc = self.procs.pop(org)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def status(self, org: str) -> dict | None:
        return localnet.get_json(self.node(org).url + "/v1/status", timeout=2)

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        logs = {n.org: (n.home / "node.log").read_text()[-1500:] for n in self.net.nodes}
        pytest.fail(f"timed out waiting for {what}; logs: {json.dumps(logs, indent=1)}")

    def heights(self, orgs: list[str] | None = None) -> dict[str, int | None]:
        out = {}
        for org in orgs or [n.org for n in self.net.nodes]:
            s = self.status(org)
            out[org] = None if s is None else s["height"]
        return out

    def anchors(self, count: int) -> list[Tx]:
        txs = []
        for _ in range(count):
            self._seq += 1
            data = f"dataset {self._seq} {time.time_ns()}".encode()
            payload = AnchorPayload(hashlib.sha256(data).digest(), len(data), "text/plain", (), ())
            until = 10_000 // 20
            txs.append(Tx.create(self.client, self.chain_id, self.genesis_hash, payload, until))
        return txs

    def submit(self, org: str, txs: list[Tx]) -> list[str]:
        answer = localnet.http(
            "POST", self.node(org).url + "/v1/txs", {"txs": [t.encode().hex() for t in txs]}
        )
        assert answer is not None and answer[0] == 202, answer
        hashes = [r["hash"] for r in answer[1]["results"] if "hash" in r]
        assert len(hashes) == len(txs), answer[1]["results"]
        return hashes

    def committed(self, org: str, tx_hash: str) -> bool:
        info = localnet.get_json(f"{self.node(org).url}/v1/txs/{tx_hash}", timeout=2)
        return info is not None and info.get("status") == "committed"

    def primary_org(self, via: str) -> str:
        s = self.status(via)
        assert s is not None
        return self.org_of[s["primary"]]


@contextlib.contextmanager
def running_network(directory: Path, count: int = 4) -> Iterator[Net]:
    """``count`` real nodes with short consensus timeouts, linked to each other; stopped after."""
    created = localnet.create(directory, count)
    for node in created.nodes:
        path = node.home / "config.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | FAST_TIMEOUTS))
    n = Net(created)
    for node in created.nodes:
        n.start(node.org)
    try:
        n.wait("all nodes linked", lambda: all(
            (s := n.status(x.org)) is not None and len(s["peers"]) == count - 1
            for x in created.nodes
        ))  # fmt: skip
        yield n
    finally:
        for proc in n.procs.values():
            localnet.stop(proc)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with running_network(tmp_path_factory.mktemp("localnet")) as n:
        yield n


def vigil(*args: str) -> str:
    """Run the CLI in-process; fail the test with its output if it fails."""
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def admin_key(n: Net, org: str) -> str:
    return str(n.net.directory / f"admin-{org}.key")


def govern(n: Net, *proposal: str, command: tuple[str, ...] = ("gov", "propose")) -> int:
    """Propose with org1's admin; org1, org2 and org3 approve (3 of 4 members)."""
    url = n.node("org1").url
    out = vigil(*command, *proposal, "--key", admin_key(n, "org1"), "--node", url, "--wait")
    result_line = next(line for line in out.splitlines() if line.startswith("result"))
    pid = int(result_line.split()[-1])
    for org in ("org1", "org2", "org3"):
        vigil("gov", "vote", str(pid), "yes", "--key", admin_key(n, org), "--node", url, "--wait")
    return pid


def anchored(n: Net, data: object) -> list[tuple[bytes, int]]:
    """Anchor a training matrix's bytes on chain (as its owner would anchor the file) and
    return it as the one training dataset of a model: this chain approves only models
    trained on anchored data."""
    raw = data.tobytes()  # type: ignore[attr-defined]
    digest = hashlib.sha256(raw).digest()
    payload = AnchorPayload(digest, len(raw), "application/octet-stream", (), ())
    tx = Tx.create(n.client, n.chain_id, n.genesis_hash, payload, 10_000 // 20)
    [tx_hash] = n.submit("org1", [tx])
    n.wait("the training data is anchored", lambda: n.committed("org1", tx_hash))
    return [(digest, len(data))]  # type: ignore[arg-type]


def all_equal(n: Net, orgs: list[str], height: int) -> bool:
    states = [n.status(o) for o in orgs]
    if any(s is None or s["height"] < height for s in states):
        return False
    # Compare state roots at a common height through the block API.
    roots = {
        localnet.get_json(f"{n.node(o).url}/v1/blocks/{height}")["header"]["state_root"]  # type: ignore[index]
        for o in orgs
    }
    return len(roots) == 1


def test_a_few_hundred_anchors_commit_identically_everywhere(net: Net) -> None:
    orgs = [x.org for x in net.net.nodes]
    hashes = []
    for i, org in enumerate(orgs * 3):
        hashes += net.submit(org, net.anchors(25 + i))
    assert len(hashes) >= 300
    net.wait("every anchor committed", lambda: all(net.committed(orgs[0], h) for h in hashes[-5:]))
    net.wait("all committed", lambda: all(net.committed(orgs[0], h) for h in hashes))
    height = net.status(orgs[0])["height"]  # type: ignore[index]
    net.wait("same height and state root", lambda: all_equal(net, orgs, height))
    for org in orgs:
        assert all(net.committed(org, h) for h in hashes[::37])


def _scrape(n: Net, org: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a node's /metrics, parsed by prometheus-client's own parser."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(n.node(org).url + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_move_under_load(net: Net) -> None:
    """Counters and histograms of a node's /metrics move while blocks commit."""
    before = _scrape(net, "org2")
    hashes = net.submit("org1", net.anchors(300))
    net.wait("the load committed", lambda: all(net.committed("org2", h) for h in hashes[-5:]))
    net.wait("every anchor committed", lambda: all(net.committed("org2", h) for h in hashes))
    after = _scrape(net, "org2")

    def grew(name: str, by: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        assert after.get(key, 0) - before.get(key, 0) >= by, (name, labels, before.get(key))

    grew("vigil_committed_txs_total", 300, kind="anchor", outcome="ok")
    grew("vigil_height")
    grew("vigil_commit_seconds_count")
    grew("vigil_execute_seconds_count", phase="validate")
    grew("vigil_fsync_seconds_count", what="block")
    grew("vigil_fsync_seconds_count", what="safety")
    grew("vigil_verify_seconds_count")  # the gossiped copies, checked in batches
    grew("vigil_peer_frames_total", kind="consensus", direction="in")
    grew("vigil_peer_bytes_total", 1000, kind="tx", direction="in")
    grew("vigil_event_loop_lag_seconds_count")
    grew("vigil_thread_cpu_seconds_total", 0.01, thread="loop")  # a clock tick is 0.01 s
    grew("vigil_thread_cpu_seconds_total", 0.01, thread="app")
    cpu = "vigil_thread_cpu_seconds_total"
    roles = {dict(labels)["thread"] for name, labels in after if name == cpu}
    assert roles == {"loop", "app", "verify", "other"}
    assert (
        after[("vigil_commit_seconds_bucket", (("le", "+Inf"),))]
        == after[("vigil_commit_seconds_count", ())]
    )
    for org in ("org1", "org3", "org4"):
        assert after[("vigil_peer_up", (("peer", org),))] == 1
    requests = _scrape(net, "org1")
    assert requests[("vigil_api_requests_total", (("route", "/v1/txs"), ("status", "202")))] >= 1
    bad = localnet.http("GET", net.node("org1").url + "/v1/blocks/notanumber")
    assert bad is not None and bad[0] == 400
    assert (
        _scrape(net, "org1")[
            ("vigil_api_requests_total", (("route", "/v1/blocks/{height}"), ("status", "400")))
        ]
        >= 1
    )


def test_the_grafana_dashboard_uses_only_metrics_a_node_serves(net: Net) -> None:
    """docs/grafana/vigil-node.json imports as is: valid JSON, and every metric it queries is
    one a running node exposes (a renamed metric would leave a panel empty)."""
    import re
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    dashboard = json.loads((Path(__file__).parents[2] / "docs/grafana/vigil-node.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    wanted = {m for e in exprs for m in re.findall(r"\bvigil_[a-z_]+", e)}
    with urllib.request.urlopen(net.node("org1").url + "/metrics", timeout=10) as resp:
        families = list(text_string_to_metric_families(resp.read().decode()))
    served = {f.name for f in families} | {s.name for f in families for s in f.samples}
    served |= {f"{f.name}_{suffix}" for f in families for suffix in ("total", "bucket")}
    assert wanted and wanted <= served, wanted - served
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_malformed_and_oversize_requests_get_4xx_and_change_nothing(net: Net) -> None:
    url = net.node("org1").url
    before = net.status("org1")
    good = net.anchors(1)[0]
    cases = [
        ("POST", "/v1/txs", {"tx": "zz"}, 400),
        ("POST", "/v1/txs", {"tx": good.encode()[:-3].hex()}, 400),
        ("POST", "/v1/txs", {"tx": (good.encode() + b"\x00").hex()}, 400),
        ("POST", "/v1/txs", {"nothing": 1}, 400),
        ("POST", "/v1/txs", {"txs": []}, 400),
        ("POST", "/v1/txs", {"txs": ["00"] * 1001}, 413),
        ("POST", "/v1/txs", {"tx": "00" * (200 * 1024)}, 400),
        ("GET", "/v1/txs/nothex", None, 400),
        ("GET", "/v1/blocks/-1", None, 400),
        ("GET", "/v1/blocks/999999", None, 404),
        ("GET", "/v1/anchors/" + "ab" * 32, None, 404),
        ("GET", "/v1/nowhere", None, 404),
    ]
    for method, path, body, status in cases:
        answer = localnet.http(method, url + path, body)
        assert answer is not None, path
        assert answer[0] == status, (path, answer)
        assert "code" in answer[1]["error"], answer
    stranger = PrivateKey.generate()
    tx = Tx.create(stranger, net.chain_id, net.genesis_hash, good.payload, 100)
    answer = localnet.http("POST", url + "/v1/txs", {"tx": tx.encode().hex()})
    assert answer is not None and answer[0] == 400 and answer[1]["error"]["code"] == "unauthorised"
    huge = localnet.http("POST", url + "/v1/txs", {"tx": "00" * (300 * 1024 * 1024 // 2)})
    assert huge is None or huge[0] == 413
    after = net.status("org1")
    assert after is not None and before is not None
    assert after["mempool"] == before["mempool"]


def test_a_peer_outside_the_validator_set_is_refused_at_handshake(net: Net) -> None:
    """Over TLS (the default): the TLS session comes up for anyone, the handshake does not."""
    from node.p2p import HANDSHAKE_VERSION
    from node.tls import peer_client_context

    async def attempt(key: PrivateKey) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                f"https://{net.node('org2').peer}/p2p", ssl=peer_client_context()
            ) as ws,
        ):
            hello = ["hello", HANDSHAKE_VERSION, net.chain_id, key.public, os.urandom(32)]
            await ws.send_bytes(codec.encode(hello))
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                return "challenge"
            return f"closed {ws.close_code}: {msg.extra}"

    outcome = asyncio.run(attempt(PrivateKey.generate()))
    assert "4001" in outcome and "not in the current validator set" in outcome
    assert DOMAIN_HANDSHAKE  # the handshake signs under its own domain (see node/p2p.py)


def test_sigkill_under_load_loses_no_acknowledged_transaction(net: Net) -> None:
    victim = next(o for o in ("org1", "org2", "org3", "org4") if o != net.primary_org("org1"))
    others = [x.org for x in net.net.nodes if x.org != victim]
    acked = net.submit(others[0], net.anchors(60))
    net.kill(victim)
    try:
        acked += net.submit(others[1], net.anchors(60))
        net.wait(
            "commits without the killed node",
            lambda: all(net.committed(others[0], h) for h in acked),
        )
    finally:  # later tests share the network
        net.start(victim)
    target = net.status(others[0])["height"]  # type: ignore[index]
    net.wait("restarted node catches up", lambda: (net.heights([victim])[victim] or 0) >= target)
    assert all(net.committed(victim, h) for h in acked)


def test_killing_the_primary_triggers_a_view_change_and_commits_continue(net: Net) -> None:
    primary = net.primary_org("org1")
    others = [x.org for x in net.net.nodes if x.org != primary]
    net.kill(primary)
    try:
        hashes = net.submit(others[0], net.anchors(40))
        net.wait(
            "commits after the primary died",
            lambda: all(net.committed(others[1], h) for h in hashes),
            90,
        )
        scraped = _scrape(net, others[1])
    finally:  # the tests after this one share the network: bring the node back whatever failed
        net.start(primary)
    changes = {
        dict(labels)["reason"]: value
        for (name, labels), value in scraped.items()
        if name == "vigil_view_changes_total"
    }
    assert sum(changes.values()) >= 1 and set(changes) <= {
        "timeout_progress",
        "timeout_request",
        "timeout_view_change",
        "peers",
    }, changes
    assert scraped[("vigil_peer_up", (("peer", primary),))] == 0  # the metrics saw the link down
    target = net.status(others[0])["height"]  # type: ignore[index]
    net.wait("old primary catches up", lambda: (net.heights([primary])[primary] or 0) >= target)


def test_a_wiped_node_resyncs_from_peers(net: Net) -> None:
    victim = "org4"
    net.kill(victim)
    shutil.rmtree(net.node(victim).home / "data")
    try:
        hashes = net.submit("org1", net.anchors(30))
        net.wait("commit while wiped", lambda: all(net.committed("org1", h) for h in hashes))
    finally:  # later tests share the network
        net.start(victim)
    # A wiped node only learns it is behind from new traffic at a higher height.
    more = net.submit("org2", net.anchors(5))
    net.wait(
        "wiped node re-synced", lambda: all(net.committed(victim, h) for h in hashes + more), 90
    )
    height = net.status(victim)["height"]  # type: ignore[index]
    assert all_equal(net, ["org1", victim], height)


def test_sigterm_shuts_a_node_down_cleanly(net: Net) -> None:
    proc = net.procs.pop("org3")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    log_path = net.node("org3").home / "node.log"
    assert "shutting down" in log_path.read_text()
    start = log_path.stat().st_size
    net.start("org3", "--log-format", "json")
    net.wait("restarted after a clean stop", lambda: net.status("org3") is not None)
    before = net.status("org3")["height"]  # type: ignore[index]
    net.submit("org1", net.anchors(5))
    net.wait("it commits again", lambda: net.status("org3")["height"] > before)  # type: ignore[index]
    with log_path.open("rb") as fh:
        fh.seek(start)
        lines = [line for line in fh.read().decode().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records and all(
        {"time", "level", "node", "height", "view", "event", "message"} <= set(r) for r in records
    )
    assert {r["node"] for r in records} == {"org3"}
    assert any(r["event"] == "node" and "committed height" in r["message"] for r in records)
    secret = PrivateKey.load(net.node("org3").home / "node.key").seed()
    text = "\n".join(lines)
    assert secret.hex() not in text and (net.node("org3").home / "node.key").read_text() not in text


def test_a_damaged_store_is_named_and_resyncs_on_request(net: Net) -> None:
    victim = "org2"
    net.kill(victim)
    data = net.node(victim).home / "data"
    for manifest in data.glob("MANIFEST-*"):
        manifest.unlink()
    failed = subprocess.run(
        [sys.executable, "-m", "cli.main", "node", "run", "--home", str(net.node(victim).home)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert failed.returncode != 0
    assert str(data) in failed.stderr and "--resync" in failed.stderr
    net.start(victim, "--resync")
    more = net.submit("org1", net.anchors(5))
    net.wait("damaged node re-synced", lambda: all(net.committed(victim, h) for h in more), 90)
    assert list(data.parent.glob("data.damaged-*"))


COUNTER = """
def bump(n):
    require(n > 0, "n must be positive")
    count = ledger.get("total", 0) + n
    ledger.put("total", count)
    ledger.emit("Bumped", {"total": count})
    return count


def total():
    return ledger.get("total", 0)
"""


def test_cli_reads_are_checked_against_the_genesis_file(net: Net, tmp_path: Path) -> None:
    """`vigil status` and `vigil verify-file` verify by default (issue 12, first reads)."""
    from click.testing import CliRunner

    from cli.main import main

    genesis = str(net.net.genesis_path)
    url = net.node("org2").url
    data = tmp_path / "ledger.csv"
    data.write_text("amount\n1\n2\n")
    vigil("anchor", str(data), "--key", str(net.net.client_key), "--node", url, "--wait")
    out = vigil("verify-file", str(data), "--node", net.node("org3").url, "--genesis", genesis)
    assert "anchored at height" in out
    assert "verified: anchor record and the models trained on it proven at height" in out
    assert "of 4 validators" in out
    stranger = tmp_path / "never.csv"
    stranger.write_text("never anchored\n")
    absent = CliRunner().invoke(
        main, ["verify-file", str(stranger), "--node", url, "--genesis", genesis]
    )
    assert absent.exit_code == 1 and "absence proven at height" in absent.output
    out = vigil("status", "--node", url, "--genesis", genesis)
    assert "verified: latest block proven at height" in out and "certified by org" in out
    missing = CliRunner().invoke(main, ["status", "--node", url], env={"VIGIL_GENESIS": ""})
    assert missing.exit_code == 2 and "VIGIL_GENESIS" in missing.output
    trusted = vigil("status", "--node", url, "--no-verify")
    assert "node's word" in trusted
    other_dir = tmp_path / "other"
    other = localnet.create(other_dir, 1)  # another chain: its genesis verifies nothing here
    wrong = CliRunner().invoke(
        main, ["status", "--node", url, "--genesis", str(other.genesis_path)]
    )
    assert wrong.exit_code == 3 and "verification failed" in wrong.output


def test_contracts_deploy_call_and_query_through_the_cli(net: Net, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    source = tmp_path / "counter.py"
    source.write_text(COUNTER)
    key = str(net.net.client_key)
    url = net.node("org1").url

    govern(net, "allow-deploy", "counter", str(source))
    shown = CliRunner().invoke(
        main, ["gov", "show", "1", "--node", url, "--genesis", str(net.net.genesis_path)]
    )
    assert shown.exit_code == 0, shown.output
    assert "status: executed" in shown.output
    assert "verified: governance.get over its state proven at height" in shown.output
    as_json = vigil("gov", "show", "1", "--node", url, "--genesis", str(net.net.genesis_path),
                    "--json")  # fmt: skip
    assert json.loads(as_json)["result"]["status"] == "executed"
    none = CliRunner().invoke(
        main, ["gov", "show", "999", "--node", url, "--genesis", str(net.net.genesis_path)]
    )
    assert none.exit_code == 1 and "no proposal 999" in none.output
    out = vigil("contract", "deploy", str(source), "--name", "counter", "--key", key,
                "--node", url, "--wait")  # fmt: skip
    assert "committed at height" in out and ": ok" in out
    out = vigil("contract", "call", "counter", "bump", "[41]", "--key", key, "--node",
                net.node("org2").url, "--wait")  # fmt: skip
    assert "result   41" in out and 'Bumped {"total": 41}' in out
    out = vigil("contract", "query", "counter", "total", "--node", net.node("org4").url,
                "--genesis", str(net.net.genesis_path))  # fmt: skip
    assert out.splitlines()[0] == "41" and "verified: counter.total over its state" in out
    failed = CliRunner().invoke(
        main, ["contract", "call", "counter", "bump", "[0]", "--key", key, "--node", url, "--wait"]
    )
    assert failed.exit_code != 0 and "n must be positive" in failed.output


def test_scores_are_agreed_and_a_node_fetches_a_missing_model(net: Net, tmp_path: Path) -> None:
    import numpy as np
    from click.testing import CliRunner

    from cli.main import main
    from ml.train import TrainParams, train

    rng = np.random.default_rng(11)
    data = rng.normal(0, 1, (400, 3))
    model = train(data, ("amount", "hour", "risk"), TrainParams(n_estimators=30),
                  datasets=anchored(net, data)).model  # fmt: skip
    artifact = tmp_path / "fraud.vmodel"
    artifact.write_bytes(model.data)
    rows = tmp_path / "rows.csv"
    rows.write_text("amount,hour,risk\n0.1,0.2,-0.1\n9,9,9\n-0.3,0.5,0.0\n")
    key = str(net.net.client_key)

    late = "org4"
    net.kill(late)
    url = net.node("org1").url
    govern(net, str(artifact), "--name", "fraud", command=("model", "propose"))
    govern(net, "activate-model", "fraud", "1")
    listed = vigil("model", "list", "fraud", "--node", url, "--genesis", str(net.net.genesis_path))
    assert "1 version(s), active v1" in listed and "verified: model fraud's records" in listed
    refused = CliRunner().invoke(main, ["score", "--model", "nosuch", "--csv", str(rows),
                                        "--key", key, "--node", url])  # fmt: skip
    assert refused.exit_code == 1 and "nothing was submitted" in refused.output
    out = vigil("score", "--model", "fraud", "--csv", str(rows), "--reference", "batch",
                "--key", key, "--node", net.node("org3").url, "--wait")  # fmt: skip
    assert "3 scored, 1 flagged" in out and "batch#2: score" in out and "OUTLIER" in out
    flagged = vigil("anomalies", "--node", net.node("org2").url, "--node", url, "--quorum", "2",
                    "--genesis", str(net.net.genesis_path))  # fmt: skip
    assert "batch#2" in flagged and "1 flagged since height 1" in flagged
    assert "each of the 1 flagged scores, in its certified block" in flagged
    assert "the same list from 2 nodes" in flagged
    net.start(late)
    target = net.status("org1")["height"]  # type: ignore[index]
    net.wait("the late node fetched the model and caught up",
             lambda: (net.heights([late])[late] or 0) >= target, 90)  # fmt: skip
    assert all_equal(net, ["org1", "org2", "org3", late], target)

    async def fetch(url: str) -> bytes:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            return await resp.read()

    fetched = asyncio.run(fetch(f"{net.node(late).url}/v1/models/{model.model_id.hex()}"))
    assert hashlib.sha256(fetched).digest() == model.model_id  # it got the artifact from peers
    answer = localnet.http("GET", f"{net.node(late).url}/v1/models/{'00' * 32}")
    assert answer is not None and answer[0] == 404


def test_an_offline_signed_transaction_is_sent_and_committed(net: Net, tmp_path: Path) -> None:
    """`vigil tx sign` needs only the genesis file and the key; `vigil tx send` needs no key."""
    from click.testing import CliRunner

    from cli.main import main

    genesis, key = str(net.net.genesis_path), str(net.net.client_key)
    url = net.node("org2").url
    data = tmp_path / "offline.csv"
    data.write_text(f"signed offline {time.time_ns()}\n")
    until = str(net.status("org2")["height"] + 100)  # type: ignore[index]
    signed = tmp_path / "anchor.tx"
    out = vigil("tx", "sign", "--genesis", genesis, "--key", key, "--valid-until", until,
                "--anchor", str(data), "--out", str(signed))  # fmt: skip
    tx_hash = json.loads(signed.read_text())["hash"]
    assert f"tx {tx_hash}" in out
    sent = vigil("tx", "send", str(signed), "--node", url, "--wait")
    assert sent.splitlines()[0] == f"tx {tx_hash}" and "committed at height" in sent
    assert sent.rstrip().endswith(": ok")
    shown = vigil("tx", "show", tx_hash, "--node", net.node("org3").url, "--genesis", genesis)
    assert "kind      anchor" in shown and "status    ok" in shown
    found = vigil("verify-file", str(data), "--node", url, "--genesis", genesis)
    assert f"in tx {tx_hash}" in found
    again = CliRunner().invoke(main, ["tx", "send", str(signed), "--node", url])
    assert again.exit_code == 1  # the node refuses a committed transaction

    data.write_text(f"signed offline, sent as JSON {time.time_ns()}\n")
    vigil("tx", "sign", "--genesis", genesis, "--key", key, "--valid-until", until, "--anchor",
          str(data), "--out", str(signed), "--force")  # fmt: skip
    answer = json.loads(vigil("tx", "send", str(signed), "--node", url, "--wait", "--json"))
    assert answer["tx"] == json.loads(signed.read_text())["hash"] and answer["status"] == "ok"
    assert answer["height"] >= 1

    expired = tmp_path / "expired.tx"
    vigil("tx", "sign", "--genesis", genesis, "--key", key, "--valid-until", "1", "--anchor",
          str(data), "--out", str(expired))  # fmt: skip
    refused = CliRunner().invoke(main, ["tx", "send", str(expired), "--node", url])
    assert refused.exit_code == 1 and "expired" in refused.output

    other = localnet.create(tmp_path / "other", 1)  # another chain: its transactions are not ours
    foreign = tmp_path / "foreign.tx"
    vigil("tx", "sign", "--genesis", str(other.genesis_path), "--key", str(other.client_key),
          "--valid-until", until, "--anchor", str(data), "--out", str(foreign))  # fmt: skip
    before = net.status("org2")["mempool"]  # type: ignore[index]
    wrong = CliRunner().invoke(main, ["tx", "send", str(foreign), "--node", url])
    assert wrong.exit_code == 1 and "nothing was sent" in wrong.output
    assert other.genesis().hash().hex() in wrong.output and net.genesis_hash.hex() in wrong.output
    assert net.status("org2")["mempool"] == before  # type: ignore[index]


def test_score_rows_of_the_wrong_width_are_refused_before_submitting(
    net: Net, tmp_path: Path
) -> None:
    """`vigil score` checks each row's width against the active model's artifact first."""
    import numpy as np
    from click.testing import CliRunner

    from cli.main import main
    from ml.train import TrainParams, train

    rng = np.random.default_rng(5)
    data = rng.normal(0, 1, (200, 4))
    model = train(data, ("amount", "hour", "risk", "country"), TrainParams(n_estimators=10),
                  datasets=anchored(net, data)).model  # fmt: skip
    artifact = tmp_path / "wide.vmodel"
    artifact.write_bytes(model.data)
    url = net.node("org1").url
    govern(net, str(artifact), "--name", "wide", command=("model", "propose"))
    govern(net, "activate-model", "wide", "1")
    key = str(net.net.client_key)
    rows = tmp_path / "narrow.csv"
    rows.write_text("amount,hour,risk\n0.1,0.2,0.3\n0.2,0.1,0.0\n")
    before = net.status("org1")["mempool"]  # type: ignore[index]
    cases = [
        (["--features", "0.1,0.2,0.3"], "row 1 has 3 features; model wide v1 expects 4"),
        (["--features", "1,2,3,4,5"], "row 1 has 5 features; model wide v1 expects 4"),
        (["--csv", str(rows)], "row 1 has 3 features; model wide v1 expects 4"),
    ]
    for args, message in cases:
        refused = CliRunner().invoke(main, ["score", "--model", "wide", *args, "--key", key,
                                            "--node", url])  # fmt: skip
        assert refused.exit_code == 1, refused.output
        assert message in refused.output and "(nothing was submitted)" in refused.output
        assert "amount, hour, risk, country" in refused.output and "warning" not in refused.output
    assert net.status("org1")["mempool"] == before  # type: ignore[index]
    out = vigil("score", "--model", "wide", "--features", "0.1,0.2,0.3,0.4", "--reference",
                "fits", "--key", key, "--node", url, "--wait")  # fmt: skip
    assert "fits: score" in out and "warning" not in out


ORGS = ["org1", "org2", "org3", "org4"]


def test_drift_is_the_same_on_every_node_and_shown_verified(net: Net, tmp_path: Path) -> None:
    """A window of scores like the training data stays below notice; a shifted one raises the
    alarm; every node reports the same PSI and `vigil model drift` verifies it."""
    import numpy as np

    from ml.train import TrainParams, train

    rng = np.random.default_rng(21)
    data = rng.normal(0, 1, (2000, 3))
    model = train(data, ("amount", "hour", "risk"), TrainParams(n_estimators=40),
                  datasets=anchored(net, data)).model  # fmt: skip
    artifact = tmp_path / "drifty.vmodel"
    artifact.write_bytes(model.data)
    govern(net, str(artifact), "--name", "drifty", command=("model", "propose"))
    govern(net, "activate-model", "drifty", "1")
    govern(net, "set-param", "drift_window", "500")
    key, genesis = str(net.net.client_key), str(net.net.genesis_path)
    for tag, rows in (("calm", rng.normal(0, 1, (500, 3))), ("moved", rng.normal(2, 1, (500, 3)))):
        csv = tmp_path / f"{tag}.csv"
        csv.write_text("amount,hour,risk\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
        vigil("score", "--model", "drifty", "--csv", str(csv), "--reference", tag, "--key", key,
              "--node", net.node("org2").url, "--wait")  # fmt: skip

    def drift(org: str) -> dict:
        answer = localnet.http("GET", f"{net.node(org).url}/v1/models/drifty/drift")
        assert answer is not None and answer[0] == 200
        return answer[1]  # type: ignore[return-value]

    target = net.status("org2")["height"]  # type: ignore[index]
    net.wait("every node has the scores", lambda: all_equal(net, ORGS, target), 60)
    answers = [drift(org) for org in ORGS]
    first = answers[0]
    assert all(a["history"] == first["history"] and a["psi"] == first["psi"] for a in answers)
    [calm, moved] = first["history"]
    assert calm["psi"] < 0.1 and moved["psi"] > 0.25, first["history"]
    assert first["level"] == "alarm" and first["windows"] == 2 and first["count"] == 0
    out = vigil("model", "drift", "drifty", "--node", net.node("org3").url, "--genesis", genesis)
    assert "drift ALARM" in out and f"PSI {moved['psi']:.3f}" in out, out
    assert "verified: model drifty's active model, its drift record" in out
    as_json = json.loads(vigil("model", "drift", "drifty", "--node", net.node("org4").url,
                               "--genesis", genesis, "--json"))  # fmt: skip
    assert as_json["history"] == first["history"] and as_json["training"] == first["training"]
    scraped = _scrape(net, "org1")
    assert scraped[("vigil_model_drift_psi", (("model", "drifty"),))] == moved["psi"]
    assert scraped[("vigil_model_drift_level", (("model", "drifty"),))] == 2
    for name, status in (("nosuch", 404), ("Bad-Name", 400), ("x" * 65, 400)):
        answer = localnet.http("GET", f"{net.node('org1').url}/v1/models/{name}/drift")
        assert answer is not None and answer[0] == status, (name, answer)


def test_a_model_upload_needs_an_authorised_key_and_stays_on_its_node(
    net: Net, tmp_path: Path
) -> None:
    """`vigil model upload` signs with --key: a key governance never authorised is refused
    with a clear error; an authorised client's upload is kept by that node only (peers fetch
    an artifact when a block reads it)."""
    import numpy as np
    from click.testing import CliRunner

    from cli.client import call_bytes
    from cli.main import main
    from ml.train import TrainParams, train

    data = np.random.default_rng(99).normal(0, 1, (64, 3))
    model = train(data, ("amount", "hour", "risk"), TrainParams(n_estimators=2)).model
    artifact = tmp_path / "unproposed.vmodel"
    artifact.write_bytes(model.data)
    stranger = tmp_path / "stranger.key"
    PrivateKey.generate().save(stranger)
    url = net.node("org1").url
    refused = CliRunner().invoke(main, ["model", "upload", str(artifact), "--key", str(stranger),
                                        "--node", url])  # fmt: skip
    assert refused.exit_code == 1, refused.output
    assert "may not upload models" in refused.output and "unauthorised" in refused.output
    assert "--role submit" in refused.output
    answer = localnet.http("GET", f"{url}/v1/models/{model.model_id.hex()}")
    assert answer is not None and answer[0] == 404
    info = json.loads(vigil("model", "upload", str(artifact), "--key", str(net.net.client_key),
                            "--node", url, "--json"))  # fmt: skip
    assert info["model_id"] == model.model_id.hex()
    assert call_bytes("GET", url, f"/v1/models/{model.model_id.hex()}") == model.data
    answer = localnet.http("GET", f"{net.node('org2').url}/v1/models/{model.model_id.hex()}")
    assert answer is not None and answer[0] == 404  # not pushed to the peers
