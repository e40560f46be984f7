"""The story `./scripts/localnet --demo` plays on a running local network.

Three banks share a fraud model without pooling their payments: each anchors its own
dataset, trains locally and submits to a federated round governance opened; the chain
merges, the members approve, payments are scored, a contract holds a flagged one, an
auditor checks it from the genesis file alone, drift shows when the stream moves, and the
fees go to the banks by the rows they contributed. Every step prints the exact `vigil`
command it ran, so a person can repeat it by hand.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner

from cli.main import main as vigil_main
from consensus.crypto import PrivateKey
from node import localnet

BANKS = ("org1", "org2", "org3")
FEATURES = ("amount", "hour", "risk")
ROWS = {"org1": 400, "org2": 300, "org3": 200}
FRAUDS = ([8, -9, 7], [-9, 8, 9], [9, 9, -8])
STREAM = 250
"""Payments per scored batch; also the drift window the demo sets (at 250 scores, data like
the training data stays near PSI 0.07, so a window that crosses 0.25 really moved)."""
MAX_OUTPUT_LINES = 12
"""Lines of a command's output shown (the rest is counted)."""


class Story:
    def __init__(self, net: localnet.LocalNet, directory: Path, shown) -> None:  # type: ignore[no-untyped-def]
        self.net = net
        self.url = net.nodes[0].url
        self.genesis = str(net.genesis_path)
        self.shown = shown
        self.run_id = time.strftime("%Y%m%d-%H%M%S")
        self.work = directory / "demo" / self.run_id
        self.work.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng(int(time.time()))
        self.step = 0
        self.keys = {"org1": str(net.client_key)}

    # -- narration ---------------------------------------------------------------------------

    def chapter(self, title: str, *lines: str) -> None:
        self.step += 1
        print(f"\n== {self.step}. {title} ==", flush=True)
        for line in lines:
            print(f"   {line}")

    def vigil(self, *args: str, show: bool = True) -> str:
        """Run one `vigil` command in this process, print it and its output; stop on failure."""
        text = " ".join(self._shown_arg(a) for a in args)
        if show:
            print(f"   $ vigil {text}", flush=True)
        result = CliRunner().invoke(vigil_main, list(args))
        out = result.output
        if result.exit_code != 0:
            raise SystemExit(f"error: `vigil {text}` failed (exit {result.exit_code}):\n{out}")
        if show:
            lines = out.rstrip().splitlines()
            for line in lines[:MAX_OUTPUT_LINES]:
                print(f"     {line}")
            if len(lines) > MAX_OUTPUT_LINES:
                print(f"     ... ({len(lines) - MAX_OUTPUT_LINES} more lines)")
        return out

    def _shown_arg(self, arg: str) -> str:
        return shlex.quote(self.shown(Path(arg)) if os.path.isabs(arg) else arg)

    # -- helpers -----------------------------------------------------------------------------

    def admin(self, org: str) -> str:
        return str(self.net.directory / f"admin-{org}.key")

    def result(self, out: str) -> str:
        return next(line for line in out.splitlines() if line.startswith("result")).split()[-1]

    def enact(self, *proposal: str) -> int:
        """org1's admin proposes; org1, org2 and org3 vote yes (3 of 4 members)."""
        out = self.vigil(*proposal, "--key", self.admin("org1"), "--node", self.url, "--wait")
        pid = int(self.result(out))
        for org in BANKS:
            self.vigil("gov", "vote", str(pid), "yes", "--key", self.admin(org), "--node",
                       self.url, "--wait", show=org == "org1")  # fmt: skip
        print(f"     (org2 and org3 voted yes the same way; proposal {pid} executed)")
        return pid

    def height(self) -> int:
        status = localnet.get_json(self.url + "/v1/status")
        assert status is not None
        return int(status["height"])

    def csv(self, name: str, rows: Any) -> Path:
        path = self.work / name
        lines = "".join(",".join(f"{x:.4f}" for x in r) + "\n" for r in rows)
        path.write_text(",".join(FEATURES) + "\n" + lines)
        return path

    # -- the story ---------------------------------------------------------------------------

    def play(self) -> None:
        started = time.monotonic()
        self.banks_join()
        files = self.banks_anchor()
        round_id = self.round_opens()
        self.banks_submit(round_id, files)
        version = self.merge_approved(round_id)
        flagged = self.payments_scored(version)
        self.contract_holds(flagged)
        self.auditor_checks(flagged)
        self.drift_shows()
        self.royalties_paid()
        print(f"\nThe story took {time.monotonic() - started:.0f} s. Look at all of it in the "
              f"explorer: {self.url}/  (every node serves one)")  # fmt: skip

    def banks_join(self) -> None:
        self.chapter(
            "Three banks get their own client keys",
            "org1 has one from the local network; governance authorises one each for org2",
            "and org3 (3 of the 4 members approve every change).",
        )
        for org in BANKS[1:]:
            path = self.work / f"client-{org}.key"
            PrivateKey.generate().save(path)
            public = PrivateKey.load(path).public.hex()
            self.enact("gov", "propose", "authorize-client", public, "--org", org,
                       "--role", "submit")  # fmt: skip
            self.keys[org] = str(path)

    def banks_anchor(self) -> dict[str, Path]:
        self.chapter(
            "Each bank anchors its own payment dataset",
            "Only the file's SHA-256, size and type go on chain; the payments stay at the bank.",
        )
        files = {}
        for org in BANKS:
            files[org] = self.csv(f"{org}-payments.csv", self.rng.normal(0, 1, (ROWS[org], 3)))
            self.vigil("anchor", str(files[org]), "--meta", f"owner={org}", "--key",
                       self.keys[org], "--node", self.url, "--wait")  # fmt: skip
        return files

    def round_opens(self) -> int:
        self.chapter(
            "Governance opens a federated round for the fraud model",
            "Members will submit models trained locally; the chain merges them at the deadline.",
        )
        self.enact("fl", "open", "fraud", "--features", ",".join(FEATURES),
                   "--deadline-in", "30", "--min-members", "3")  # fmt: skip
        round_id, rid = 0, 1
        while (r := self._query("models", "get_round", [rid])) is not None:
            if r["name"] == "fraud" and r["status"] == "open":
                round_id = rid
            rid += 1
        if not round_id:
            raise SystemExit("error: the round did not open")
        print(f"     (round {round_id} is open)")
        return round_id

    def _query(self, contract: str, method: str, args: list) -> Any:
        """A plain read for the script's own bookkeeping (what it shows is read with vigil)."""
        answer = localnet.http("POST", f"{self.url}/v1/contracts/{contract}/query",
                               {"method": method, "args": args})  # fmt: skip
        if answer is None or answer[0] != 200:
            raise SystemExit(f"error: {contract}.{method} failed: {answer}")
        return answer[1]["result"]

    def banks_submit(self, round_id: int, files: dict[str, Path]) -> None:
        self.chapter(
            "Each bank trains on its own data and submits its local model",
            "The chain checks that each model was trained only on data that bank anchored.",
        )
        for i, org in enumerate(BANKS):
            model = self.work / f"{org}.vmodel"
            self.vigil("model", "train", str(files[org]), "--out", str(model), "--trees", "40",
                       "--seed", str(i + 1))  # fmt: skip
            self.vigil("fl", "submit", str(round_id), str(model), "--key", self.keys[org],
                       "--node", self.url, "--wait")  # fmt: skip
        deadline = self._query("models", "get_round", [round_id])["deadline"]
        print(f"     (waiting for height {deadline}, the round's deadline)", flush=True)
        while self.height() < deadline:
            self._tick()
        self.vigil("fl", "close", str(round_id), "--key", self.keys["org1"], "--node", self.url,
                   "--wait")  # fmt: skip
        self.vigil("fl", "status", str(round_id), "--node", self.url, "--genesis", self.genesis)

    def _tick(self) -> None:
        """One anchored heartbeat file, so that blocks (and the height) move on."""
        beat = self.work / f"heartbeat-{time.time_ns()}.txt"
        beat.write_text(f"heartbeat {time.time_ns()}\n")
        self.vigil("anchor", str(beat), "--key", self.keys["org1"], "--node", self.url, "--wait",
                   show=False)  # fmt: skip

    def merge_approved(self, round_id: int) -> int:
        self.chapter(
            "The merged model is built, proposed, approved by vote and activated",
            "Its id must be the chain's own merge of the submissions; its royalty weights are",
            "the rows each bank contributed. Read the dry run before voting:",
        )
        merged = self.work / "merged.vmodel"
        out = self.vigil("fl", "merge", str(round_id), "--out", str(merged), "--key",
                         self.admin("org1"), "--node", self.url, "--genesis", self.genesis,
                         "--wait")  # fmt: skip
        pid = self.result(out)
        self.vigil("gov", "show", pid, "--node", self.url, "--genesis", self.genesis)
        for org in BANKS:
            self.vigil("gov", "vote", pid, "yes", "--key", self.admin(org), "--node", self.url,
                       "--wait", show=org == "org1")  # fmt: skip
        version = int(self._query("models", "versions", ["fraud"]))
        self.enact("gov", "propose", "activate-model", "fraud", str(version))
        if self._query("governance", "param", ["drift_window"]) != STREAM:
            self.enact("gov", "propose", "set-param", "drift_window", str(STREAM))
        self.vigil("model", "list", "fraud", "--node", self.url, "--genesis", self.genesis)
        return version

    def payments_scored(self, version: int) -> str:
        self.chapter(
            "A day of payments is scored; the planted frauds are flagged",
            "Every score, its verdict and its top features are certified with the block; the",
            "model also flags the unusual tail of ordinary payments (IsolationForest's default).",
        )
        rows = self.rng.normal(0, 1, (STREAM, 3))
        for i, fraud in enumerate(FRAUDS):
            rows[10 + 15 * i] = fraud
        stream = self.csv("payments-day1.csv", rows)
        self.vigil("score", "--model", "fraud", "--csv", str(stream), "--reference", "day1",
                   "--key", self.keys["org1"], "--node", self.url, "--wait")  # fmt: skip
        since = max(1, self.height() - 20)
        self.vigil("anomalies", "--since", str(since), "--node", self.url, "--genesis",
                   self.genesis)  # fmt: skip
        found = localnet.get_json(f"{self.url}/v1/anomalies?since={since}")
        assert found is not None
        planted = [a for a in found["anomalies"] if a["reference"] == "day1#11"]
        return (planted or found["anomalies"])[-1]["tx"]

    def contract_holds(self, flagged: str) -> None:
        self.chapter(
            "A chargeback contract holds the flagged payment",
            "docs/examples/chargeback.py scores the claim with the certified model and pays",
            "normal claims at once; flagged ones wait for another member's review.",
        )
        source = str(Path(__file__).resolve().parents[1] / "docs" / "examples" / "chargeback.py")
        if localnet.get_json(f"{self.url}/v1/contracts/chargeback") is None:
            self.enact("gov", "propose", "allow-deploy", "chargeback", source)
            self.vigil("contract", "deploy", source, "--name", "chargeback", "--key",
                       self.keys["org1"], "--node", self.url, "--wait")  # fmt: skip
            self.vigil("contract", "call", "chargeback", "configure", '["fraud"]', "--key",
                       self.keys["org1"], "--node", self.url, "--wait")  # fmt: skip
        info = localnet.get_json(f"{self.url}/v1/txs/{flagged}")
        assert info is not None
        features = [round(x) for x in info["tx"]["payload"]["features"]]
        for claim, feats, amount in ((f"{self.run_id}-a", [0, 0, 0], 120),
                                     (f"{self.run_id}-b", features, 900)):  # fmt: skip
            self.vigil("contract", "call", "chargeback", "file_claim",
                       json.dumps([claim, amount, feats]), "--key", self.keys["org1"],
                       "--node", self.url, "--wait")  # fmt: skip

    def auditor_checks(self, flagged: str) -> None:
        self.chapter(
            "An auditor checks the flagged payment from the genesis file alone",
            "First against the node (every proof checked), then offline from one file, with the",
            "score re-derived bit for bit from the signed features and the approved model.",
        )
        self.vigil("tx", "show", flagged, "--node", self.url, "--genesis", self.genesis)
        bundle = self.work / "flagged.proof"
        self.vigil("proof", "export", "--tx", flagged, "--out", str(bundle), "--node", self.url,
                   "--genesis", self.genesis)  # fmt: skip
        self.vigil("proof", "verify", str(bundle), "--genesis", self.genesis)

    def drift_shows(self) -> None:
        self.chapter(
            "The payments change; every member sees the drift at once",
            f"Drift is measured per window of {STREAM} committed scores against the training",
            "scores; past 0.25 the chain commits a drift alarm.",
        )
        moved = self.csv("payments-day2.csv", self.rng.normal(2.5, 1, (STREAM, 3)))
        self.vigil("score", "--model", "fraud", "--csv", str(moved), "--reference", "day2",
                   "--key", self.keys["org1"], "--node", self.url, "--wait", show=True)  # fmt: skip
        self.vigil("model", "drift", "fraud", "--node", self.url, "--genesis", self.genesis)

    def royalties_paid(self) -> None:
        self.chapter(
            "The fees went to the banks by the rows they contributed",
            "Each score paid the score_fee; org1 scored, so it paid; the banks whose data",
            "trained the model were credited by their rows (balances sum to zero).",
        )
        self.vigil("contract", "query", "royalties", "balances", "--node", self.url,
                   "--genesis", self.genesis)  # fmt: skip
