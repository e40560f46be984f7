"""The explorer in a real browser (Debian's chromium, driven by Playwright) against a real
4-node network with a flagged score, checked against the JSON API; screenshots are saved under
test-output/explorer/ for a person to look at."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_network import Net, govern, running_network, vigil

from node import localnet
from node.app.types import AnchorPayload, Tx

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Without the background-networking flags chromium keeps dialling hosts a closed network
refuses; without --no-sandbox it does not start as root."""
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "explorer"
TIMEOUT_MS = 20_000


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's chromium under Playwright (whose own browser download does not work here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def off_loop(fn, *args):  # type: ignore[no-untyped-def]
    """Run ``fn`` in another thread: Playwright's sync API keeps an event loop running in this
    one, and the network helpers start their own."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


HOSTILE_TEXT = "<img src=x onerror=\"document.title='owned'\"><script>alert(1)</script>"
"""Metadata a member could anchor: the explorer must show it as text and run none of it."""


def _anchor(n: Net, data: bytes, parents: tuple[bytes, ...] = (), note: str = "e2e") -> bytes:
    digest = hashlib.sha256(data).digest()
    payload = AnchorPayload(digest, len(data), "text/csv", parents, (("note", note),))
    tx = Tx.create(n.client, n.chain_id, n.genesis_hash, payload, 500)
    [tx_hash] = n.submit("org1", [tx])
    n.wait("the anchor commits", lambda: n.committed("org1", tx_hash))
    return digest


def _get(n: Net, path: str) -> dict:
    answer = off_loop(localnet.http, "GET", n.node("org1").url + path)
    assert answer is not None and answer[0] == 200, (path, answer)
    return answer[1]  # type: ignore[return-value]


def _query(n: Net, method: str, args: list) -> object:
    return _query_contract(n, "governance", method, args)


def _query_contract(n: Net, contract: str, method: str, args: list) -> object:
    answer = off_loop(
        localnet.http,
        "POST",
        n.node("org1").url + f"/v1/contracts/{contract}/query",
        {"method": method, "args": args},
    )
    assert answer is not None and answer[0] == 200, answer
    return answer[1]["result"]  # type: ignore[index]


def _setup_chain(n: Net, tmp_path: Path) -> dict:
    """Anchored data and a derived set, an approved and active model, and one flagged score."""
    import numpy as np

    from ml.train import TrainParams, train

    rng = np.random.default_rng(5)
    data = rng.normal(0, 1, (300, 3))
    root = _anchor(n, data.tobytes())
    derived = _anchor(n, data[:150].tobytes(), parents=(root,), note=HOSTILE_TEXT)
    model = train(data, ("amount", "hour", "risk"), TrainParams(n_estimators=25),
                  datasets=[(root, len(data))]).model  # fmt: skip
    artifact = tmp_path / "payments.vmodel"
    artifact.write_bytes(model.data)
    approve = govern(n, str(artifact), "--name", "payments", command=("model", "propose"))
    govern(n, "activate-model", "payments", "1")
    govern(n, "set-param", "drift_window", "50")  # two windows for the drift chart
    calm = tmp_path / "calm.csv"
    calm.write_text("amount,hour,risk\n" + "".join(f"{a},{b},{c}\n" for a, b, c in data[:100]))
    rows = tmp_path / "rows.csv"
    rows.write_text("amount,hour,risk\n0.1,0.2,-0.1\n8,9,-9\n-0.3,0.5,0.0\n")
    for csv, reference in ((calm, "calm"), (rows, "batch7")):
        vigil("score", "--model", "payments", "--csv", str(csv), "--reference", reference,
              "--key", str(n.net.client_key), "--node", n.node("org1").url, "--wait")  # fmt: skip
    training_file = tmp_path / "training.bin"
    training_file.write_bytes(data.tobytes())
    shown = vigil("verify-file", str(training_file), "--node", n.node("org3").url,
                  "--genesis", str(n.net.genesis_path))  # fmt: skip
    assert "trained      model payments version 1" in shown, shown
    assert "verified: anchor record and the models trained on it" in shown, shown
    anomalies = _get(n, "/v1/anomalies")["anomalies"]
    [flagged] = [a for a in anomalies if a["reference"] == "batch7#2"]
    _an_auditor_re_derives_the_flagged_score(n, tmp_path, flagged, artifact)
    return {"root": root, "derived": derived, "approve": approve, "flagged": flagged}


def _an_auditor_re_derives_the_flagged_score(n: Net, tmp_path: Path, flagged: dict,
                                             artifact: Path) -> None:  # fmt: skip
    """An offline proof of the flagged score, without the artifact; the auditor's own copy of
    the approved artifact reproduces the certified score, another model does not."""
    from click.testing import CliRunner

    from cli.main import main

    genesis = str(n.net.genesis_path)
    bundle = tmp_path / "flagged.proof"
    vigil("proof", "export", "--tx", flagged["tx"], "--no-artifact", "--out", str(bundle),
          "--node", n.node("org4").url, "--genesis", genesis)  # fmt: skip
    out = vigil("proof", "verify", str(bundle), "--genesis", genesis, "--artifact", str(artifact))
    assert "re-derived: the artifact" in out and "bit for bit" in out, out
    other = tmp_path / "other.vmodel"
    vigil("model", "train", str(tmp_path / "rows.csv"), "--out", str(other), "--trees", "5")
    refused = CliRunner().invoke(main, ["proof", "verify", str(bundle), "--genesis", genesis,
                                        "--artifact", str(other)])  # fmt: skip
    assert refused.exit_code == 3 and "is not the model that scored" in refused.output


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _field(page, table: str, field: str) -> str:  # type: ignore[no-untyped-def]
    return page.locator(f"#{table} td[data-field='{field}']").inner_text().strip()


def test_a_person_follows_a_flagged_payment_to_its_block_a_proposal_and_a_lineage(
    tmp_path: Path,
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is not installed and could not be installed here (scripts/_venv.sh "
            "installs Debian's chromium with apt-get when it runs as root)"
        )
    with running_network(tmp_path / "net") as n, chromium() as browser:
        chain = off_loop(_setup_chain, n, tmp_path)
        flagged = chain["flagged"]
        url = n.node("org2").url  # any node serves the explorer from its own committed data
        context = browser.new_context(viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text} at {msg.location}")
                if msg.type in ("error", "warning")
                else None
            ),
        )
        try:
            _walk_through(n, page, url, chain, flagged)
        finally:
            context.close()
        assert problems == [], problems


def members_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("main").inner_text()


def _all_checks_pass(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector("#verify-steps li.pass")
    steps = page.locator("#verify-steps li")
    classes = [steps.nth(i).get_attribute("class") for i in range(steps.count())]
    assert "fail" not in classes and classes.count("pass") >= 6, (
        classes,
        page.locator("#verify-steps").inner_text(),
    )


def _walk_through(n: Net, page, url: str, chain: dict, flagged: dict) -> None:  # type: ignore[no-untyped-def]
    # The overview: live blocks and transactions, without reloading.
    page.goto(url + "/")
    page.wait_for_selector("#latest-blocks")
    height_before = int(page.locator("#stat-height").inner_text())
    assert page.locator("#latest-blocks tbody tr").count() >= 1
    off_loop(n.submit, "org3", n.anchors(1))
    for _ in range(100):  # the page polls the node; wait (bounded) until it shows more blocks
        if int(page.locator("#stat-height").inner_text()) > height_before:
            break
        page.wait_for_timeout(200)
    assert int(page.locator("#stat-height").inner_text()) > height_before, "the page did not update"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
    _shot(page, "1-overview")

    # Follow the flagged score from the overview to its transaction page.
    row = page.locator("#latest-txs tbody tr", has_text=flagged["tx"][:14])
    assert row.count() == 1 and "flagged" in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_selector("#score")
    api_tx = _get(n, f"/v1/txs/{flagged['tx']}")
    assert page.url.endswith(f"#/tx/{flagged['tx']}")
    assert _field(page, "score", "score") == f"{api_tx['receipt']['result']['score']:.4f}"
    assert _field(page, "score", "verdict") == "flagged"
    assert _field(page, "score", "reference") == flagged["reference"]
    assert _field(page, "score", "path_sum") == str(api_tx["receipt"]["result"]["path_sum"])
    assert _field(page, "tx-summary", "kind") == "score"
    top = [f["feature"] for f in api_tx["receipt"]["result"]["top_features"]]
    chart = page.locator("svg[aria-label='top features']").text_content() or ""
    assert all(name in chart for name in top)
    _all_checks_pass(page)
    assert page.locator("#verify-alarm").count() == 0
    _shot(page, "2-flagged-transaction")

    # On to its block: header and certificate as the API has them.
    page.locator("#tx-block-link").click()
    page.wait_for_selector("#block-header")
    block = _get(n, f"/v1/blocks/{flagged['height']}")
    assert page.url.endswith(f"#/block/{flagged['height']}")
    for field in ("hash", "tx_root", "state_root", "receipts_root"):
        assert _field(page, "block-header", field) == block["header"][field]
    assert _field(page, "block-header", "tx_count") == str(block["header"]["tx_count"])
    signers = page.locator("#signers tbody tr")
    assert signers.count() == len(block["validators"]) == 4
    assert page.locator("#signers .badge.ok").count() == len(block["certificate"]["votes"])
    signed_orgs = {n.org_of[v["validator"]] for v in block["certificate"]["votes"]}
    table_text = page.locator("#signers").inner_text()
    assert all(org in table_text for org in signed_orgs)
    tx_row = page.locator("#block-txs tbody tr", has_text=flagged["tx"][:18])
    assert "flagged" in tx_row.inner_text()
    _shot(page, "3-block")

    # Anomalies: the flagged score, the score histogram and the drift chart of the model.
    page.locator("nav a[data-nav='anomalies']").click()
    page.wait_for_selector("#anomalies")
    assert flagged["tx"][:16] in page.locator("#anomalies").inner_text()
    drift = _get(n, "/v1/models/payments/drift")
    assert drift["windows"] == 2 and len(drift["history"]) == 2
    charts = page.locator("[data-model='payments'] svg.chart")
    assert charts.count() == 2  # the score histogram and the PSI per window
    assert charts.nth(1).locator("circle").count() == 2
    assert f"PSI {drift['psi']:.3f}" in page.locator("[data-model='payments'] h2").inner_text()
    _shot(page, "4-anomalies")

    # Governance: the approval proposal with its votes and dry-run text.
    page.locator("nav a[data-nav='governance']").click()
    page.wait_for_selector("#proposals")
    page.locator("#proposals a", has_text=f"#{chain['approve']}").first.click()
    page.wait_for_selector("#votes")
    proposal = _query(n, "get", [chain["approve"]])
    assert page.locator("#dry-run").inner_text() == proposal["dry_run"]  # type: ignore[index]
    assert _field(page, "proposal", "status") == proposal["status"] == "executed"  # type: ignore[index]
    votes = page.locator("#votes").inner_text()
    assert re.search(r"org1\s+yes", votes) and re.search(r"org4\s+not voted", votes), votes
    _shot(page, "5-proposal")

    # The model: versions, approvals and contributors.
    page.goto(url + "/#/model/payments")
    page.wait_for_selector("#versions")
    versions = page.locator("#versions").inner_text()
    # the royalty weight is the recorded contribution: org1 anchored all 300 training rows
    assert "org1: 300 (100%)" in versions and f"#{chain['approve']}" in versions, versions
    _shot(page, "6-model")

    # The lineage of the anchored dataset the model was trained on.
    page.locator(f"#versions a[href='#/anchor/{chain['root'].hex()}']").click()
    page.wait_for_selector("#lineage")
    assert _field(page, "anchor", "digest") == chain["root"].hex()
    assert _field(page, "anchor", "models") == "payments v1"
    boxes = page.locator("#lineage g.lineage-node")
    assert boxes.count() == 2
    assert page.locator(f"#lineage g[data-digest='{chain['derived'].hex()}']").count() == 1
    _shot(page, "7-anchor-lineage")
    page.locator(f"#lineage g[data-digest='{chain['derived'].hex()}']").click()
    page.wait_for_url(f"**/#/anchor/{chain['derived'].hex()}")
    page.wait_for_selector(f"#anchor >> text={chain['derived'].hex()}")
    assert "onerror" in page.locator("#anchor").inner_text()  # shown as text...
    assert page.locator("#main img, #main script").count() == 0  # ...never as markup
    # The browser's checks hold for other kinds of transaction too (an anchor, a vote).
    page.locator("#anchor a", has_text="transaction").click()
    _all_checks_pass(page)
    vote_block = _get(n, f"/v1/blocks/{proposal['executed_at']}")  # type: ignore[index]
    page.goto(f"{url}/#/tx/{vote_block['receipts'][0]['tx_hash']}")
    assert _field(page, "tx-summary", "kind") == "call"
    _all_checks_pass(page)

    # Members with their node's status, and search by hash.
    page.locator("nav a[data-nav='members']").click()
    page.wait_for_selector("#members")
    members = page.locator("#members").inner_text()
    assert all(f"org{i}" in members for i in range(1, 5)) and "this node" in members
    balances = _query_contract(n, "royalties", "balances", [])
    for org in ("org1", "org2", "org3", "org4"):
        cell = page.locator(f"#members td[data-balance='{org}']").inner_text()
        assert int(cell) == balances.get(org, 0), (org, cell, balances)  # type: ignore[union-attr]
    fee = _query(n, "param", ["score_fee"])
    assert f"(now {fee})" in members_text(page)
    _shot(page, "8-members")
    page.fill("#search-input", flagged["tx"])
    page.press("#search-input", "Enter")
    page.wait_for_url(f"**/#/tx/{flagged['tx']}")
    page.wait_for_selector("#score")
    page.fill("#search-input", "no-such-thing!")
    page.press("#search-input", "Enter")
    page.wait_for_selector("#error")
    assert "Nothing found" in page.locator("#error").inner_text()
    assert json.loads(page.evaluate("JSON.stringify(document.title)")).startswith("Vigil")
    _a_lying_node_fails_the_checks(n, page, url, flagged)


def _a_lying_node_fails_the_checks(n: Net, page, url: str, flagged: dict) -> None:  # type: ignore[no-untyped-def]
    """The browser's own checks catch a node that changes a committed score or transaction."""
    import json as json_module

    honest = _get(n, f"/v1/txs/{flagged['tx']}")

    def lie(what: str):  # type: ignore[no-untyped-def]
        answer = json_module.loads(json_module.dumps(honest))
        if what == "shown-score":  # the page is sent another score than the block holds
            answer["receipt"]["result"]["path_sum"] += 1
        elif what == "shown-features":  # ...or other features than the sender signed
            answer["tx"]["payload"]["features"][0] = 0.5
        elif what == "receipt":  # a receipt the block does not hold (one byte changed)
            raw = bytearray.fromhex(answer["verify"]["receipt"])
            raw[-3] ^= 1
            answer["verify"]["receipt"] = raw.hex()
        else:  # a transaction the block does not hold (one byte of its signature changed)
            raw = bytearray.fromhex(answer["raw"])
            raw[-1] ^= 1
            answer["raw"] = raw.hex()
        body = json_module.dumps(answer)
        return lambda route: route.fulfill(status=200, content_type="application/json", body=body)

    for what, step in (
        ("shown-score", "The receipt shown"),
        ("shown-features", "The transaction shown"),
        ("receipt", "The receipt shown"),
        ("tx", "The transaction is in the block"),
    ):
        pattern = f"**/v1/txs/{flagged['tx']}"
        page.route(pattern, lie(what))
        page.goto(f"{url}/#/members")
        page.wait_for_selector("#members")
        page.goto(f"{url}/#/tx/{flagged['tx']}")
        page.wait_for_selector("#verify-steps li.pass")
        failed = page.locator("#verify-steps li.fail")
        assert page.locator("#verify-alarm").is_visible()
        assert failed.count() == 1 and step in failed.inner_text(), (
            what,
            page.locator("#verify-steps").inner_text(),
        )
        _shot(page, f"9-lying-node-{what}")
        page.unroute(pattern)
