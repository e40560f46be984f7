"""A Byzantine member as a real node process (node/byzantine.py) among three honest ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from node import localnet
from node.byzantine import TEST_BYZANTINE_ENV
from tests.node.test_network import Net, _scrape, all_equal, running_network

pytestmark = pytest.mark.slow

HONEST = ["org1", "org2", "org3"]


def _faults(n: Net, org: str) -> dict[str, float]:
    return {
        dict(labels)["kind"]: value
        for (name, labels), value in _scrape(n, org).items()
        if name == "vigil_faults_total"
    }


def _commit_rounds(n: Net, rounds: int) -> list[str]:
    """``rounds`` batches of anchors, each sent to an honest node and waited for, so the
    chain passes several heights at which the Byzantine member is primary."""
    hashes: list[str] = []
    for i in range(rounds):
        batch = n.submit(HONEST[i % 3], n.anchors(5))
        n.wait(f"round {i} committed", lambda b=batch: all(n.committed("org1", h) for h in b))
        hashes += batch
    return hashes


def test_a_byzantine_member_process_cannot_split_or_stop_the_network(tmp_path: Path) -> None:
    with running_network(tmp_path) as n:
        n.kill("org4")
        n.procs["org4"] = localnet.start(n.node("org4"), env={TEST_BYZANTINE_ENV: "7"})
        n.wait("the Byzantine member linked", lambda: all(
            (s := n.status(o)) is not None and len(s["peers"]) == 3 for o in [*HONEST, "org4"]
        ))  # fmt: skip
        start = n.status("org1")["height"]  # type: ignore[index]
        hashes = _commit_rounds(n, 12)
        height = n.status("org1")["height"]  # type: ignore[index]
        assert height - start >= 8, (start, height)  # it was primary at two heights at least
        n.wait("honest nodes agree", lambda: all_equal(n, HONEST, height))
        for org in HONEST:
            assert all(n.committed(org, h) for h in hashes)

        seen: dict[str, float] = {}
        for org in HONEST:
            for kind, count in _faults(n, org).items():
                seen[kind] = seen.get(kind, 0) + count
        # Each forgery was caught by name: flipped and stolen signatures, votes for a
        # random digest, a second proposal for one view, blocks that fail their checks, a
        # forged certificate, and junk.
        for kind in ("bad-signature", "conflicting-vote", "equivocation", "bad-catch-up",
                     "malformed", "bad-tx-frame", "invalid-proposal", "bad-digest",
                     "bad-frame-payload"):  # fmt: skip
            assert seen.get(kind, 0) > 0, (kind, seen)
        junk = sum(
            value for (name, labels), value in _scrape(n, "org1").items()
            if name == "vigil_peer_frames_total" and dict(labels).get("kind") == "malformed"
        )  # fmt: skip
        assert junk > 0  # frames that are not [kind, payload] at all, counted by the link
        log = (n.node("org4").home / "node.log").read_text()
        assert "TEST HOOK: this node is Byzantine" in log

        # Made honest again, it holds the same chain as everyone else.
        n.kill("org4")
        n.start("org4")
        more = _commit_rounds(n, 2)
        top = n.status("org1")["height"]  # type: ignore[index]
        n.wait("all four agree", lambda: all_equal(n, [*HONEST, "org4"], top))
        assert all(n.committed("org4", h) for h in hashes + more)
