"""The seeded simulator driving real ledgers (node/sim/ledger_kit.py).

Every failure message names the seed and the command that replays it.
"""

from __future__ import annotations

import pytest

from consensus.certificate import max_faulty
from consensus.sim.simulator import SimConfig, SimResult, Simulation
from node.sim.ledger_kit import LEDGER_MODES, LedgerKit

SIZES = (4, 4, 4, 7, 1)


def run(seed: int, n: int, k: int, modes: tuple[str, ...] = LEDGER_MODES) -> SimResult:
    config = SimConfig(seed=seed, nodes=n, byzantine=k, kit=LedgerKit(), modes=modes)
    return Simulation(config).run()


def check(seeds: range) -> None:
    failures = []
    for seed in seeds:
        n = SIZES[seed % len(SIZES)]
        k = (seed // len(SIZES)) % (max_faulty(n) + 1)
        result = run(seed, n, k)
        if not result.ok:
            failures.append(
                f"{result.summary()}\n  replay: scripts/simulate --app ledger --replay {seed} "
                f"--nodes {n} --byzantine {k}"
            )
    assert not failures, "\n".join(failures)


def test_ledger_seeds_keep_agreement_identical_state_and_a_replayable_chain() -> None:
    check(range(0, 60))


@pytest.mark.slow
def test_more_ledger_seeds() -> None:
    check(range(60, 300))


@pytest.mark.parametrize("mode", LEDGER_MODES)
def test_each_byzantine_behaviour_against_real_ledgers(mode: str) -> None:
    for seed in range(3):
        result = run(1_000 + seed, 4, 1, (mode,))
        assert result.ok, f"{result.summary()} (mode {mode})"
        assert result.stats["ledger_txs"] > 0


def test_same_seed_same_run() -> None:
    a, b = run(7, 4, 1), run(7, 4, 1)
    assert (a.heights, a.stats, a.schedule) == (b.heights, b.stats, b.schedule)


def test_the_old_id_keyed_signature_cache_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """With signature verdicts cached by tx id alone (the bug fixed on this branch), a
    primary that swaps a pending tx's signature gets the forged copy certified; the
    ledger simulator must find that within 500 seeds."""
    from node.app import execution

    monkeypatch.setattr(execution, "signed_key", lambda tx: tx.id)
    for seed in range(500):
        result = run(seed, 4, 1, ("swap-signature",))
        if not result.ok:
            kinds = {v.kind for v in result.violations}
            assert kinds & {"validity", "replay", "state", "receipts"}, result.summary()
            return
    pytest.fail("500 seeds with the id-keyed signature cache found no violation")
