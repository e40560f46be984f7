"""The seeded simulator driving real ledgers (node/sim/ledger_kit.py).

Every failure message names the seed and the command that replays it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter

import pytest

from consensus.certificate import max_faulty
from consensus.sim.simulator import SimResult, Simulation
from node.sim.ledger_kit import LEDGER_MODES, SIM_PARAMS, ledger_config

SIZES = (4, 4, 4, 7, 1)


def run(seed: int, n: int, k: int, modes: tuple[str, ...] = LEDGER_MODES) -> SimResult:
    return Simulation(ledger_config(seed, n, k, modes=modes)).run()


def _one(seed: int) -> tuple[int, int, int, bool, str, dict]:
    """One seed of ``check``, in a worker process: what it needs of the result, picklable."""
    n = SIZES[seed % len(SIZES)]
    k = (seed // len(SIZES)) % (max_faulty(n) + 1)
    result = run(seed, n, k)
    return seed, n, k, result.ok, result.summary(), dict(result.stats)


def check(seeds: range) -> Counter[str]:
    """Run the seeds (on every core, as scripts/simulate does); fail with every failing
    seed's replay command. Returns what they did."""
    failures = []
    seen: Counter[str] = Counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        outcomes = pool.map(_one, seeds, chunksize=4)
    for seed, n, k, ok, summary, stats in outcomes:
        if not ok:
            failures.append(
                f"{summary}\n  replay: scripts/simulate --app ledger --replay {seed} "
                f"--nodes {n} --byzantine {k}"
            )
        seen.update(stats.get("ledger_kinds") or {})
        seen.update(f"story:{kind}" for kind in stats.get("stories_done") or [])
        for name in ("app_waits", "fetch_refused", "validator_set_changes"):
            seen[name] += stats.get(name, 0)
        seen["fullest_block"] = max(seen["fullest_block"], stats.get("max_block_bytes_used", 0))
    assert not failures, "\n".join(failures)
    return seen


def test_ledger_seeds_keep_agreement_identical_state_and_a_replayable_chain() -> None:
    seen = check(range(0, 60))
    # The workload reaches every part of the application, or these seeds prove little.
    for done in ("allow_deploy", "approve_model", "activate_model", "add_member", "remove_member"):
        assert seen[f"story:{done}"] > 0, f"no seed carried {done} through governance"
    for kind in ("anchor:ok", "deploy:ok", "score:ok", "call:ok", "call:reverted", "out_of_gas"):
        assert seen[kind] > 0, f"no seed committed {kind}"
    assert seen["validator_set_changes"] > 0, "no seed changed the validator set by vote"
    assert seen["app_waits"] > 0, "no node ever waited for the late model artifact"
    assert seen["fetch_refused"] > 0, "no FETCH flood met the per-peer budget"
    assert seen["fullest_block"] > 0.9 * SIM_PARAMS["max_block_bytes"], "no block near the limit"


@pytest.mark.slow
def test_more_ledger_seeds() -> None:
    """Sixty more seeds (the suite's 10 minutes allow no more with the chaos round and
    schemathesis in it); ``scripts/simulate --app ledger --seeds N`` runs any number."""
    check(range(60, 120))


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


@pytest.mark.slow
def test_the_old_host_error_for_a_missing_artifact_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault 2 patched back in: a host failure (the model artifact not yet on this node)
    became a reverted receipt carrying the exception's text. A contract scoring through
    ``ledger.score`` while the artifact is late then gives receipts that differ between
    nodes; the ledger simulator must find that within 200 seeds."""
    from vm import interpreter
    from vm.errors import ExecutionFailure, HostError

    def old_ask_host(self, name: str, *args: object) -> object:  # type: ignore[no-untyped-def]
        try:
            return getattr(self.host, name)(*args)
        except ExecutionFailure:
            raise
        except Exception as exc:
            raise HostError(f"host {name} failed: {exc}") from None

    monkeypatch.setattr(interpreter._Machine, "ask_host", old_ask_host)
    for seed in range(200):
        result = run(seed, 4, 0)
        if not result.ok:
            kinds = {v.kind for v in result.violations}
            assert kinds & {"validity", "replay", "state", "receipts"}, result.summary()
            return
    pytest.fail("200 seeds with host failures turned into receipts found no violation")
