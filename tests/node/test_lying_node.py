"""A real 4-node network with a lying proxy in front of one node: the CLI refuses every
altered answer that matters (exit 3, naming the failed step) while honest nodes verify."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner
from test_network import Net, running_network, vigil

from cli.main import main
from consensus.certificate import Certificate
from consensus.crypto import PrivateKey
from node.app.state import ANCHOR
from node.app.types import Header
from node.localnet import free_base_port

pytestmark = pytest.mark.slow

Tamper = Callable[[str, dict], dict]


class LyingProxy:
    """Forwards every request to one node and lets a test rewrite its JSON answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tamper: Tamper | None = None
        self.port = free_base_port(1, 30_000)
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=await request.read()
            ) as resp,
        ):
            body = await resp.read()
            status = resp.status
        tamper = self.tamper
        if tamper is not None and status == 200:
            answer = tamper(request.path, json.loads(body))
            return web.json_response(answer, status=status)
        return web.Response(body=body, status=status, content_type="application/json")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> LyingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with running_network(tmp_path_factory.mktemp("lying")) as n:
        yield n


def _flip(hex_text: str) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[len(raw) // 2] ^= 0x01
    return raw.hex()


def _on_state(change: Callable[[dict], None]) -> Tamper:
    def tamper(path: str, answer: dict) -> dict:
        if path.startswith("/v1/state/"):
            change(answer)
        return answer

    return tamper


def _short_certificate(answer: dict) -> None:
    cert = Certificate.decode(bytes.fromhex(answer["certificate"]))
    answer["certificate"] = dataclasses.replace(cert, votes=cert.votes[:-1]).encode().hex()


def _other_header(answer: dict) -> None:
    header = Header.decode(bytes.fromhex(answer["header"]))
    answer["header"] = (
        dataclasses.replace(header, timestamp_ms=header.timestamp_ms + 1).encode().hex()
    )


def _forged_change(state: dict) -> Tamper:
    """Claim a validator-set change to a made-up validator at ``state``'s block, with the
    proof of another key."""

    def tamper(path: str, answer: dict) -> dict:
        if path.startswith("/v1/light/changes"):
            answer["changes"] = [
                {
                    "height": state["height"],
                    "header": state["header"],
                    "certificate": state["certificate"],
                    "validators": [PrivateKey.from_seed(b"m" * 32).public.hex()],
                    "proof": state["proof"],
                }
            ]
        return answer

    return tamper


def lies(state: dict) -> list[tuple[str, Tamper, str]]:
    """How the proxy lies about a state read (``state``: an honest answer to reuse)."""
    return [
    ("a changed anchor record", _on_state(lambda a: a.update(value=_flip(a["value"]))),
     "state proof: the proven value differs"),
    ("the anchor claimed absent", _on_state(lambda a: a.update(value=None)),
     "state proof: the proof shows the key present"),
    ("a proof with a changed byte", _on_state(lambda a: a.update(proof=_flip(a["proof"]))),
     "state proof"),
    ("a certificate one signature short", _on_state(_short_certificate),
     "certificate: certificate for height .* votes, quorum is 3 of 4"),
    ("a header the certificate does not sign", _on_state(_other_header),
     "certificate signs another block than this header"),
    ("an answer for another key", _on_state(lambda a: a.update(key="00" * 33)),
     "the node answered for another key"),
    ("a key that is not hex", _on_state(lambda a: a.update(key="zz")),
     "state answer: malformed"),
    ("a forged validator-set change", _forged_change(state),
     "validator-set change: the set said to follow block"),
    ]  # fmt: skip


def _anchored(net: Net, path: Path, text: str) -> str:
    """Write ``path`` and anchor it through org1; the CLI's output."""
    path.write_text(text)
    key = str(net.net.client_key)
    return vigil("anchor", str(path), "--key", key, "--node", net.node("org1").url, "--wait")


def _every_lie_refused(
    proxy: LyingProxy, lies: list[tuple[str, Tamper, str]], argv: list[str]
) -> None:
    """Each lie makes the command exit 3 with its own message."""
    for name, tamper, message in lies:
        proxy.tamper = tamper
        result = CliRunner().invoke(main, [*argv, "--node", proxy.url])
        assert result.exit_code == 3, f"{name}: exit {result.exit_code}\n{result.output}"
        assert "verification failed" in result.output, name
        assert re.search(message, result.output), f"{name}: {result.output}"


def test_every_altered_answer_is_refused_and_honest_nodes_verify(net: Net, tmp_path: Path) -> None:
    genesis = str(net.net.genesis_path)
    data = tmp_path / "payments.csv"
    _anchored(net, data, "amount\n10\n20\n")
    honest = vigil("verify-file", str(data), "--node", net.node("org2").url, "--genesis", genesis)
    assert "verified: anchor record and the models trained on it proven" in honest
    with LyingProxy(net.node("org1").url) as proxy:
        proxied = vigil("verify-file", str(data), "--node", proxy.url, "--genesis", genesis)
        # forwarding alone changes nothing
        assert "verified: anchor record and the models trained on it proven" in proxied
        key = (ANCHOR + hashlib.sha256(data.read_bytes()).digest()).hex()
        with urllib.request.urlopen(f"{net.node('org1').url}/v1/state/{key}") as resp:
            state = json.loads(resp.read())
        _every_lie_refused(proxy, lies(state), ["verify-file", str(data), "--genesis", genesis])
        proxy.tamper = lambda path, a: (
            a | {"genesis_hash": "00" * 32} if path == "/v1/status" else a
        )
        lied = CliRunner().invoke(main, ["status", "--node", proxy.url, "--genesis", genesis])
        assert lied.exit_code == 3 and "not this genesis file's" in lied.output
        proxy.tamper = _on_state(_short_certificate)
        lied = CliRunner().invoke(main, ["status", "--node", proxy.url, "--genesis", genesis])
        assert lied.exit_code == 3 and "quorum is 3 of 4" in lied.output
    for org in ("org2", "org3", "org4"):  # and every honest node still verifies
        assert "verified: latest block proven at height" in vigil(
            "status", "--node", net.node(org).url, "--genesis", genesis
        )


def _on_tx(change: Callable[[dict], None]) -> Tamper:
    def tamper(path: str, answer: dict) -> dict:
        if path.startswith("/v1/txs/") and "verify" in answer:
            change(answer)
        return answer

    return tamper


def _reverted_receipt(answer: dict) -> None:
    from node.app.types import Receipt

    receipt = Receipt.decode(bytes.fromhex(answer["verify"]["receipt"]))
    forged = dataclasses.replace(receipt, status="reverted", error="Revert: made up")
    answer["verify"]["receipt"] = forged.encode().hex()


TX_LIES: list[tuple[str, Tamper, str]] = [
    ("a receipt turned into a revert", _on_tx(_reverted_receipt),
     "receipt proof: the receipt is not in block"),
    ("a changed transaction", _on_tx(lambda a: a.update(raw=_flip(a["raw"]))),
     "transaction answer"),
    ("a short certificate", _on_tx(lambda a: _short_certificate(a["verify"])),
     "quorum is 3 of 4"),
    ("a header the certificate does not sign", _on_tx(lambda a: _other_header(a["verify"])),
     "certificate signs another block"),
]  # fmt: skip


def test_tx_show_verifies_and_refuses_altered_transactions_and_receipts(
    net: Net, tmp_path: Path
) -> None:
    genesis = str(net.net.genesis_path)
    out = _anchored(net, tmp_path / "shown.csv", "amount\n30\n")
    tx_hash = next(line.split()[1] for line in out.splitlines() if line.startswith("tx "))
    shown = vigil("tx", "show", tx_hash, "--node", net.node("org3").url, "--genesis", genesis)
    assert "kind      anchor" in shown and "status    ok" in shown
    assert "verified: transaction and receipt proven at height" in shown
    missing = CliRunner().invoke(
        main, ["tx", "show", "00" * 32, "--node", net.node("org3").url, "--genesis", genesis]
    )
    assert missing.exit_code == 1 and "not committed" in missing.output
    with LyingProxy(net.node("org1").url) as proxy:
        _every_lie_refused(proxy, TX_LIES, ["tx", "show", tx_hash, "--genesis", genesis])


def _on_query(change: Callable[[dict], None]) -> Tamper:
    def tamper(path: str, answer: dict) -> dict:
        if path.endswith("/query") and "proof" in answer:
            change(answer)
        return answer

    return tamper


def _drop_read(answer: dict) -> None:
    answer["proof"]["reads"] = answer["proof"]["reads"][1:]


def _changed_read(answer: dict) -> None:
    read = next(r for r in answer["proof"]["reads"] if r["value"] is not None)
    read["value"] = _flip(read["value"])


QUERY_LIES: list[tuple[str, Tamper, str]] = [
    ("a different result", _on_query(lambda a: a.update(result=[])),
     "query result: the node's result differs"),
    ("a read left unproven", _on_query(_drop_read),
     "query proof: the query reads key .* no proof"),
    ("a read value changed", _on_query(_changed_read),
     "state proof: key .*: the proven value differs"),
    ("a short certificate", _on_query(lambda a: _short_certificate(a["proof"])),
     "quorum is 3 of 4"),
]  # fmt: skip


def _on_block(change: Callable[[dict], None]) -> Tamper:
    def tamper(path: str, answer: dict) -> dict:
        if path.startswith("/v1/blocks/") and "verify" in answer:
            change(answer["verify"])
        return answer

    return tamper


def _receipt_dropped(part: dict) -> None:
    part["receipts"] = part["receipts"][:-1]


BLOCK_LIES: list[tuple[str, Tamper, str]] = [
    ("a receipt left out", _on_block(_receipt_dropped), "receipts: 0 receipts for 1"),
    ("a changed block", _on_block(lambda p: p.update(block=_flip(p["block"]))), "block"),
    ("a short certificate", _on_block(_short_certificate), "quorum is 3 of 4"),
]  # fmt: skip


def test_queries_blocks_and_bundles_verify_and_refuse_what_a_node_alters(
    net: Net, tmp_path: Path
) -> None:
    """Contract queries re-run over proven reads, whole blocks, and offline proof bundles."""
    genesis = str(net.net.genesis_path)
    out = _anchored(net, tmp_path / "block.csv", "amount\n31\n")
    tx_hash = next(line.split()[1] for line in out.splitlines() if line.startswith("tx "))
    height = json.loads(vigil("tx", "show", tx_hash, "--node", net.node("org2").url,
                              "--genesis", genesis, "--json"))["height"]  # fmt: skip
    failover = vigil("status", "--node", "http://127.0.0.1:9", "--node", net.node("org2").url,
                     "--genesis", genesis)  # fmt: skip
    assert "verified: latest block proven" in failover  # the unreachable first node is skipped
    members = vigil("contract", "query", "governance", "members", "--node", net.node("org2").url,
                    "--genesis", genesis)  # fmt: skip
    assert "org1:" in members and "verified: governance.members over its state" in members
    block = vigil("block", "show", str(height), "--node", net.node("org3").url,
                  "--genesis", genesis)  # fmt: skip
    assert tx_hash in block and f"verified: block {height} and all its transactions (1)" in block
    bundle = tmp_path / "anchor.proof"
    exported = vigil("proof", "export", "--tx", tx_hash, "--out", str(bundle),
                     "--node", net.node("org4").url, "--genesis", genesis)  # fmt: skip
    assert "it anchors dataset" in exported and "written" in exported
    checked = vigil("proof", "verify", str(bundle), "--genesis", genesis)
    assert "no node was asked" in checked
    assert checked.splitlines()[0] == exported.splitlines()[0]
    data = bytearray(bundle.read_bytes())
    data[len(data) // 3] ^= 0x04
    bundle.write_bytes(bytes(data))
    altered = CliRunner().invoke(main, ["proof", "verify", str(bundle), "--genesis", genesis])
    assert altered.exit_code == 3 and "verification failed" in altered.output
    with LyingProxy(net.node("org1").url) as proxy:
        _every_lie_refused(
            proxy, QUERY_LIES, ["contract", "query", "governance", "members", "--genesis", genesis]
        )
        _every_lie_refused(proxy, BLOCK_LIES, ["block", "show", str(height), "--genesis", genesis])
        _every_lie_refused(proxy, TX_LIES, ["proof", "export", "--tx", tx_hash,
                                            "--out", str(tmp_path / "never.proof"),
                                            "--genesis", genesis])  # fmt: skip
        assert not (tmp_path / "never.proof").exists()  # nothing written from a lie
        proxy.tamper = None
        both = vigil("gov", "list", "--node", proxy.url, "--node", net.node("org2").url,
                     "--quorum", "2", "--genesis", genesis)  # fmt: skip
        assert "the same answer from 2 nodes" in both
        proxy.tamper = _on_query(lambda a: a.update(result=["made up"]))
        # Failover skips a node that cannot be reached, never one that lies: a lie is refused.
        lied = CliRunner().invoke(main, ["gov", "list", "--node", proxy.url, "--node",
                                         net.node("org2").url, "--genesis", genesis])  # fmt: skip
        assert lied.exit_code == 3
